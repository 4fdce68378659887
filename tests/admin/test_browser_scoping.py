"""Browser tests of the scoped views (read scoping, issue 10): what the office, a responsible unit,
the discipline commission and a citizen each see of the same cases, in Debian's chromium.
Screenshots go to test-artifacts/screenshots/scope-*.png.
"""

from __future__ import annotations

import uuid

import pytest
import pytest_asyncio

from tests.admin.conftest import Console, act_via_api, file_via_api, wait_projection
from tests.harness import OTHER_RU, RU

pytestmark = pytest.mark.devserver

from playwright.async_api import Browser, expect  # noqa: E402

from tests.admin import test_browser as _tb  # noqa: E402  (skips this module too when chromium is missing)

browser = _tb.browser  # the module-scoped chromium fixture of test_browser
login, shot = _tb.login, _tb.shot


class Cases:
    def __init__(self, tag: str) -> None:
        self.posting = f"V{tag}-P"  # RU's case in public posting, referred for accountability
        self.petition = f"V{tag}-Q"  # RU's petition, with the petitioner's contact
        self.other = f"V{tag}-R"  # another unit's case
        self.reason = f"县长张某某履职不力 REF{tag}"
        self.contact = f"李四 13900000000 REF{tag}"


@pytest_asyncio.fixture(scope="module")
async def cases(console: Console) -> Cases:
    c = Cases(uuid.uuid4().hex[:6])
    await file_via_api(console, console.case_record(c.posting) | {"title": "湘江支流河道黑臭水体整治"})
    await act_via_api(console, "office", c.posting, "TRANSFER")
    await act_via_api(console, "ru", c.posting, "ACKNOWLEDGE")
    await act_via_api(console, "ru", c.posting, "SUBMIT_COMPLETION", reason="整改完成")
    await act_via_api(console, "lead", c.posting, "PRELIM_PASS")
    await act_via_api(console, "office", c.posting, "REFER_ACCOUNTABILITY", referral_path="PERFORMANCE",
                      reason=c.reason, report_ref="追责建议报告-1")
    async with console.api("ru-other") as http:  # a refused attempt: only the office and auditors see it
        assert (await http.post(f"/api/v1/cases/{c.posting}/actions/REPORT_PROGRESS",
                                json={"reason": "越权"})).status_code == 404
    await file_via_api(console, console.case_record(c.petition) | {
        "kind": "PETITION", "title": "群众举报某厂夜间偷排", "complaint": "某厂夜间偷排废水",
        "complainant_contact": c.contact})
    await file_via_api(console, console.case_record(c.other) | {"title": "宁远县某矿山生态修复",
                                                                  "responsible_units": [OTHER_RU.unit],
                                                                  "lead_supervising_units": ["市林业局"]})
    await wait_projection(console, c.posting, "PUBLIC_POSTING")
    await wait_projection(console, c.other, "REGISTERED")
    return c


async def _nav(page) -> list[str]:  # type: ignore[no-untyped-def]
    return [t.strip() for t in await page.locator("header nav a").all_text_contents()]


async def test_the_office_sees_every_case_with_referrals_contacts_and_refusals(
        console: Console, browser: Browser, cases: Cases) -> None:
    office = await login(browser, console, "office")
    await office.goto(f"{console.url}/cases?q=V{cases.posting[1:7]}")
    for no in (cases.posting, cases.petition, cases.other):
        await expect(office.locator(f"a[href='/cases/{no}']")).to_be_visible()
    await shot(office, "scope-office-list")
    await office.goto(f"{console.url}/cases/{cases.posting}")
    await expect(office.locator("body")).to_contain_text(cases.reason)
    await expect(office.locator("body")).to_contain_text("被拒绝的操作")
    await expect(office.locator(f"a[href='/audit/cases/{cases.posting}']")).to_be_visible()
    await shot(office, "scope-office-case")
    await office.goto(f"{console.url}/cases/{cases.petition}")
    await expect(office.locator("[data-testid=complainant-contact]")).to_have_text(cases.contact)
    assert any("审计" in n for n in await _nav(office))
    await office.context.close()


