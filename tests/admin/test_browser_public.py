"""The public disclosure site in a real browser (chromium): a member of the public, not logged in,
objects to an item in 公示; the posting pauses; the office upholds the objection in the console with a
reason; the case goes back to RECTIFYING; the receipt page and the item page publish the ruling and
its reason. Screenshots: test-artifacts/screenshots/public-*.png.
"""

from __future__ import annotations

import json

import pytest
from playwright.async_api import Browser, expect

from tests.admin import test_browser as _tb  # skips this module too when chromium is missing
from tests.admin.conftest import Console, wait_projection
from tests.admin.public_helpers import PublicSite, make_programme, public_site  # noqa: F401 - fixture

pytestmark = pytest.mark.devserver
browser = _tb.browser  # the module-scoped chromium fixture


async def test_objection_on_the_public_page_pauses_the_posting_is_upheld_and_published(
        console: Console, public_site: PublicSite, browser: Browser) -> None:  # noqa: F811
    prg = await make_programme(console)
    ctx = await browser.new_context(locale="zh-CN", viewport={"width": 1280, "height": 900})
    page = await ctx.new_page()
    await page.goto(f"{public_site.url}/")
    await page.click(f"a[href='/p/{prg.pid}']")
    await expect(page.locator("[data-testid=items]")).to_contain_text(prg.posting)
    await expect(page.locator(f"tr[data-item='{prg.posting}']")).to_contain_text("公示中")
    await _tb.shot(page, "public-programme")
    await page.click(f"tr[data-item='{prg.posting}'] a >> nth=0")
    await expect(page.locator("[data-testid=objection-form]")).to_be_visible()
    await page.fill("textarea[name=text]", "河道仍有黑臭,公示的整改完成情况与实际不符 <b>请核查</b>")
    await page.fill("input[name=contact]", "13800138000")
    await _tb.shot(page, "public-item-form")
    async with page.expect_navigation():
        await page.click("[data-testid=submit-objection]")
    await expect(page.locator("[data-testid=receipt-new]")).to_be_visible()
    receipt = (await page.locator("[data-testid=receipt-no]").inner_text()).strip()
    assert len(receipt.replace("-", "")) == 16
    await expect(page.locator("[data-testid=receipt-text]")).to_contain_text("<b>请核查</b>")  # shown as text
    await expect(page.locator("[data-testid=receipt-status]")).to_contain_text("待整改办裁定")
    await _tb.shot(page, "public-receipt-new")

    # The posting is paused exactly as for a console objection: no end, the time left kept.
    detail = json.loads(await console.pool.fetchval("SELECT detail::text FROM case_projection WHERE case_no = $1",
                                                    prg.posting))
    assert detail["posting"]["ends_at"] is None and detail["posting"]["remaining_seconds"] > 0
    [obj] = detail["posting"]["objections"]
    assert obj["by"].startswith("public-site:PO-") and "13800138000" not in json.dumps(detail)
    await page.goto(f"{public_site.url}/p/{prg.pid}/items/{prg.posting}")
    await expect(page.locator("[data-testid=paused]")).to_be_visible()
    await _tb.shot(page, "public-item-paused")

    # The office sees it (console case page and publication page) and upholds it with a reason.
    office = await _tb.login(browser, console, "office")
    await office.goto(f"{console.url}/programmes/{prg.pid}/publication")
    await expect(office.locator("[data-testid=public-objections]")).to_contain_text(prg.posting)
    await expect(office.locator("[data-testid=public-objections]")).to_contain_text("DELIVERED")
    await _tb.shot(office, "public-office-publication")
    await office.goto(f"{console.url}/cases/{prg.posting}")
    await expect(office.locator("[data-testid=objections]")).to_contain_text("河道仍有黑臭")
    await expect(office.locator("[data-testid=form-UPHOLD_OBJECTION] [data-testid=ruling-published]")).to_be_attached()
    await _tb.act(office, "UPHOLD_OBJECTION", {"reason": "经现场复核,河道仍有黑臭,退回整改"})
    await expect(office.locator("[data-testid=stage-en]")).to_have_text("RECTIFYING")
    await wait_projection(console, prg.posting, "RECTIFYING")

    # The receipt page and the item page publish the ruling and its reason.
    await page.goto(f"{public_site.url}/receipt")
    await page.fill("input[name=no]", receipt.lower())
    async with page.expect_navigation():
        await page.click("button[type=submit]")
    await expect(page.locator("[data-testid=receipt-status]")).to_contain_text("异议成立")
    await expect(page.locator("[data-testid=ruling-reason]")).to_have_text("经现场复核,河道仍有黑臭,退回整改")
    await _tb.shot(page, "public-receipt-upheld")
    await page.goto(f"{public_site.url}/p/{prg.pid}/items/{prg.posting}")
    await expect(page.locator("[data-testid=progress]")).to_contain_text("整改中")
    await expect(page.locator("[data-testid=objections]")).to_contain_text("经现场复核,河道仍有黑臭,退回整改")
    assert await page.locator("[data-testid=objection-form]").count() == 0  # the window is over
    await _tb.shot(page, "public-item-upheld")
    assert await page.context.cookies() == []  # the public site set no cookie
    await office.context.close()
    await ctx.close()


async def test_office_sets_options_and_names_a_lagging_unit_in_the_console(
        console: Console, public_site: PublicSite, browser: Browser) -> None:  # noqa: F811
    prg = await make_programme(console)
    await console.pool.execute("UPDATE case_projection SET due_date = current_date - 3 WHERE case_no = $1",
                               prg.rectifying)
    office = await _tb.login(browser, console, "office")
    await office.goto(f"{console.url}/programmes/{prg.pid}")
    await office.click("[data-testid=publication-link]")
    await office.check("input[name=show_due_dates]")
    await office.check("input[name=show_units]")
    async with office.expect_navigation():
        await office.click("[data-testid=save-options]")
    await expect(office.locator("[data-testid=publication-ok]")).to_be_visible()
    form = office.locator("[data-testid=name-form]").first
    await form.locator("input[name=reason]").fill("两项整改逾期未完成")
    async with office.expect_navigation():
        await form.locator("button").click()
    await expect(office.locator("[data-testid=exposure]")).to_contain_text("两项整改逾期未完成")
    await expect(office.locator("[data-testid=publication-ledger]")).to_contain_text("曝光")
    await _tb.shot(office, "public-office-named")
    pub = await browser.new_context(locale="zh-CN")
    p = await pub.new_page()
    await p.goto(f"{public_site.url}/p/{prg.pid}")
    await expect(p.locator("[data-testid=named-units]")).to_contain_text("两项整改逾期未完成")
    await expect(p.locator(f"tr[data-item='{prg.rectifying}']")).to_contain_text("逾期")
    await _tb.shot(p, "public-programme-named")
    # A unit may not open the office's page.
    ru = await _tb.login(browser, console, "ru")
    resp = await ru.goto(f"{console.url}/programmes/{prg.pid}/publication")
    assert resp is not None and resp.status == 403
    for c in (office.context, ru.context, pub):
        await c.close()
