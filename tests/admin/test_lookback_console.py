"""The look-back pages (回头看 Look-backs) in a real browser, their API's read scoping, bad input, and
`casectl lookback`, against the real console, worker, PostgreSQL and Temporal dev server."""

from __future__ import annotations

import io
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from openpyxl import load_workbook

from domain.calendar import local_date
from tests.admin.conftest import Console, act_via_api, file_via_api, wait_projection
from tests.admin.test_browser import browser, login, shot  # noqa: F401 - the browser fixture
from workflows.contracts import case_workflow_id

pytestmark = pytest.mark.devserver

from playwright.async_api import Browser, expect  # noqa: E402

CRITERIA = {k: {"met": True, "evidence": ["doc:site-check-1"]} for k in
            ("eco_restored", "pollution_eliminated", "public_satisfied")}


async def closed_case(c: Console, prog: str) -> str:
    no = await file_via_api(c, c.case_record() | {"programme_id": prog})
    await act_via_api(c, "office", no, "TRANSFER")
    await act_via_api(c, "ru", no, "ACKNOWLEDGE")
    for seq in (1, 2):
        await act_via_api(c, "ru", no, "COMPLETE_MEASURE", measure_seq=seq, evidence=[f"doc:m{seq}"])
    await act_via_api(c, "ru", no, "SUBMIT_COMPLETION", evidence=["doc:done"])
    await act_via_api(c, "lead", no, "PRELIM_PASS")
    await c.env.fast_forward(c.env.client.get_workflow_handle(case_workflow_id(no)), timedelta(days=8))
    await wait_projection(c, no, "CLOSURE_APPLICATION")
    await act_via_api(c, "ru", no, "APPLY_CLOSURE")
    await act_via_api(c, "lead", no, "VERIFY_PASS", criteria=CRITERIA)
    await act_via_api(c, "office", no, "RECORD_FILING")
    await wait_projection(c, no, "CLOSED")
    return no


