"""Leadership statistics against a real PostgreSQL: cases written to the ledger and the projection
by the real record activity, then the period summaries (half-years, the year), the 红黄绿灯
counts, completion by unit and county, the read scoping of every figure, and the .xlsx and PDF
exports read back (openpyxl, pypdf)."""

from __future__ import annotations

import io
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import asyncpg
import pytest
from openpyxl import load_workbook
from pypdf import PdfReader
from temporalio.testing import ActivityEnvironment

from activities.case_activities import CaseActivities
from admin.readmodel import ReadDenied, ReadModel
from admin.service import FormError
from admin.statistics import Statistics, StatsFilter, progress_by
from admin.stats_export import to_pdf, to_xlsx
from admin.users import User
from domain import decide as d
from domain.enums import Role, Stage
from domain.policy import Policy
from domain.statistics import CITY_LEVEL, parse_period
from domain.visibility import HomeUnits
from tests.harness import OFFICE, make_filing
from tests.unit.factories import calendar
from workflows.contracts import LedgerEntry, RecordInput

TODAY = date(2026, 12, 1)  # a Tuesday


def _utc(y: int, m: int, day: int, h: int = 2, minute: int = 0) -> datetime:
    return datetime(y, m, day, h, minute, tzinfo=UTC)


@dataclass
class World:
    tag: str
    round: str
    lanshan: str
    ningyuan: str
    fgw: str
    cases: dict[str, str]  # letter -> case number


async def _write(pool: asyncpg.Pool, case_no: str, units: list[str], rnd: str, filed: datetime,
                 moves: list[tuple[str, Stage, datetime]], due: date | None) -> None:
    """A case filed at `filed`, then moved through `moves` (event, to stage, at), written by the
    real record activity (ledger rows with their hash chain, and the projection)."""
    filing = make_filing(case_no).model_copy(update={"responsible_units": units, "inspection_round": rnd})
    new = d.new_case(filing, Policy(), filed, OFFICE)
    entries = list(new.entries)
    stage = Stage.REGISTERED
    for event, to, at in moves:
        entries.append(LedgerEntry(case_no=case_no, seq=len(entries) + 1, event=event, actor=OFFICE, at=at,
                                   from_stage=stage, to_stage=to))
        stage = to
    last_at = moves[-1][2] if moves else filed
    proj = d.projection(new.state).model_copy(update={
        "stage": stage, "stage_entered_at": last_at, "due_date": due,
        "due_at": None if due is None else datetime.combine(due + timedelta(days=1), datetime.min.time(), UTC),
        "closed_at": last_at if stage is Stage.CLOSED else None, "last_seq": len(entries),
        "responsible_units": units, "inspection_round": rnd})
    inp = RecordInput(entries=entries, notices=[], projection=proj, workflow_run_id=f"run-{case_no}")
    assert await ActivityEnvironment().run(CaseActivities(pool).record_case_events, inp) == len(entries)


@pytest.fixture
async def world(pool: asyncpg.Pool) -> World:
    tag = uuid.uuid4().hex[:6]
    w = World(tag=tag, round=f"第二轮中央生态环境保护督察-{tag}", lanshan=f"蓝山县委、县政府{tag}",
              ningyuan=f"宁远县人民政府{tag}", fgw=f"市发改委{tag}", cases={k: f"ST{tag}-{k}" for k in "ABCDEFG"})
    rect = ("ACKNOWLEDGE", Stage.RECTIFYING)
    c = w.cases
    await _write(pool, c["A"], [w.lanshan], w.round, _utc(2026, 2, 10), [(*rect, _utc(2026, 2, 11))],
                 date(2026, 11, 20))  # overdue: red
    await _write(pool, c["B"], [w.lanshan, w.fgw], w.round, _utc(2026, 3, 1), [(*rect, _utc(2026, 3, 2))],
                 date(2026, 12, 4))  # Fri: 3 working days left: yellow
    await _write(pool, c["C"], [w.ningyuan], w.round, _utc(2026, 8, 1), [(*rect, _utc(2026, 8, 2))],
                 date(2027, 3, 31))  # green; filed in the second half-year
    await _write(pool, c["D"], [w.ningyuan], w.round, _utc(2026, 1, 5), [(*rect, _utc(2026, 1, 6))],
                 None)  # 持续推进: no deadline
    await _write(pool, c["E"], [w.lanshan], w.round, _utc(2026, 1, 10),
                 [(*rect, _utc(2026, 1, 11)), ("RECORD_FILING", Stage.CLOSED, _utc(2026, 5, 20))], None)
    await _write(pool, c["F"], [w.fgw], w.round, _utc(2026, 2, 1),
                 [(*rect, _utc(2026, 2, 2)), ("RECORD_FILING", Stage.CLOSED, _utc(2026, 9, 15))], None)
    # 30 June 16:30 UTC is 1 July 00:30 in Beijing: long-term maintenance begins in the second half.
    await _write(pool, c["G"], [w.ningyuan], w.round, _utc(2026, 3, 15),
                 [(*rect, _utc(2026, 3, 16)), ("RECORD_FILING", Stage.LONG_TERM_MAINTENANCE, _utc(2026, 6, 30, 16, 30))],
                 None)
    return w


