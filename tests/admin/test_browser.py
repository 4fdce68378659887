"""Browser tests: Playwright drives Debian's chromium (headless) against the real console,
worker, PostgreSQL and Temporal dev server. Screenshots of every page go to
test-artifacts/screenshots/<page>.png.

Chromium comes from the package registry (`make browser`, a prerequisite of
`make test`); Playwright's own browser download is never used.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
import pytest_asyncio

from admin.users import create_user
from tests.admin.conftest import ARTIFACTS, PASSWORD, Console, act_via_api, file_via_api, wait_projection

pytestmark = pytest.mark.devserver

CHROMIUM = Path("/usr/bin/chromium")
SHOTS = ARTIFACTS / "screenshots"
SAMPLES = Path(__file__).resolve().parents[3] / "shared" / "domain" / "sample_cases.json"

if not CHROMIUM.exists():  # `make test` installs it first (make browser); say so instead of failing obscurely
    pytest.skip("Debian chromium is not installed: run `make browser`", allow_module_level=True)

from playwright.async_api import Browser, Page, async_playwright, expect  # noqa: E402


@pytest_asyncio.fixture(scope="module")
async def browser(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Browser]:
    SHOTS.mkdir(parents=True, exist_ok=True)
    async with async_playwright() as p:
        b = await p.chromium.launch(
            executable_path=str(CHROMIUM),
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"],
        )
        yield b
        await b.close()


async def shot(page: Page, name: str) -> None:
    await page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


async def login(browser: Browser, c: Console, user: str, shot_name: str | None = None) -> Page:
    ctx = await browser.new_context(locale="zh-CN", viewport={"width": 1280, "height": 900})
    page = await ctx.new_page()
    await page.goto(c.url + "/login")
    await page.fill("input[name=username]", user)
    await page.fill("input[name=password]", PASSWORD)
    if shot_name:
        await shot(page, shot_name)
    await page.click("button[type=submit]")
    await page.wait_for_url("**/my")
    return page


async def act(page: Page, action: str, fill: dict[str, str] | None = None, check: list[str] | None = None) -> None:
    """Open an action's form on the case page, fill it, confirm, and wait for the result page."""
    await page.click(f"[data-testid=open-{action}]")
    form = page.locator(f"[data-testid=form-{action}]")
    for name, value in (fill or {}).items():
        await form.locator(f"[name={name}]").fill(value)
    for name in check or []:
        await form.locator(f"[name={name}]").check()
    async with page.expect_navigation():
        await page.click(f"[data-testid=submit-{action}]")


async def timeline_rows(page: Page) -> int:
    return await page.locator("[data-testid=timeline] tbody tr").count()


async def test_unit_submits_completion_and_supervisor_passes_prelim_review(console: Console, browser: Browser) -> None:
    case_no = await file_via_api(console, console.case_record())
    await act_via_api(console, "office", case_no, "TRANSFER")
    await act_via_api(console, "ru", case_no, "ACKNOWLEDGE")

    ru = await login(browser, console, "ru", shot_name="login")
    await expect(ru.locator(f"a[href='/cases/{case_no}']")).to_be_visible()
    await shot(ru, "my-work")
    await ru.click(f"a[href='/cases/{case_no}']")
    await expect(ru.locator("[data-testid=stage-en]")).to_have_text("RECTIFYING")
    before = await timeline_rows(ru)
    await shot(ru, "case-rectifying")
    await act(ru, "SUBMIT_COMPLETION", {"reason": "两项措施均已完成"})
    await expect(ru.locator("[data-testid=flash-ok]")).to_be_visible()
    await expect(ru.locator("[data-testid=stage-en]")).to_have_text("PRELIM_REVIEW")
    assert await timeline_rows(ru) > before
    await expect(ru.locator("[data-testid=no-actions]")).to_be_visible()  # now it is the supervisor's move
    await shot(ru, "case-after-submit")

    lead = await login(browser, console, "lead")
    await lead.goto(f"{console.url}/cases/{case_no}")
    rows = await timeline_rows(lead)
    await act(lead, "PRELIM_PASS", {"reason": "资料齐全,同意公示"})
    await expect(lead.locator("[data-testid=stage-en]")).to_have_text("PUBLIC_POSTING")
    assert await timeline_rows(lead) >= rows + 1  # the action, and the posting window it set
    await expect(lead.locator("[data-testid=timeline]")).to_contain_text("初审通过")
    await shot(lead, "case-after-prelim-pass")
    led = await console.pool.fetch("SELECT event, actor_user, actor_role, actor_unit FROM ledger WHERE case_no = $1 "
                                   "AND event IN ('SUBMIT_COMPLETION', 'PRELIM_PASS') ORDER BY seq", case_no)
    assert [(r["event"], r["actor_user"], r["actor_role"]) for r in led] == [
        ("SUBMIT_COMPLETION", "ru", "RESPONSIBLE_UNIT"), ("PRELIM_PASS", "lead", "LEAD_SUPERVISOR")]
    await ru.context.close()
    await lead.context.close()