async def test_office_runs_a_campaign_in_the_browser_and_scoping_holds(
    console: Console, browser: Browser  # noqa: F811
) -> None:
    prog = f"LBP-{uuid.uuid4().hex[:6]}"
    a, b = await closed_case(console, prog), await closed_case(console, prog)
    cid = f"LBC-{uuid.uuid4().hex[:6]}"
    today = local_date(datetime.now(UTC))

    office = await login(browser, console, "office")
    await office.click("a[href='/lookbacks']")
    await office.fill("[data-testid=lb-id]", cid)
    await office.fill("[data-testid=lb-name]", "2026年整改回头看")
    await office.fill("[data-testid=lb-basis]", "对已整改销号问题适时开展'回头看'")
    await office.check("[data-testid=lb-unannounced]")
    await office.fill("[data-testid=lb-start]", today.isoformat())
    await office.fill("[data-testid=lb-end]", (today + timedelta(days=30)).isoformat())
    await office.fill("[data-testid=lb-programme]", prog)
    await office.click("[data-testid=lb-create]")
    await expect(office.locator("[data-testid=lookback-stage]")).to_contain_text("CREATED")
    await office.click("[data-testid=lb-select]")
    await expect(office.locator("[data-testid=lb-selected]")).to_contain_text("2")
    await expect(office.locator("[data-testid=lb-unvisited]")).to_contain_text(a)
    await office.select_option("[data-testid=lb-case]", a)
    await office.select_option("[data-testid=lb-finding]", "REBOUND")
    await office.fill("[data-testid=lb-evidence]", "现场发现渗滤液再次直排")
    await office.click("[data-testid=lb-record]")
    await expect(office.locator(f"[data-testid=lb-row-{a}]")).to_contain_text("问题反弹")
    await expect(office.locator(f"[data-testid=lb-row-{a}]")).to_contain_text("REOPENED")
    await shot(office, "lookback-office")
    await wait_projection(console, a, "RECTIFYING")

    # the lead supervising unit records the other case's finding; the campaign then ends itself
    lead = await login(browser, console, "lead")
    await lead.goto(f"{console.url}/lookbacks/{cid}")
    await lead.select_option("[data-testid=lb-case]", b)
    await lead.fill("[data-testid=lb-evidence]", "整改到位")
    await lead.click("[data-testid=lb-record]")
    await expect(lead.locator("[data-testid=lookback-stage]")).to_contain_text("CLOSED")

    # who reads: the responsible unit and the public see no campaign (404 / 403), the auditor all
    async with console.api("ru") as http:
        assert (await http.get(f"/api/v1/lookbacks/{cid}")).status_code == 404
        assert (await http.get("/api/v1/lookbacks")).status_code == 403
        assert (await http.get(f"/api/v1/lookbacks/{cid}/report.xlsx")).status_code == 404
        r = await http.post(f"/api/v1/lookbacks/{cid}/finding", json={"case_no": a, "finding": "IN_PLACE",
                                                                       "evidence": "x"})
        assert r.status_code == 404
    assert await console.pool.fetchval(
        "SELECT count(*) FROM refused_action WHERE case_no = $1 AND actor_user = 'ru'", f"lookback:{cid}") == 1
    async with console.api("citizen") as http:
        assert (await http.get(f"/api/v1/lookbacks/{cid}")).status_code == 404
        assert (await http.get("/api/v1/lookbacks")).status_code == 403
    async with console.api("auditor") as http:
        r = await http.get(f"/api/v1/lookbacks/{cid}/report.xlsx")
        assert r.status_code == 200
        wb = load_workbook(io.BytesIO(r.content))
        counts = {row[0]: row[1] for row in wb["汇总"].iter_rows(values_only=True) if row and row[0]}
        assert counts["选取案件 selected"] == 2 and counts["问题反弹 REBOUND"] == 1 and counts["已重新整改 reopened"] == 1
        pdf = await http.get(f"/api/v1/lookbacks/{cid}/report.pdf")
        assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")

    # casectl
    p = await console.cli("lookback", "show", cid)
    assert p.returncode == 0 and "REBOUND" in p.stdout and "PERFORMANCE" in p.stdout, p.stderr


async def test_bad_input_is_refused_with_a_clear_error_and_recorded(console: Console) -> None:
    cid = f"LBC-{uuid.uuid4().hex[:6]}"
    today = local_date(datetime.now(UTC))
    async with console.api("office") as http:
        bad = await http.post("/api/v1/lookbacks", json={"campaign_id": cid, "name": "回头\x00看",
                                                         "start": today.isoformat(), "end": today.isoformat()})
        assert bad.status_code == 422 and "name" in bad.text and "U+0000" in bad.text
        r = await http.post("/api/v1/lookbacks", json={"campaign_id": cid, "name": "回头看", "start": today.isoformat(),
                                                       "end": (today + timedelta(days=5)).isoformat(),
                                                       "programme_id": f"NONE-{cid}"})
        assert r.status_code == 201, r.text
        assert (await http.post(f"/api/v1/lookbacks/{cid}/select", json={})).status_code == 200
        long = await http.post(f"/api/v1/lookbacks/{cid}/finding", json={"case_no": "X-1", "finding": "IN_PLACE",
                                                                         "evidence": "长" * 5000})
        assert long.status_code == 422 and "evidence" in long.text
        nul = await http.post(f"/api/v1/lookbacks/{cid}/finding", json={"case_no": "X-1", "finding": "IN_PLACE",
                                                                        "evidence": "a\x00b"})
        assert nul.status_code == 422 and "U+0000" in nul.text
    rows = await console.pool.fetch("SELECT error_type FROM refused_action WHERE case_no = $1", f"lookback:{cid}")
    assert [r["error_type"] for r in rows] == ["InvalidInput", "InvalidInput"]
    async with console.api("lead") as http:  # a lead reads no campaign without a case it leads
        assert (await http.post("/api/v1/lookbacks", json={"campaign_id": cid + "x", "name": "x",
                                                           "start": today.isoformat(),
                                                           "end": today.isoformat()})).status_code == 403
