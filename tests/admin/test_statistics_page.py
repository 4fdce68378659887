"""The statistics page 统计 (/statistics), its JSON API and exports, and casectl stats, on the real
console (dev server, worker, PostgreSQL): the 红黄绿灯 of real cases, figures scoped to the reader
(the office sees every case, a unit only its own), exports read back, the light on the case list
and the case page."""

from __future__ import annotations

import io
import json
import uuid
from dataclasses import dataclass

import pytest
import pytest_asyncio
from openpyxl import load_workbook
from pypdf import PdfReader

from tests.admin.conftest import Console, act_via_api, file_via_api, wait_projection
from tests.admin.test_console_http import login
from tests.harness import OTHER_RU, RU

pytestmark = pytest.mark.devserver


@dataclass
class Round:
    name: str
    red: str  # RU's case, rectifying, its plan date 10 days ago
    yellow: str  # RU's case, transferred: 3 working days to acknowledge
    green: str  # OTHER_RU's case, rectifying, due in 120 days
    grey: str  # OTHER_RU's case, registered: no deadline yet


@pytest_asyncio.fixture(scope="module")
async def rnd(console: Console) -> Round:
    tag = uuid.uuid4().hex[:6]
    r = Round(name=f"统计测试轮次-{tag}", red=f"L{tag}-R", yellow=f"L{tag}-Y", green=f"L{tag}-G", grey=f"L{tag}-N")
    base = {"inspection_round": r.name}
    await file_via_api(console, console.case_record(r.red, due_days=-10) | base)
    await file_via_api(console, console.case_record(r.yellow) | base)
    other = base | {"responsible_units": [OTHER_RU.unit], "lead_supervising_units": ["市林业局"]}
    await file_via_api(console, console.case_record(r.green) | other)
    await file_via_api(console, console.case_record(r.grey) | other)
    for no in (r.red, r.yellow):
        await act_via_api(console, "office", no, "TRANSFER")
    await act_via_api(console, "ru", r.red, "ACKNOWLEDGE")
    await act_via_api(console, "office", r.green, "TRANSFER")
    await act_via_api(console, "ru-other", r.green, "ACKNOWLEDGE")
    await wait_projection(console, r.red, "RECTIFYING")
    await wait_projection(console, r.green, "RECTIFYING")
    await wait_projection(console, r.yellow, "TRANSFERRED")
    return r


def _lights(d: dict) -> dict[str, int]:
    return {x["light"]: x["n"] for x in d["lights"]}


async def test_api_figures_are_scoped_to_the_reader(console: Console, rnd: Round) -> None:
    async with console.api("office") as http:
        d = (await http.get("/api/v1/statistics", params={"round": rnd.name})).json()
    assert d["total"] == 4 and _lights(d) == {"RED": 1, "YELLOW": 1, "GREEN": 1, "NO_DEADLINE": 1, "DONE": 0}
    assert [c["case_no"] for c in d["cases"]] == [rnd.red, rnd.yellow]
    assert [c["light"] for c in d["cases"]] == ["RED", "YELLOW"]
    assert {r["name"]: r["total"] for r in d["by_county"]} == {"蓝山县": 2, "宁远县": 2}
    assert {r["name"] for r in d["by_unit"]} == {RU.unit, OTHER_RU.unit}

    async with console.api("ru") as http:
        d = (await http.get("/api/v1/statistics", params={"round": rnd.name})).json()
    assert d["total"] == 2 and _lights(d) == {"RED": 1, "YELLOW": 1, "GREEN": 0, "NO_DEADLINE": 0, "DONE": 0}
    assert {r["name"] for r in d["by_unit"]} == {RU.unit}
    assert rnd.green not in json.dumps(d) and rnd.grey not in json.dumps(d)

    async with console.api("ru-other") as http:
        d = (await http.get("/api/v1/statistics", params={"round": rnd.name, "light": "GREEN"})).json()
    assert d["total"] == 2 and [c["case_no"] for c in d["cases"]] == [rnd.green]
    assert rnd.red not in json.dumps(d)

    async with console.api("citizen") as http:
        r = await http.get("/api/v1/statistics")
        assert r.status_code == 403 and r.json()["error"] == "NotAuthorizedError"
        assert (await http.get("/api/v1/statistics/export.xlsx")).status_code == 403
    async with console.api("office") as http:
        r = await http.get("/api/v1/statistics", params={"period": "2026-Q2"})
        assert r.status_code == 400 and "YYYY-H1" in r.json()["message"]
        assert (await http.get("/api/v1/statistics/export.docx")).status_code == 400


