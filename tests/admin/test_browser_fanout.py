"""Browser test of county fan-out (issue 13): the office transfers a fan-out item in the console,
the parent's page lists its children, and a county logs in and sees only its own child.

Fan-out is on for this test only (the item is filed under a policy with `fanout.enabled`); real
console, worker, PostgreSQL, Temporal dev server and Debian's chromium (see test_browser.py).
"""

from __future__ import annotations

import pytest
from playwright.async_api import Browser, expect

from tests.admin.conftest import Console, wait_projection
from tests.admin.fanout_helpers import CITY_UNIT, children_of, county_list, file_fanout_item
from tests.admin.test_browser import browser, login, shot  # noqa: F401 - the module's browser fixture
from tests.harness import OTHER_RU, RU

pytestmark = pytest.mark.devserver


async def test_office_transfers_a_fan_out_item_and_a_county_sees_only_its_own_child(
        console: Console, browser: Browser, tmp_path) -> None:  # noqa: F811
    with county_list(tmp_path):
        parent = await file_fanout_item(console, prefix="FB")
        office = await login(browser, console, "office")
        await office.goto(f"{console.url}/cases/{parent}")
        await expect(office.locator("[data-testid=stage-en]")).to_have_text("REGISTERED")
        await office.click("[data-testid=open-TRANSFER]")
        async with office.expect_navigation():
            await office.click("[data-testid=submit-TRANSFER]")
        await expect(office.locator("[data-testid=flash-ok]")).to_be_visible()
        kids = await children_of(console, parent)
    own, other, city = kids[RU.unit], kids[OTHER_RU.unit], kids[CITY_UNIT]
    await wait_projection(console, own, "TRANSFERRED")
    await office.goto(f"{console.url}/cases/{parent}")  # the children report in after the transfer
    table = office.locator("[data-testid=children-table]")
    for no in (city, own, other):
        await expect(table.locator(f"[data-testid='child-{no}']")).to_be_visible()
    await expect(table.locator(f"[data-testid='child-{own}']")).to_contain_text(RU.unit)
    await expect(table.locator(f"[data-testid='child-{own}']")).to_contain_text("已交办")
    await expect(office.locator("[data-testid=children]")).to_contain_text("省级抽查")
    await shot(office, "fanout-parent-office")

    county = await login(browser, console, "ru")
    await expect(county.locator(f"a[href='/cases/{own}']")).to_be_visible()  # 我的待办: 签收 its child
    await expect(county.locator(f"a[href='/cases/{other}']")).to_have_count(0)
    await county.click(f"a[href='/cases/{own}']")
    await expect(county.locator("[data-testid=parent-link]")).to_contain_text(parent)
    await shot(county, "fanout-child-county")
    await county.click(f"[data-testid=parent-link] a[href='/cases/{parent}']")
    rows = county.locator("[data-testid=children-table] tbody tr")
    await expect(rows).to_have_count(1)
    await expect(rows.first).to_contain_text(own)
    await expect(county.locator("body")).not_to_contain_text(other)
    await expect(county.locator("body")).not_to_contain_text(OTHER_RU.unit)
    await expect(county.locator("[data-testid=children-own-only]")).to_be_visible()
    await expect(county.locator("[data-testid=summary-only]")).to_be_visible()  # no record, no ledger
    await shot(county, "fanout-parent-county")
    resp = await county.goto(f"{console.url}/cases/{other}")
    assert resp is not None and resp.status == 404
    await office.context.close()
    await county.context.close()
