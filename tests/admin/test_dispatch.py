"""Monthly dispatch on the Temporal dev server (Schedules need it): a programme's Schedule
backfilled over twelve months, twelve reports, each unit's notice once, a month dispatched once,
the xlsx read back, and the console page, downloads, API and casectl with read scoping."""

from __future__ import annotations

import asyncio
import io
import time
import uuid
from datetime import UTC, datetime

import httpx
import pytest
from openpyxl import load_workbook
from temporalio.client import WorkflowExecutionStatus
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

from domain.dispatch import Period, dispatch_workflow_id, notice_key, period_of, periods_between, schedule_id
from tests.admin.conftest import Console, act_via_api, file_via_api, wait_projection
from tests.admin.test_console_http import _csrf, login
from tests.harness import OTHER_RU, RU
from workflows.dispatch_contracts import DISPATCH_WORKFLOW, DispatchInput
from workflows.dispatch_schedule import (
    backfill_dispatch,
    delete_dispatch_schedule,
    describe_dispatch_schedule,
    ensure_dispatch_schedule,
)

pytestmark = pytest.mark.devserver

NOW_PERIOD = period_of(datetime.now(UTC))
LAST12 = periods_between(Period(NOW_PERIOD.year - 1, NOW_PERIOD.month), NOW_PERIOD.prev())


async def _programme(c: Console) -> str:
    """Three cases of a new programme: RU's in rectification, OTHER_RU's with no timer (持续推进),
    and one of both units still registered."""
    pid = f"PRG-{uuid.uuid4().hex[:8]}"
    a = c.case_record(f"DA-{uuid.uuid4().hex[:6]}", due_days=10)
    b = c.case_record(f"DB-{uuid.uuid4().hex[:6]}")
    b.update(responsible_units=[OTHER_RU.unit], deadline={"kind": "ONGOING", "raw_zh": "持续推进"})
    both = c.case_record(f"DC-{uuid.uuid4().hex[:6]}")
    both.update(responsible_units=[RU.unit, OTHER_RU.unit], title="=HYPERLINK(\"http://x\")两县共治")
    for rec in (a, b, both):
        rec["programme_id"] = pid
        await file_via_api(c, rec)
    for rec, user in ((a, "ru"), (b, "ru-other")):
        await act_via_api(c, "office", rec["case_no"], "TRANSFER")
        await act_via_api(c, user, rec["case_no"], "ACKNOWLEDGE")
        await wait_projection(c, rec["case_no"], "RECTIFYING")
    await wait_projection(c, both["case_no"], "REGISTERED")
    return pid


async def _reports(c: Console, pid: str, n: int, timeout: float = 120) -> list[str]:
    end = time.monotonic() + timeout
    while True:
        got = [r[0] for r in await c.pool.fetch(
            "SELECT period FROM dispatch_report WHERE programme_id = $1 ORDER BY period", pid)]
        if len(got) >= n or time.monotonic() > end:
            return got
        await asyncio.sleep(0.3)


async def _ticks(c: Console, pid: str, n: int, timeout: float = 60) -> list:
    """The DispatchTick runs the Schedule started (visibility is eventually consistent), with results."""
    client = c.env.client
    end = time.monotonic() + timeout
    while True:
        runs = [w async for w in client.list_workflows(f'WorkflowId STARTS_WITH "{schedule_id(pid)}-tick"')]
        done = [w for w in runs if w.status == WorkflowExecutionStatus.COMPLETED]
        if len(done) >= n or time.monotonic() > end:
            return [await client.get_workflow_handle(w.id, run_id=w.run_id).result() for w in done]
        await asyncio.sleep(0.5)


