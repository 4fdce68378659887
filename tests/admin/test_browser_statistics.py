"""The statistics page 统计 Statistics in Debian's chromium (Playwright): the office filters by
round and period, reads the 红黄绿灯 counts and charts, opens the red list and a case's light, and
downloads the exports; a responsible unit sees only its own figures. Screenshots:
test-artifacts/screenshots/statistics-*.png."""

from __future__ import annotations

import io

import pytest
from openpyxl import load_workbook

from tests.admin.conftest import Console
from tests.admin.test_statistics_page import Round, rnd  # noqa: F401  (the module's cases)
from tests.harness import OTHER_RU

pytestmark = pytest.mark.devserver

from playwright.async_api import Browser, expect  # noqa: E402

from tests.admin import test_browser as _tb  # noqa: E402  (skips this module too when chromium is missing)

browser = _tb.browser
login, shot = _tb.login, _tb.shot


async def test_the_office_reads_the_lights_and_exports(console: Console, browser: Browser, rnd: Round) -> None:  # noqa: F811
    page = await login(browser, console, "office")
    await page.click("header nav a[href='/statistics']")
    await expect(page.locator("h1")).to_contain_text("统计")
    await page.select_option("[data-testid=stats-filters] select[name=round]", label=rnd.name)
    await page.select_option("[data-testid=stats-filters] select[name=period]", value="2026")
    async with page.expect_navigation():
        await page.click("[data-testid=stats-apply]")
    for light, n in (("RED", "1"), ("YELLOW", "1"), ("GREEN", "1"), ("NO_DEADLINE", "1"), ("DONE", "0")):
        await expect(page.locator(f"[data-testid=count-{light}]")).to_have_attribute("data-n", n)
    for chart in ("chart-lights", "chart-units", "chart-counties", "chart-rounds", "chart-months"):
        await expect(page.locator(f"svg[data-testid={chart}]")).to_be_visible()
    assert await page.locator("svg[data-testid=chart-units] rect[data-key=RED]").count() == 1
    await expect(page.locator(f"[data-testid=light-{rnd.red}]")).to_have_attribute("data-light", "RED")
    await shot(page, "statistics-office")

    async with page.expect_download() as dl:
        await page.click("[data-testid=export-xlsx]")
    wb = load_workbook(io.BytesIO(open(await (await dl.value).path(), "rb").read()))
    summary = {r[0]: r[1] for r in wb["概要 Summary"].iter_rows(min_row=2, values_only=True)}
    assert summary["案件总数 cases"] == 4 and "2026年度" in summary["报告期 period"]

    async with page.expect_navigation():
        await page.click("[data-testid=count-GREEN]")
    await expect(page.locator(f"[data-testid=light-{rnd.green}]")).to_have_attribute("data-light", "GREEN")
    async with page.expect_navigation():
        await page.click(f"a[href='/cases/{rnd.green}']")
    await expect(page.locator("[data-testid=case-light]")).to_have_attribute("data-light", "GREEN")
    await shot(page, "statistics-case-light")
    await page.context.close()


async def test_a_unit_sees_only_its_own_figures(console: Console, browser: Browser, rnd: Round) -> None:  # noqa: F811
    page = await login(browser, console, "ru")
    await page.goto(f"{console.url}/statistics?round={rnd.name}")
    await expect(page.locator("[data-testid=scope-note]")).to_contain_text("仅本单位")
    await expect(page.locator("[data-testid=count-RED]")).to_have_attribute("data-n", "1")
    await expect(page.locator("[data-testid=count-GREEN]")).to_have_attribute("data-n", "0")
    body = await page.content()
    assert OTHER_RU.unit not in body and rnd.green not in body
    await shot(page, "statistics-unit")
    await page.context.close()