async def test_another_unit_cannot_open_the_case_and_a_forged_post_is_refused(console: Console, browser: Browser) -> None:
    case_no = await file_via_api(console, console.case_record())
    await act_via_api(console, "office", case_no, "TRANSFER")
    other = await login(browser, console, "ru-other")
    # Read scoping: another unit's case answers like one that does not exist.
    resp = await other.goto(f"{console.url}/cases/{case_no}")
    assert resp is not None and resp.status == 404
    await expect(other.locator("[role=alert]")).to_contain_text("没有编号为")
    assert "湘江源头尾矿库" not in await other.content()
    await shot(other, "case-other-unit-not-found")
    ledger_before = await console.pool.fetchval("SELECT count(*) FROM ledger WHERE case_no = $1", case_no)
    csrf = await other.locator("input[name=csrf_token]").first.get_attribute("value")
    # The forged form carries its own valid CSRF token and even names another actor: ignored, refused,
    # and answered like a case that does not exist; the refusal is recorded with the real actor.
    resp = await other.request.post(
        f"{console.url}/cases/{case_no}/act/ACKNOWLEDGE",
        form={"csrf_token": csrf, "actor": "ru", "unit": "蓝山县人民政府", "user_id": "ru"},
    )
    assert resp.status == 404
    body = await resp.text()
    assert "没有编号为" in body and "湘江源头尾矿库" not in body
    await other.set_content(body)
    await shot(other, "forged-post-refused")
    assert await console.pool.fetchval("SELECT count(*) FROM ledger WHERE case_no = $1", case_no) == ledger_before
    refused = await console.pool.fetchrow(
        "SELECT actor_user, actor_unit, error_type, message FROM refused_action WHERE case_no = $1 ORDER BY id DESC LIMIT 1",
        case_no)
    assert (refused["actor_user"], refused["actor_unit"], refused["error_type"]) == (
        "ru-other", "宁远县人民政府", "NotAuthorizedError")
    assert "is not a responsible unit of case" in refused["message"]
    await other.context.close()


async def test_a_post_without_the_csrf_token_is_refused(console: Console, browser: Browser) -> None:
    case_no = await file_via_api(console, console.case_record())
    office = await login(browser, console, "office")
    await office.goto(f"{console.url}/cases/{case_no}")
    resp = await office.request.post(f"{console.url}/cases/{case_no}/act/TRANSFER", form={"reason": "no token"})
    assert resp.status == 403
    await office.set_content(await resp.text())
    await expect(office.locator("[role=alert]")).to_contain_text("CSRF")
    await shot(office, "csrf-refused")
    assert await console.pool.fetchval("SELECT stage FROM case_projection WHERE case_no = $1", case_no) == "REGISTERED"
    await office.context.close()