async def test_a_schedule_dispatches_twelve_months_once_each(console: Console) -> None:
    c, client = console, console.env.client
    pid = await _programme(c)

    assert (await ensure_dispatch_schedule(client, pid, 5, c.task_queue)).status == "CREATED"
    assert (await ensure_dispatch_schedule(client, pid, 5, c.task_queue)).status == "UNCHANGED"
    assert (await ensure_dispatch_schedule(client, pid, 20, c.task_queue)).status == "UPDATED"
    d = await describe_dispatch_schedule(client, pid)
    assert d is not None and d["day_of_month"] == 20
    # 09:00 Beijing on the 20th is 01:00 UTC
    assert all(t.endswith("01:00:00+00:00") and t[8:10] == "20" for t in d["next_action_times"])
    assert (await ensure_dispatch_schedule(client, pid, 5, c.task_queue)).status == "UPDATED"

    # Twelve past months, by backfill rather than waiting a year.
    first, last = LAST12[0], LAST12[-1]
    await backfill_dispatch(client, pid, first.start_at, last.end_at)
    periods = await _reports(c, pid, 12)
    assert periods == [str(p) for p in LAST12], "one report per month, each for its own month"
    ticks = await _ticks(c, pid, 12)
    assert sorted(t["period"] if isinstance(t, dict) else t.period for t in ticks) == periods

    # Each unit got its own list once per month.
    keys = [r[0] for r in await c.pool.fetch(
        "SELECT notice_key FROM outbox WHERE case_no = $1 ORDER BY notice_key", f"programme:{pid}")]
    assert sorted(keys) == sorted(notice_key(pid, p, u) for p in periods for u in (RU.unit, OTHER_RU.unit))
    body = await c.pool.fetchval("SELECT body FROM outbox WHERE notice_key = $1", notice_key(pid, periods[-1], RU.unit))
    assert "DA-" in body and "DB-" not in body

    # The same months again (a second backfill) and the same month by hand: refused, nothing new.
    await backfill_dispatch(client, pid, first.start_at, last.end_at)
    ticks = await _ticks(c, pid, 24)
    again = [t for t in ticks if (t["status"] if isinstance(t, dict) else t.status) == "ALREADY_DISPATCHED"]
    assert len(again) == 12
    with pytest.raises(WorkflowAlreadyStartedError):
        await client.start_workflow(DISPATCH_WORKFLOW, DispatchInput(programme_id=pid, period=periods[0]),
                                    id=dispatch_workflow_id(pid, periods[0]), task_queue=c.task_queue,
                                    id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY)
    assert await c.pool.fetchval("SELECT count(*) FROM dispatch_report WHERE programme_id = $1", pid) == 12
    assert await c.pool.fetchval("SELECT count(*) FROM outbox WHERE case_no = $1", f"programme:{pid}") == 24

    # The xlsx, read back.
    raw = await c.pool.fetchval("SELECT xlsx FROM dispatch_report WHERE programme_id = $1 AND period = $2",
                                pid, periods[-1])
    wb = load_workbook(io.BytesIO(raw))
    assert wb.sheetnames == ["汇总 Summary", "清单 Cases"]
    summary = {row[0]: row for row in wb["汇总 Summary"].iter_rows(min_row=3, values_only=True)}
    assert summary[RU.unit][1:3] == (2, 2)  # cases, open
    assert summary[OTHER_RU.unit][7] == 1  # no timer: the 持续推进 case
    cases = list(wb["清单 Cases"].iter_rows(min_row=2, values_only=True))
    titles = [r[2] for r in cases]
    assert titles.count("=HYPERLINK(\"http://x\")两县共治") == 2  # on both units' lists, as text
    assert wb["清单 Cases"].cell(row=2 + titles.index("=HYPERLINK(\"http://x\")两县共治"), column=3).data_type == "s"

    assert await delete_dispatch_schedule(client, pid)
    assert not await delete_dispatch_schedule(client, pid)
    assert await describe_dispatch_schedule(client, pid) is None


async def test_trigger_twice_in_one_month_dispatches_once(console: Console) -> None:
    c, client = console, console.env.client
    pid = await _programme(c)
    await ensure_dispatch_schedule(client, pid, 1, c.task_queue)
    handle = client.get_schedule_handle(schedule_id(pid))
    await handle.trigger()
    assert await _reports(c, pid, 1) == [str(NOW_PERIOD)]
    await handle.trigger()
    ticks = await _ticks(c, pid, 2)
    assert sorted(t["status"] if isinstance(t, dict) else t.status for t in ticks) == \
        ["ALREADY_DISPATCHED", "DISPATCHED"]
    assert await c.pool.fetchval("SELECT count(*) FROM outbox WHERE case_no = $1", f"programme:{pid}") == 2
    await delete_dispatch_schedule(client, pid)


# ------------------------------------------------------------------ console, API, casectl


async def _login(c: Console, user: str) -> httpx.AsyncClient:
    return await login(c, user)