async def test_a_responsible_unit_sees_its_own_cases_without_referral_reasons(
        console: Console, browser: Browser, cases: Cases) -> None:
    ru = await login(browser, console, "ru")
    await ru.goto(f"{console.url}/cases?q=V{cases.posting[1:7]}")
    await expect(ru.locator(f"a[href='/cases/{cases.posting}']")).to_be_visible()
    await expect(ru.locator(f"a[href='/cases/{cases.petition}']")).to_be_visible()
    assert await ru.locator(f"a[href='/cases/{cases.other}']").count() == 0
    await shot(ru, "scope-unit-list")
    await ru.goto(f"{console.url}/cases/{cases.posting}")
    await expect(ru.locator("[data-testid=timeline]")).to_contain_text("移交问责")
    await expect(ru.locator("[data-testid=withheld]")).to_be_visible()
    body = await ru.content()
    assert cases.reason not in body and "被拒绝的操作" not in body and "/audit/cases/" not in body
    await expect(ru.locator("[data-testid=objections]")).to_have_count(0)  # no objection lodged yet
    await shot(ru, "scope-unit-case-referral-withheld")
    await ru.goto(f"{console.url}/cases/{cases.petition}")
    await expect(ru.locator("[data-testid=complainant-contact]")).to_have_text(cases.contact)  # it replies
    await shot(ru, "scope-unit-petition-contact")
    resp = await ru.goto(f"{console.url}/cases/{cases.other}")
    assert resp is not None and resp.status == 404
    resp = await ru.goto(f"{console.url}/audit")
    assert resp is not None and resp.status == 403
    await ru.context.close()


async def test_the_discipline_commission_sees_referred_cases_and_their_referrals(
        console: Console, browser: Browser, cases: Cases) -> None:
    disc = await login(browser, console, "discipline")
    await disc.goto(f"{console.url}/cases?q=V{cases.posting[1:7]}")
    await expect(disc.locator(f"a[href='/cases/{cases.posting}']")).to_be_visible()
    assert await disc.locator(f"a[href='/cases/{cases.petition}']").count() == 0
    assert await disc.locator(f"a[href='/cases/{cases.other}']").count() == 0
    await shot(disc, "scope-discipline-list")
    await disc.goto(f"{console.url}/cases/{cases.posting}")
    await expect(disc.locator("body")).to_contain_text(cases.reason)
    await expect(disc.locator("[data-testid=open-ACCEPT_REFERRAL]")).to_be_visible()
    assert "被拒绝的操作" not in await disc.content()
    await shot(disc, "scope-discipline-case")
    resp = await disc.goto(f"{console.url}/cases/{cases.petition}")
    assert resp is not None and resp.status == 404
    assert cases.contact not in await disc.content()
    await disc.context.close()


async def test_a_citizen_sees_only_the_posting_and_lodges_an_objection(
        console: Console, browser: Browser, cases: Cases) -> None:
    citizen = await login(browser, console, "citizen")
    nav = await _nav(citizen)
    assert len(nav) == 2 and "我的待办" in nav[0] and "案件台账" in nav[1], nav
    await expect(citizen.locator("[data-testid=public-note]")).to_be_visible()
    await expect(citizen.locator(f"a[href='/cases/{cases.posting}']")).to_be_visible()
    assert await citizen.locator(f"a[href='/cases/{cases.petition}']").count() == 0
    await shot(citizen, "scope-citizen-my")
    await citizen.goto(f"{console.url}/cases/{cases.posting}")
    await expect(citizen.locator("[data-testid=stage-en]")).to_have_text("PUBLIC_POSTING")
    assert await citizen.locator("[data-testid=timeline]").count() == 0
    body = await citizen.content()
    for hidden in (cases.reason, "案件信息", RU.unit, "被拒绝的操作", "整改时限"):
        assert hidden not in body, hidden
    await shot(citizen, "scope-citizen-posting")
    await citizen.click("[data-testid=open-OBJECT]")
    await citizen.locator("[data-testid=form-OBJECT] [name=reason]").fill("河道仍有黑臭,公示内容与实际不符")
    async with citizen.expect_navigation():
        await citizen.click("[data-testid=submit-OBJECT]")
    await expect(citizen.locator("[data-testid=flash-ok]")).to_be_visible()
    await expect(citizen.locator("[data-testid=objections]")).to_contain_text("公示内容与实际不符")
    await expect(citizen.locator("body")).to_contain_text("暂停")
    await shot(citizen, "scope-citizen-objected")
    for url, status in ((f"/cases/{cases.petition}", 404), (f"/cases/{cases.other}", 404), ("/dashboard", 403),
                        ("/cases/export.xlsx", 403), ("/audit", 403)):
        resp = await citizen.goto(console.url + url)
        assert resp is not None and resp.status == status, url
    await shot(citizen, "scope-citizen-dashboard-denied")
    led = await console.pool.fetchrow(
        "SELECT actor_user, actor_role FROM ledger WHERE case_no = $1 AND event = 'OBJECT'", cases.posting)
    assert dict(led) == {"actor_user": "citizen", "actor_role": "PUBLIC"}
    await citizen.context.close()