async def test_page_and_exports_show_each_role_its_own_figures(console: Console, rnd: Round) -> None:
    office = await login(console, "office")
    page = await office.get("/statistics", params={"round": rnd.name})
    assert page.status_code == 200
    for text in ("统计", "Statistics", "红黄绿灯", rnd.red, rnd.yellow, 'data-testid="chart-units"', "<svg",
                 'data-testid="count-RED" data-n="1"', "蓝山县", "宁远县"):
        assert text in page.text, text
    assert rnd.green not in page.text  # the list holds red and yellow cases unless asked
    assert "<script" not in page.text

    ru = await login(console, "ru")
    page = await ru.get("/statistics", params={"round": rnd.name})
    assert page.status_code == 200 and rnd.red in page.text
    assert OTHER_RU.unit not in page.text and "宁远县" not in page.text
    xlsx = await ru.get("/statistics/export.xlsx", params={"round": rnd.name})
    assert xlsx.status_code == 200 and "spreadsheetml" in xlsx.headers["content-type"]
    wb = load_workbook(io.BytesIO(xlsx.content))
    summary = {r[0]: r[1] for r in wb["概要 Summary"].iter_rows(min_row=2, values_only=True)}
    assert summary["案件总数 cases"] == 2 and summary["红灯 逾期 overdue"] == 1
    assert [r[0] for r in wb["红黄灯案件 Red & yellow"].iter_rows(min_row=2, values_only=True)] == [rnd.red, rnd.yellow]
    cells = " ".join(str(v) for ws in wb.worksheets for row in ws.iter_rows(values_only=True) for v in row if v)
    assert OTHER_RU.unit not in cells and rnd.green not in cells

    pdf = await office.get("/statistics/export.pdf", params={"round": rnd.name, "period": "2026"})
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    text = " ".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf.content)).pages)
    for word in ("督察整改统计报告", "2026年度", rnd.red, rnd.yellow, "蓝山县", "宁远县"):
        assert word in text.replace("\n", ""), word

    citizen = await login(console, "citizen")
    assert (await citizen.get("/statistics")).status_code == 403
    assert (await citizen.get("/statistics/export.pdf")).status_code == 403
    assert (await office.get("/statistics", params={"period": "soon"})).status_code == 400
    for http in (office, ru, citizen):
        await http.aclose()


async def test_the_light_is_on_the_case_list_and_the_case_page(console: Console, rnd: Round) -> None:
    office = await login(console, "office")
    page = await office.get("/cases", params={"round": rnd.name})
    assert f'data-testid="light-{rnd.red}" data-light="RED"' in page.text
    assert f'data-testid="light-{rnd.yellow}" data-light="YELLOW"' in page.text
    assert f'data-testid="light-{rnd.green}" data-light="GREEN"' in page.text
    assert f'data-testid="light-{rnd.grey}" data-light="NO_DEADLINE"' in page.text
    case = await office.get(f"/cases/{rnd.red}")
    assert 'data-testid="case-light" data-light="RED"' in case.text
    async with console.api("ru") as http:
        body = (await http.get(f"/api/v1/cases/{rnd.yellow}")).json()
        assert body["case"]["light"] == "YELLOW"
    await office.aclose()


async def test_casectl_stats(console: Console, rnd: Round, tmp_path) -> None:
    p = await console.cli("stats", "--round", rnd.name, user="ru")
    assert p.returncode == 0, p.stderr
    assert "2 cases" in p.stdout and "RED=1" in p.stdout and rnd.red in p.stdout and rnd.green not in p.stdout
    p = await console.cli("stats", "--json", "--round", rnd.name, "--period", "2026-H2", user="office")
    assert p.returncode == 0, p.stderr
    d = json.loads(p.stdout)
    assert d["total"] == 4 and d["period"]["key"] == "2026-H2"
    out = tmp_path / "stats.pdf"
    p = await console.cli("stats", "--round", rnd.name, "--light", "GREEN", "--format", "pdf", "-o", str(out),
                          user="ru-other")
    assert p.returncode == 0, p.stderr
    text = " ".join(pg.extract_text() for pg in PdfReader(str(out)).pages)
    assert rnd.green in text and rnd.red not in text
    p = await console.cli("stats", "--period", "2026-H3", user="office")
    assert p.returncode == 1 and "YYYY-H1" in p.stderr
    p = await console.cli("stats", user="citizen")
    assert p.returncode == 4