def _stats(pool: asyncpg.Pool) -> Statistics:
    reads = ReadModel(pool=pool, client=None, calendar=calendar(),  # type: ignore[arg-type]
                      home=HomeUnits(office="整改办", discipline="纪委监委"))
    return Statistics(reads=reads, today_fn=lambda: TODAY)


OFFICE_USER = User("office", "整改办", (Role.RECTIFICATION_OFFICE,))


def _f(w: World, period: str) -> StatsFilter:
    return StatsFilter(inspection_round=w.round, period=parse_period(period))


def _by(rows: list[dict], name: str) -> dict:
    return next(r for r in rows if r["name"] == name)


async def test_current_lights_and_completion_by_round_unit_and_county(pool: asyncpg.Pool, world: World) -> None:
    s = await _stats(pool).summary(OFFICE_USER, _f(world, "2026-H2"))
    assert s["total"] == 7 and s["done"] == 3 and s["rate"] == 42.9
    assert {x["light"]: x["n"] for x in s["lights"]} == {"RED": 1, "YELLOW": 1, "GREEN": 1, "NO_DEADLINE": 1,
                                                         "DONE": 3}
    # The list: red first, then yellow.
    assert [(r["case_no"], r["light"]) for r in s["cases"]] == [(world.cases["A"], "RED"), (world.cases["B"], "YELLOW")]
    assert s["by_round"] == [{"name": world.round, "total": 7, "done": 3, "escalated": 0, "RED": 1, "YELLOW": 1,
                              "GREEN": 1, "NO_DEADLINE": 1, "DONE": 3, "rate": 42.9}]
    lan, fgw, ning = (_by(s["by_unit"], u) for u in (world.lanshan, world.fgw, world.ningyuan))
    assert (lan["total"], lan["done"], lan["RED"], lan["YELLOW"], lan["rate"]) == (3, 1, 1, 1, 33.3)
    assert (fgw["total"], fgw["done"], fgw["YELLOW"], fgw["rate"]) == (2, 1, 1, 50.0)
    assert (ning["total"], ning["done"], ning["GREEN"], ning["NO_DEADLINE"]) == (3, 1, 1, 1)
    assert s["by_unit"][0]["name"] == world.lanshan  # the most red first
    # County: from the unit names (B names a county unit and a city department: 蓝山县).
    assert {r["name"]: (r["total"], r["done"]) for r in s["by_county"]} == {
        "蓝山县": (3, 1), "宁远县": (3, 1), CITY_LEVEL: (1, 1)}
    only_red = await _stats(pool).summary(OFFICE_USER, StatsFilter(world.round, parse_period("2026"), "GREEN"))
    assert [r["case_no"] for r in only_red["cases"]] == [world.cases["C"]]


async def test_half_year_and_annual_summaries_as_of_the_period_end(pool: asyncpg.Pool, world: World) -> None:
    st = _stats(pool)
    h1 = (await st.summary(OFFICE_USER, _f(world, "2026-H1")))["period"]
    # Filed by 30 June: all but C; done by then: E only (G entered long-term maintenance on 1 July, Beijing).
    assert (h1["total_at_end"], h1["done_at_end"], h1["rate_at_end"]) == (6, 1, 16.7)
    assert (h1["filed_in_period"], h1["closures_in_period"], h1["cases_closed_in_period"]) == (6, 1, 1)
    assert [m["month"] for m in h1["closures_per_month"]] == [f"2026-{m:02d}" for m in range(1, 7)]
    assert {m["month"]: m["n"] for m in h1["closures_per_month"]}["2026-05"] == 1
    assert _by(h1["by_unit"], world.lanshan) == {"name": world.lanshan, "total": 3, "done": 1, "closed_in_period": 1,
                                                 "rate": 33.3}
    assert _by(h1["by_county"], "宁远县")["done"] == 0

    h2 = (await st.summary(OFFICE_USER, _f(world, "2026-H2")))["period"]
    assert (h2["total_at_end"], h2["done_at_end"], h2["rate_at_end"]) == (7, 3, 42.9)
    assert (h2["filed_in_period"], h2["closures_in_period"]) == (1, 1)
    assert {m["month"]: m["n"] for m in h2["closures_per_month"]} == {
        "2026-07": 0, "2026-08": 0, "2026-09": 1, "2026-10": 0, "2026-11": 0, "2026-12": 0}
    assert _by(h2["by_county"], "宁远县")["done"] == 1

    year = (await st.summary(OFFICE_USER, _f(world, "2026")))["period"]
    assert (year["total_at_end"], year["done_at_end"], year["closures_in_period"], year["filed_in_period"]) == (7, 3, 2, 7)
    assert len(year["closures_per_month"]) == 12
    before = (await st.summary(OFFICE_USER, _f(world, "2025")))["period"]
    assert (before["total_at_end"], before["rate_at_end"]) == (0, None)


