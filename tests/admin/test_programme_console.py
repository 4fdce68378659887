"""The programme pages (整改方案 Programmes) in a real browser, their API's read scoping, and
`casectl programme` / `casectl import --programme`, against the real console, worker, PostgreSQL
and Temporal dev server."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime

import pytest

from domain.calendar import local_date
from tests.admin.conftest import Console, file_via_api
from tests.admin.test_browser import browser, login, shot  # noqa: F401 - the browser fixture
from tests.harness import OTHER_RU, RU

pytestmark = pytest.mark.devserver

from playwright.async_api import Browser, expect  # noqa: E402


async def make_programme(c: Console) -> tuple[str, list[str]]:
    """A programme (plan submitted) with one case of each of two responsible units, counted."""
    pid = f"PW-{uuid.uuid4().hex[:6]}"
    async with c.api("office") as http:
        r = await http.post("/api/v1/programmes", json={
            "programme_id": pid, "name": "xx市第二轮督察整改方案(测试)", "inspection_round": "第二轮中央生态环境保护督察",
            "locality": "xx市", "counties": ["蓝山县", "宁远县"],
            "feedback_date": local_date(datetime.now(UTC)).isoformat(), "submit_plan": "x办发〔2026〕9号"})
        assert r.status_code == 201, r.text
        cases = []
        for unit in (RU.unit, OTHER_RU.unit):
            rec = c.case_record() | {"programme_id": pid, "responsible_units": [unit]}
            cases.append(await file_via_api(c, rec))
        for _ in range(100):
            if await c.pool.fetchval("SELECT count(*) FROM case_projection WHERE programme_id = $1", pid) == 2:
                break
            await asyncio.sleep(0.1)
        for _ in range(100):
            await http.post(f"/api/v1/programmes/{pid}/refresh")
            if await c.pool.fetchval("SELECT total_cases FROM programme_projection WHERE programme_id = $1", pid) == 2:
                break
            await asyncio.sleep(0.3)
    return pid, cases


async def test_programme_page_office_submits_the_report_and_a_unit_sees_its_own(
    console: Console, browser: Browser  # noqa: F811
) -> None:
    pid, cases = await make_programme(console)
    office = await login(browser, console, "office")
    await office.click("a[href='/programmes']")
    await expect(office.locator("[data-testid=programmes]")).to_contain_text(pid)
    await shot(office, "programmes")
    await office.click(f"a[href='/programmes/{pid}']")
    await expect(office.locator("[data-testid=programme-stage]")).to_contain_text("PLAN_SUBMITTED")
    await expect(office.locator("[data-testid=by-unit]")).to_contain_text(RU.unit)
    await expect(office.locator("[data-testid=by-unit]")).to_contain_text(OTHER_RU.unit)
    await expect(office.locator("[data-testid=by-county]")).to_contain_text("蓝山县")
    await expect(office.locator("[data-testid=timer-REPORT]")).to_contain_text("六个月")
    await expect(office.locator("[data-testid=dispatch-reports]")).to_be_visible()
    await expect(office.locator("[data-testid=programme-ledger]")).to_contain_text("PLAN_SUBMITTED")
    await shot(office, "programme")
    await office.fill("[data-testid=form-SUBMIT_REPORT] [data-testid=reference]", "整改落实情况报告(第一次)")
    async with office.expect_navigation():
        await office.click("[data-testid=submit-SUBMIT_REPORT]")
    await expect(office.locator("[data-testid=programme-ok]")).to_be_visible()
    await expect(office.locator("[data-testid=programme-stage]")).to_contain_text("REPORTED")
    await expect(office.locator("[data-testid=timer-REPORT]")).to_contain_text("按期完成")
    await shot(office, "programme-reported")
    events = [r["event"] for r in await console.pool.fetch(
        "SELECT event FROM programme_ledger WHERE programme_id = $1 ORDER BY seq", pid)]
    assert events[-1] == "SIX_MONTH_REPORT_SUBMITTED"

    ru = await login(browser, console, "ru")
    await ru.goto(f"{console.url}/programmes/{pid}")
    await expect(ru.locator("[data-testid=programme-total]")).to_have_text("1")
    await expect(ru.locator("[data-testid=by-unit]")).to_contain_text(RU.unit)
    assert OTHER_RU.unit not in await ru.locator("[data-testid=by-unit]").inner_text()
    assert await ru.locator("[data-testid=six-month-report]").count() == 0
    assert await ru.locator("[data-testid=programme-ledger]").count() == 0
    await shot(ru, "programme-own-unit")
    # a forged form post by a unit is refused and records nothing
    csrf = await ru.locator("input[name=csrf_token]").first.get_attribute("value")
    before = await console.pool.fetchval("SELECT count(*) FROM programme_ledger WHERE programme_id = $1", pid)
    await ru.request.post(f"{console.url}/programmes/{pid}/act/SUBMIT_REPORT",
                          form={"csrf_token": csrf or "", "reference": "伪造"})
    assert await console.pool.fetchval("SELECT count(*) FROM programme_ledger WHERE programme_id = $1", pid) == before

    citizen = await login(browser, console, "citizen")
    assert await citizen.locator("a[href='/programmes']").count() == 0
    resp = await citizen.goto(f"{console.url}/programmes/{pid}")
    assert resp is not None and resp.status == 404
    for p in (office, ru, citizen):
        await p.context.close()


async def test_programme_api_read_scoping(console: Console) -> None:
    pid, _ = await make_programme(console)
    async with console.api("duchashi") as http:
        v = (await http.get(f"/api/v1/programmes/{pid}")).json()
        assert v["read"] == "WHOLE" and v["total"] == 2 and "report" in v
    async with console.api("ru-other") as http:
        v = (await http.get(f"/api/v1/programmes/{pid}")).json()
        assert v["read"] == "OWN" and v["total"] == 1 and [u["unit"] for u in v["units"]] == [OTHER_RU.unit]
        assert "report" not in v and "ledger" not in v
        listed = (await http.get("/api/v1/programmes")).json()["programmes"]
        assert {p["programme_id"] for p in listed} >= {pid} and all("report_due_date" not in p for p in listed)
        r = await http.post(f"/api/v1/programmes/{pid}/actions/SUBMIT_REPORT",
                            json={"reference": "x", "request_id": "forged-1"})
        assert r.status_code == 403
    async with console.api("lead") as http:  # lead supervising unit of both: its own cases, both
        v = (await http.get(f"/api/v1/programmes/{pid}")).json()
        assert v["read"] == "OWN" and v["total"] == 2
    for user in ("citizen", "discipline"):
        async with console.api(user) as http:
            assert (await http.get(f"/api/v1/programmes/{pid}")).status_code == 404
            assert (await http.get("/api/v1/programmes")).status_code == 403
    async with console.api("office") as http:
        r = await http.post(f"/api/v1/programmes/{pid}/actions/SUBMIT_PLAN",
                            json={"reference": "again", "request_id": "again-1"})
        assert r.status_code == 409 and r.json()["error"] == "InvalidTransitionError"
    # Refused Updates leave no trace in history: both refusals are in refused_action.
    refused = {(r["request_id"], r["error_type"], r["actor_user"]) for r in await console.pool.fetch(
        "SELECT request_id, error_type, actor_user FROM refused_action WHERE case_no = $1", f"programme:{pid}")}
    assert refused == {("forged-1", "NotAuthorizedError", "ru-other"), ("again-1", "InvalidTransitionError", "office")}
    async with console.api("office") as http:
        r = await http.post("/api/v1/programmes", json={"programme_id": "bad id", "name": "\x00"})
        assert r.status_code == 422 and "programme_id" in r.json()["message"]


async def test_casectl_programme_and_import_into_a_programme(console: Console, tmp_path) -> None:  # type: ignore[no-untyped-def]
    pid = f"PC-{uuid.uuid4().hex[:6]}"
    r = await console.cli("programme", "create", "--id", pid, "--name", "测试方案", "--round", "第二轮",
                          "--locality", "xx市", "--county", "蓝山县", "--feedback-date",
                          local_date(datetime.now(UTC)).isoformat())
    assert r.returncode == 0, r.stderr
    r = await console.cli("programme", "submit-plan", pid, "--reference", "x办发〔2026〕3号", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["stage"] == "PLAN_SUBMITTED"
    r = await console.cli("programme", "submit-report", pid, "--reference", "r", user="ru")
    assert r.returncode == 4 and "only the rectification office" in r.stderr
    f = tmp_path / "rows.json"
    rec = console.case_record()
    f.write_text(json.dumps([rec], ensure_ascii=False), encoding="utf-8")
    r = await console.cli("import", str(f), "--programme", "NO-SUCH-PROG")
    assert r.returncode == 1 and "NO-SUCH-PROG" in r.stderr
    r = await console.cli("import", str(f), "--programme", pid)
    assert r.returncode == 0 and "1 filed" in r.stdout, r.stdout + r.stderr
    for _ in range(50):
        if await console.pool.fetchval("SELECT programme_id FROM case_projection WHERE case_no = $1", rec["case_no"]):
            break
        await asyncio.sleep(0.1)
    assert await console.pool.fetchval("SELECT programme_id FROM case_projection WHERE case_no = $1",
                                       rec["case_no"]) == pid
    r = await console.cli("programme", "show", pid)
    assert r.returncode == 0 and "REPORT" in r.stdout and "per county" in r.stdout, r.stdout + r.stderr
    r = await console.cli("programme", "list")
    assert r.returncode == 0 and pid in r.stdout