async def test_a_sample_case_goes_from_transfer_to_closure_through_the_console(
    console: Console, browser: Browser, tmp_path: Path
) -> None:
    """Import sample FB-14 through the console, then every step by its own user, to 已销号 (CLOSED)."""
    doc = json.loads(SAMPLES.read_text(encoding="utf-8"))
    record = next(r for r in (doc["cases"] if isinstance(doc, dict) else doc) if r.get("case_id") == "FB-14")
    case_no = record["case_id"]
    unit = "市生态环境局"  # both the responsible unit and the lead supervising unit of FB-14
    await create_user(console.pool, "eco-ru", PASSWORD, unit, ["RESPONSIBLE_UNIT"], if_missing=True)
    await create_user(console.pool, "eco-lead", PASSWORD, unit, ["LEAD_SUPERVISOR"], if_missing=True)
    batch = tmp_path / "fb14.json"
    batch.write_text(json.dumps({"cases": [record]}, ensure_ascii=False), encoding="utf-8")

    office = await login(browser, console, "office")
    await office.goto(console.url + "/file")
    await shot(office, "file-form")
    await office.goto(console.url + "/import")
    await office.set_input_files("input[name=file]", str(batch))
    async with office.expect_navigation():
        await office.click("[data-testid=submit-import]")
    await expect(office.locator("[data-testid=import-report]")).to_contain_text("已立案 filed")
    await shot(office, "import-report")
    await wait_projection(console, case_no, "REGISTERED")
    await office.goto(f"{console.url}/cases/{case_no}")
    await shot(office, "case-registered")
    await act(office, "TRANSFER", {"reason": "按整改方案交办"})
    await expect(office.locator("[data-testid=stage-en]")).to_have_text("TRANSFERRED")

    ru = await login(browser, console, "eco-ru")
    await ru.goto(f"{console.url}/cases/{case_no}")
    await act(ru, "ACKNOWLEDGE")
    await expect(ru.locator("[data-testid=stage-en]")).to_have_text("RECTIFYING")
    await expect(ru.locator("[data-testid=deadline-explanation]")).to_contain_text("chinese-calendar")
    await shot(ru, "case-deadline-explained")
    # Issue 13: a measure is done only with its evidence; the page shows measures, milestones, the monthly report.
    await act(ru, "COMPLETE_MEASURE", {"reason": "第一项措施完成"})
    await expect(ru.locator("[data-testid=flash-error]")).to_contain_text("needs evidence")
    await act(ru, "COMPLETE_MEASURE", {"reason": "第一项措施完成", "evidence": "doc:渗滤液设施竣工验收"})
    await expect(ru.locator("[data-testid=measure-1]")).to_contain_text("doc:渗滤液设施竣工验收")
    await expect(ru.locator("[data-testid=monthly-report]")).to_contain_text("月度调度报告")
    await act(ru, "REPORT_PROGRESS", {"reason": "本月完成渗滤液设施建设"})
    await expect(ru.locator("[data-testid=monthly-report]")).to_contain_text("this month's report is in")
    await act(ru, "COMPLETE_MEASURE", {"reason": "第二项措施完成", "evidence": "doc:生态修复验收"})
    await expect(ru.locator("[data-testid=measure-2]")).to_contain_text("已完成 done")
    await expect(ru.locator("[data-testid=milestone-M3\\.1]")).to_contain_text("2022-12-31")  # FB-14's dated milestone
    await act(ru, "COMPLETE_MEASURE", {"reason": "第三项措施完成", "evidence": "doc:历史遗留项目验收"})
    await shot(ru, "case-measures-done")
    await act(ru, "SUBMIT_COMPLETION", {"reason": "整改完成,申请初审"})
    await expect(ru.locator("[data-testid=stage-en]")).to_have_text("PRELIM_REVIEW")

    lead = await login(browser, console, "eco-lead")
    await lead.goto(f"{console.url}/cases/{case_no}")
    await act(lead, "PRELIM_PASS")
    await expect(lead.locator("[data-testid=stage-en]")).to_have_text("PUBLIC_POSTING")

    # The 7-day public posting: move this case's clock on the dev server past it.
    await console.env.fast_forward(console.env.client.get_workflow_handle(f"case-{case_no}"), timedelta(days=8))
    await wait_projection(console, case_no, "CLOSURE_APPLICATION", timeout=30)
    await ru.goto(f"{console.url}/cases/{case_no}")
    await act(ru, "APPLY_CLOSURE", {"reason": "公示无异议,申请销号"})
    await expect(ru.locator("[data-testid=stage-en]")).to_have_text("VERIFICATION")

    await lead.goto(f"{console.url}/cases/{case_no}")
    await lead.click("[data-testid=open-VERIFY_PASS]")
    await shot(lead, "verify-form")
    await lead.click("[data-testid=open-VERIFY_PASS]")  # close it again; `act` reopens
    # Criteria without evidence are refused with the validator's reason, shown in the page.
    await act(lead, "VERIFY_PASS", check=["eco_restored_met", "pollution_eliminated_met", "public_satisfied_met"])
    await expect(lead.locator("[data-testid=flash-error]")).to_contain_text("evidence")
    await shot(lead, "refusal-shown")
    await act(lead, "VERIFY_PASS",
              fill={"eco_restored_evidence": "doc:现场核查-001", "pollution_eliminated_evidence": "doc:监测报告-002",
                    "public_satisfied_evidence": "doc:群众满意度调查-003"},
              check=["eco_restored_met", "pollution_eliminated_met", "public_satisfied_met"])
    await expect(lead.locator("[data-testid=stage-en]")).to_have_text("FILING")

    await office.goto(f"{console.url}/cases/{case_no}")
    await act(office, "RECORD_FILING", {"reason": "备案销号"})
    await expect(office.locator("[data-testid=stage-en]")).to_have_text("CLOSED")
    await expect(office.locator("[data-testid=stage]")).to_have_text("已销号")
    await shot(office, "case-closed")
    events = [r["event"] for r in await console.pool.fetch(
        "SELECT event FROM ledger WHERE case_no = $1 ORDER BY seq", case_no)]
    for e in ("FILED", "TRANSFER", "ACKNOWLEDGE", "SUBMIT_COMPLETION", "PRELIM_PASS", "POSTING_ENDED",
              "APPLY_CLOSURE", "VERIFY_PASS", "RECORD_FILING"):
        assert e in events, f"{e} missing from the ledger: {events}"

    await office.goto(f"{console.url}/cases?q={case_no}")
    await shot(office, "case-list")
    await office.goto(console.url + "/dashboard")
    await expect(office.locator("[data-testid=closures-chart] rect")).to_have_count(12)
    bars = await office.locator("[data-testid=closures-chart] text.val").all_text_contents()
    assert sum(int(b) for b in bars) >= 1, "the closure shows in the chart"
    await shot(office, "dashboard")
    async with office.expect_download() as dl:
        await office.goto(console.url + "/cases")
        await office.click("a[href^='/cases/export.xlsx']")
    path = await (await dl.value).path()
    shutil.copy(path, ARTIFACTS / "taizhang.xlsx")

    # The office (like an auditor) reads the case's account from its workflow history.
    await office.goto(f"{console.url}/cases/{case_no}")
    await office.click(f"a[href='/audit/cases/{case_no}']")
    await expect(office.locator("[data-testid=audit-verdict]")).to_contain_text("哈希链完整")
    await expect(office.locator("[data-testid=audit-timeline]")).to_contain_text("备案销号")
    await shot(office, "audit-timeline")
    for p in (office, ru, lead):
        await p.context.close()