async def test_a_unit_sees_only_its_own_cases_figures(pool: asyncpg.Pool, world: World) -> None:
    st = _stats(pool)
    ning = User("ny", world.ningyuan, (Role.RESPONSIBLE_UNIT,))
    s = await st.summary(ning, _f(world, "2026-H1"))
    assert s["total"] == 3 and {r["name"] for r in s["by_unit"]} == {world.ningyuan}
    assert {x["light"]: x["n"] for x in s["lights"]} == {"RED": 0, "YELLOW": 0, "GREEN": 1, "NO_DEADLINE": 1, "DONE": 1}
    assert s["cases"] == []  # no red or yellow case of its own
    assert (s["period"]["total_at_end"], s["period"]["done_at_end"]) == (2, 0)
    text = str(s)
    for k in "ABEF":
        assert world.cases[k] not in text
    # A unit with no cases in the round: zeros, not someone else's figures.
    none = await st.summary(User("x", f"某单位{world.tag}", (Role.RESPONSIBLE_UNIT,)), _f(world, "2026"))
    assert none["total"] == 0 and none["period"]["closures_in_period"] == 0 and none["by_unit"] == []
    with pytest.raises(ReadDenied):
        await st.summary(User("c", "公众", (Role.PUBLIC,)), _f(world, "2026"))
    with pytest.raises(ReadDenied):  # deny by default: a role without a read rule
        await st.summary(User("sys", "整改办", (Role.SYSTEM,)), _f(world, "2026"))
    # The reusable per-unit progress (the monthly dispatch's) over the unit's own cases.
    figs = await st.case_figures(ning, world.round)
    assert [r["name"] for r in progress_by(figs, lambda c: c.responsible_units)] == [world.ningyuan]


async def test_filters_are_checked(pool: asyncpg.Pool) -> None:
    with pytest.raises(FormError, match="YYYY-H1"):
        StatsFilter.from_params({"period": "2026-Q3"}, TODAY)
    with pytest.raises(FormError, match="light 'BLUE'"):
        StatsFilter.from_params({"light": "blue"}, TODAY)
    with pytest.raises(FormError, match="control character"):
        StatsFilter.from_params({"round": "a\x00b"}, TODAY)
    assert StatsFilter.from_params({}, TODAY).period.key == "2026-H2"


async def test_exports_read_back_with_the_same_figures(pool: asyncpg.Pool, world: World) -> None:
    st = _stats(pool)
    s = await st.summary(OFFICE_USER, _f(world, "2026-H1"))
    wb = load_workbook(io.BytesIO(to_xlsx(s)))
    summary = {r[0]: r[1] for r in wb["概要 Summary"].iter_rows(min_row=2, values_only=True)}
    assert summary["案件总数 cases"] == 7 and summary["完成率% completion rate"] == 42.9
    assert summary["红灯 逾期 overdue"] == 1 and summary["黄灯 临期 due soon"] == 1
    assert summary["期末完成率% rate at period end"] == 16.7 and summary["期内销号 closures in period"] == 1
    assert "2026年上半年" in summary["报告期 period"]
    months = {r[0]: r[1] for r in wb["每月销号 Closures"].iter_rows(min_row=2, values_only=True)}
    assert months["2026-05"] == 1 and len(months) == 6
    assert wb["每月销号 Closures"]._charts, "the closures chart is in the workbook"
    units = {r[0]: r for r in wb["按单位 By unit"].iter_rows(min_row=2, values_only=True)}
    assert units[world.lanshan][1:5] == (3, 1, 33.3, 1)
    listed = [r[0] for r in wb["红黄灯案件 Red & yellow"].iter_rows(min_row=2, values_only=True)]
    assert listed == [world.cases["A"], world.cases["B"]]

    text = "".join(p.extract_text() for p in PdfReader(io.BytesIO(to_pdf(s, "范围 scope: 全部案件"))).pages)
    flat = text.replace("\n", "")
    for word in ("督察整改统计报告", "2026年上半年", "红灯", "每月销号", "蓝山县", world.cases["A"], world.cases["B"]):
        assert word in flat, word
    assert "42.9" in flat and "16.7" in flat

    # The unit's export holds only its own cases.
    own = await st.summary(User("ny", world.ningyuan, (Role.RESPONSIBLE_UNIT,)), _f(world, "2026-H1"))
    flat = "".join(p.extract_text() for p in PdfReader(io.BytesIO(to_pdf(own))).pages).replace("\n", "")
    assert world.lanshan not in flat and world.cases["A"] not in flat
    cells = " ".join(str(v) for ws in load_workbook(io.BytesIO(to_xlsx(own))).worksheets
                     for row in ws.iter_rows(values_only=True) for v in row if v is not None)
    assert world.lanshan not in cells and world.fgw not in cells and world.ningyuan in cells