async def test_console_api_and_casectl_with_read_scoping(console: Console) -> None:
    c = console
    pid = await _programme(c)
    # casectl: the office runs this month; a second run is refused (exit 3); a unit may not run.
    r = await c.cli("dispatch", "run-now", pid, "--json")
    assert r.returncode == 0, r.stderr
    assert '"notices": 2' in r.stdout
    r = await c.cli("dispatch", "run-now", pid)
    assert r.returncode == 3 and "AlreadyDispatched" in r.stderr
    r = await c.cli("dispatch", "run-now", pid, user="ru")
    assert r.returncode == 4
    r = await c.cli("dispatch", "run-now", pid, "--period", str(NOW_PERIOD.next()))
    assert r.returncode == 1 and "has not begun" in r.stderr
    r = await c.cli("dispatch", "schedule", pid, "--day", "31")
    assert r.returncode == 1 and "day of month" in r.stderr
    r = await c.cli("dispatch", "schedule", pid, "--day", "25")
    assert r.returncode == 0 and "CREATED" in r.stdout
    r = await c.cli("dispatch", "list", pid)
    assert r.returncode == 0 and str(NOW_PERIOD) in r.stdout and "day 25" in r.stdout
    r = await c.cli("dispatch", "show", pid, str(NOW_PERIOD), user="ru")
    assert r.returncode == 0 and RU.unit in r.stdout and OTHER_RU.unit not in r.stdout
    out = c.config_home.parent / f"{pid}.xlsx"
    r = await c.cli("dispatch", "show", pid, str(NOW_PERIOD), "-o", str(out), user="ru-other")
    assert r.returncode == 0, r.stderr
    units = [row[0] for row in load_workbook(out)["汇总 Summary"].iter_rows(min_row=3, values_only=True)]
    assert units == [OTHER_RU.unit, "合计 Total"], "a unit's file holds its own rows only"

    period = str(NOW_PERIOD)
    # The office sees every unit, the schedule, the chart and both downloads.
    http = await _login(c, "office")
    page = await http.get(f"/programmes/{pid}/dispatch")
    assert page.status_code == 200 and 'data-testid="dispatch-chart"' in page.text
    assert "每月 25 日" in page.text and "<script" not in page.text
    html = await http.get(f"/programmes/{pid}/dispatch/{period}.html")
    assert html.status_code == 200 and RU.unit in html.text and OTHER_RU.unit in html.text and "<svg" in html.text
    xlsx = await http.get(f"/programmes/{pid}/dispatch/{period}.xlsx")
    assert xlsx.status_code == 200 and xlsx.headers["content-type"].startswith("application/vnd.openxml")
    assert (await http.get(f"/programmes/{pid}/dispatch/2001-01.html")).status_code == 404
    await http.aclose()
    # A responsible unit sees only its own rows, in the page and the files.
    http = await _login(c, "ru")
    page = await http.get(f"/programmes/{pid}/dispatch")
    assert page.status_code == 200 and "每月 25 日" not in page.text and "立即调度" not in page.text
    html = await http.get(f"/programmes/{pid}/dispatch/{period}.html")
    assert RU.unit in html.text and OTHER_RU.unit not in html.text
    wb = load_workbook(io.BytesIO((await http.get(f"/programmes/{pid}/dispatch/{period}.xlsx")).content))
    assert {r[0] for r in wb["清单 Cases"].iter_rows(min_row=2, values_only=True)} == {RU.unit}
    r = await http.post(f"/programmes/{pid}/dispatch/run", data={"csrf_token": _csrf(page.text)})
    assert r.status_code == 403 and "只有整改办" in r.text
    await http.aclose()
    # Deny by default: the lead supervisor, the discipline commission and the public see nothing.
    for user in ("lead", "discipline", "citizen"):
        http = await _login(c, user)
        assert (await http.get(f"/programmes/{pid}/dispatch")).status_code == 403, user
        assert (await http.get(f"/programmes/{pid}/dispatch/{period}.xlsx")).status_code == 403, user
        await http.aclose()
        async with c.api(user) as api:
            assert (await api.get(f"/api/v1/programmes/{pid}/dispatch")).status_code == 403, user
    async with c.api("duchashi") as api:
        body = (await api.get(f"/api/v1/programmes/{pid}/dispatch/{period}")).json()
        assert {u["unit"] for u in body["units"]} == {RU.unit, OTHER_RU.unit}
    await c.cli("dispatch", "schedule", pid, "--delete")


# ------------------------------------------------------------------ for the route walk (test_read_scoping)


async def seed_dispatch_report(c: Console, programme_id: str, case_nos: list[str]) -> None:
    """This month's dispatch report of `programme_id` over the given cases (whatever programme they
    belong to), written by the real activity from their projection rows."""
    from activities.calendar_source import load_calendar
    from activities.dispatch_activities import DispatchActivities
    from domain.dispatch import CaseSnapshot, compile_dispatch
    from workflows.dispatch_contracts import DispatchReportWrite

    rows = await c.pool.fetch(
        """SELECT case_no, title, stage, responsible_units, due_date, escalation_level, closed_at
           FROM case_projection WHERE case_no = ANY($1)""", case_nos)
    cases = [CaseSnapshot(**{**dict(r), "responsible_units": list(r["responsible_units"])}) for r in rows]
    cal = load_calendar(None)
    figures = compile_dispatch(programme_id, NOW_PERIOD, datetime.now(UTC), cases, cal)
    await DispatchActivities(c.pool, lambda: cal).write_dispatch_report(DispatchReportWrite(
        figures=figures, workflow_id=dispatch_workflow_id(programme_id, NOW_PERIOD), workflow_run_id="seeded"))


async def test_a_new_programme_creates_its_own_dispatch_schedule(console: Console) -> None:
    """The programme workflow, when created, makes its monthly dispatch Schedule on the policy's day."""
    from datetime import date

    from domain.programme import ProgrammePolicy, ProgrammeSpec
    from tests.harness import OFFICE
    from workflows.programme_client import create_programme

    pid = f"PRG-{uuid.uuid4().hex[:8]}"
    spec = ProgrammeSpec(programme_id=pid, name="测试整改方案", inspection_round="第二轮", locality="xx市",
                         feedback_date=date(2021, 7, 16))
    ok, why = await create_programme(console.env.client, spec, OFFICE, console.task_queue,
                                     policy=ProgrammePolicy(dispatch_day_of_month=12))
    assert ok, why
    end = time.monotonic() + 60
    while (described := await describe_dispatch_schedule(console.env.client, pid)) is None:
        assert time.monotonic() < end, "the programme made no dispatch Schedule"
        await asyncio.sleep(0.3)
    assert described["day_of_month"] == 12
    assert await delete_dispatch_schedule(console.env.client, pid)
