"""Browser test of the monthly dispatch page: the office schedules and runs a month from the page,
sees the server-rendered chart (no script, no CSP violation) and opens the HTML report; a
responsible unit sees only its own rows. Screenshots: test-artifacts/screenshots/dispatch-*.png."""

from __future__ import annotations

import pytest

from tests.admin.conftest import Console
from tests.admin.test_browser import CHROMIUM, browser, login, shot  # noqa: F401 - browser is a fixture
from tests.admin.test_dispatch import NOW_PERIOD, _programme
from tests.harness import OTHER_RU, RU

pytestmark = pytest.mark.devserver

if not CHROMIUM.exists():
    pytest.skip("Debian chromium is not installed: run `make browser`", allow_module_level=True)

from playwright.async_api import Browser, expect  # noqa: E402


async def test_the_office_schedules_and_runs_the_dispatch_in_the_browser(
    browser: Browser, console: Console  # noqa: F811 - the browser fixture of test_browser.py
) -> None:
    pid = await _programme(console)
    page = await login(browser, console, "office")
    violations: list[str] = []
    page.on("console", lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None)
    await page.goto(f"{console.url}/programmes/{pid}/dispatch")
    await expect(page.locator("[data-testid=dispatch-schedule]")).to_contain_text("未安排")
    await page.fill("input[name=day_of_month]", "25")
    async with page.expect_navigation():
        await page.click("form[action$='/dispatch/schedule'] button")
    await expect(page.locator("[data-testid=dispatch-ok]")).to_contain_text("CREATED")
    await expect(page.locator("[data-testid=dispatch-schedule]")).to_contain_text("每月 25 日")
    async with page.expect_navigation():
        await page.click("[data-testid=dispatch-run]")
    await expect(page.locator("[data-testid=dispatch-ok]")).to_contain_text(f"dispatch-{pid}-{NOW_PERIOD}")
    await expect(page.locator("svg[data-testid=dispatch-chart]")).to_be_visible()
    await expect(page.locator(f"tr[data-period='{NOW_PERIOD}']")).to_be_visible()
    await shot(page, "dispatch-office")
    async with page.expect_navigation():  # the same month again: refused, said so
        await page.click("[data-testid=dispatch-run]")
    await expect(page.locator("[data-testid=dispatch-error]")).to_contain_text("AlreadyDispatched")
    await page.goto(f"{console.url}/programmes/{pid}/dispatch/{NOW_PERIOD}.html")
    await expect(page.locator("[data-testid=dispatch-summary]")).to_contain_text(OTHER_RU.unit)
    await expect(page.locator("svg[data-testid=dispatch-chart] rect").first).to_be_visible()
    await shot(page, "dispatch-report-html")
    assert violations == []
    await page.context.close()

    page = await login(browser, console, "ru")
    await page.goto(f"{console.url}/programmes/{pid}/dispatch")
    await expect(page.locator("[data-testid=dispatch-reports]")).to_contain_text(str(NOW_PERIOD))
    assert await page.locator("[data-testid=dispatch-run]").count() == 0
    await page.goto(f"{console.url}/programmes/{pid}/dispatch/{NOW_PERIOD}.html")
    await expect(page.locator("[data-testid=dispatch-summary]")).to_contain_text(RU.unit)
    await expect(page.locator("[data-testid=dispatch-summary]")).not_to_contain_text(OTHER_RU.unit)
    await shot(page, "dispatch-unit-view")
    await page.context.close()
    from workflows.dispatch_schedule import delete_dispatch_schedule

    await delete_dispatch_schedule(console.env.client, pid)
