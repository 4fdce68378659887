"""Activities of the monthly dispatch: the calendar, the programme's cases, and the report write.

The write is idempotent: the report row is keyed by (programme_id, period) and each unit's notice
by `dispatch:<programme>:<period>:<unit>` (ON CONFLICT DO NOTHING), both in one transaction, so a
retry or a second run of the month inserts nothing; when the month's report exists already, the
notices are built from the stored figures, never from new ones.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import asyncpg
import structlog
from temporalio import activity

from activities.dispatch_render import render_html, render_xlsx
from activities.failures import classified
from domain.calendar import WorkingCalendar
from domain.dispatch import (
    NO_UNIT,
    PROGRESS_EVENTS,
    CaseSnapshot,
    DispatchFigures,
    notice_case_no,
    parse_period,
    unit_notice,
)
from domain.enums import Role
from domain.programme import DispatchScheduleRequest
from workflows.dispatch_contracts import DispatchReportWrite, DispatchReportWritten, ProgrammeCasesRequest

log = structlog.get_logger(__name__)

_CASES = """
SELECT p.case_no, p.title, p.stage, p.responsible_units, p.due_date, p.filing -> 'deadline' ->> 'kind' AS deadline_kind,
       p.escalation_level, p.suspended, p.closed_at,
       (SELECT count(*) FROM ledger l WHERE l.case_no = p.case_no AND l.event = ANY($2::text[])
          AND l.at >= $3 AND l.at < $4) AS reports_this_month
FROM case_projection p
WHERE p.programme_id = $1
  -- a fanned-out parent is no unit's work: its children (one per county or unit) are listed
  AND jsonb_typeof(p.detail -> 'fanout') IS DISTINCT FROM 'object'
ORDER BY p.case_no
"""

_INSERT_REPORT = """
INSERT INTO dispatch_report (programme_id, period, generated_at, workflow_id, workflow_run_id, trigger,
                             figures, units, xlsx, html)
VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $8, $9, $10)
ON CONFLICT (programme_id, period) DO NOTHING
"""

_INSERT_OUTBOX = """
INSERT INTO outbox (notice_key, case_no, seq, recipient_unit, recipient_role, subject, body)
VALUES ($1, $2, NULL, $3, $4, $5, $6)
ON CONFLICT (notice_key) DO NOTHING
"""


class DispatchActivities:
    """Holds the pool and the calendar source; the worker registers the bound methods."""

    def __init__(self, pool: asyncpg.Pool, calendar: Callable[[], WorkingCalendar]) -> None:
        self._pool = pool
        self._calendar = calendar

    @activity.defn(name="load_dispatch_calendar")
    @classified
    async def load_dispatch_calendar(self) -> WorkingCalendar:
        """The working-day calendar in force (recorded in the dispatch's history)."""
        return self._calendar()

    @activity.defn(name="load_programme_cases")
    @classified
    async def load_programme_cases(self, req: ProgrammeCasesRequest) -> list[CaseSnapshot]:
        """The programme's cases from the projection, with the month's progress reports (ledger
        REPORT_PROGRESS from the first of the month up to as_of)."""
        period = parse_period(req.period)
        until = min(req.as_of, period.end_at)
        rows = await self._pool.fetch(_CASES, req.programme_id, sorted(PROGRESS_EVENTS), period.start_at, until)
        return [CaseSnapshot(case_no=r["case_no"], title=r["title"], stage=r["stage"],
                             responsible_units=list(r["responsible_units"] or []), due_date=r["due_date"],
                             deadline_kind=r["deadline_kind"], escalation_level=r["escalation_level"],
                             suspended=r["suspended"], closed_at=r["closed_at"],
                             reports_this_month=int(r["reports_this_month"])) for r in rows]

    @activity.defn(name="write_dispatch_report")
    @classified
    async def write_dispatch_report(self, inp: DispatchReportWrite) -> DispatchReportWritten:
        """The month's report (figures, xlsx, HTML) and each unit's notice, in one transaction."""
        f = inp.figures
        xlsx, html = render_xlsx(f), render_html(f)
        async with self._pool.acquire() as conn, conn.transaction():
            status = await conn.execute(
                _INSERT_REPORT, f.programme_id, f.period, f.as_of, inp.workflow_id, inp.workflow_run_id,
                inp.trigger, f.model_dump_json(), [u.unit for u in f.units], xlsx, html)
            inserted = status.endswith(" 1")
            if not inserted:  # a retry, or the month was reported before: notify from what is stored
                stored = await conn.fetchval(
                    "SELECT figures FROM dispatch_report WHERE programme_id = $1 AND period = $2",
                    f.programme_id, f.period)
                f = DispatchFigures.model_validate(json.loads(stored) if isinstance(stored, str) else stored)
            notices = 0
            for u in f.units:
                if u.unit == NO_UNIT:
                    continue
                key, subject, body = unit_notice(f, u)
                s = await conn.execute(_INSERT_OUTBOX, key, notice_case_no(f.programme_id), u.unit,
                                       Role.RESPONSIBLE_UNIT.value, subject, body)
                notices += s.endswith(" 1")
        log.info("dispatch_report_written", programme_id=f.programme_id, period=f.period, inserted=inserted,
                 units=len(f.units), notices=notices)
        return DispatchReportWritten(inserted=inserted, notices=notices)

    def all(self) -> list:
        return [self.load_dispatch_calendar, self.load_programme_cases, self.write_dispatch_report]


class DispatchScheduleActivities:
    """The programme workflow's one call out to Temporal itself: its dispatch Schedule."""

    def __init__(self, client: Any, task_queue: str) -> None:
        self.client, self.task_queue = client, task_queue

    @activity.defn(name="ensure_dispatch_schedule")
    @classified
    async def ensure_dispatch_schedule(self, req: DispatchScheduleRequest) -> str:
        """CREATED / UPDATED / UNCHANGED; UNSUPPORTED on a server without Schedules (the Java
        test server): logged, and the programme goes on without one."""
        from temporalio.service import RPCError, RPCStatusCode

        from workflows.dispatch_schedule import ensure_dispatch_schedule

        try:
            out = await ensure_dispatch_schedule(self.client, req.programme_id, req.day_of_month, self.task_queue)
        except RPCError as e:
            if e.status is not RPCStatusCode.UNIMPLEMENTED:
                raise
            log.warning("dispatch_schedule_unsupported", programme_id=req.programme_id, error=str(e))
            return "UNSUPPORTED"
        log.info("dispatch_schedule", programme_id=req.programme_id, day=req.day_of_month, status=out.status)
        return out.status

    def all(self) -> list:
        return [self.ensure_dispatch_schedule]
