"""The dispatch write activity on the real PostgreSQL: report and notices once, the notices
delivered to each unit's inbox by the ordinary sender, and the outbox still refusing a case notice
without its ledger row."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import asyncpg
import pytest

from activities.calendar_source import load_calendar
from activities.dispatch_activities import DispatchActivities
from activities.notices import NoticeSender, SmtpConfig
from domain.dispatch import CaseSnapshot, compile_dispatch, notice_key, parse_period
from domain.enums import Stage
from workflows.dispatch_contracts import DispatchReportWrite, ProgrammeCasesRequest

CAL = load_calendar(None)


async def test_the_report_and_each_units_notice_are_written_once_and_delivered(pool: asyncpg.Pool) -> None:
    pid = f"P-{uuid.uuid4().hex[:8]}"
    period = parse_period("2026-03")
    cases = [CaseSnapshot(case_no="A1", title="甲", stage=Stage.RECTIFYING, responsible_units=["甲县"]),
             CaseSnapshot(case_no="B1", title="乙", stage=Stage.RECTIFYING, responsible_units=["乙县"])]
    figures = compile_dispatch(pid, period, datetime(2026, 3, 25, 1, tzinfo=UTC), cases, CAL)
    acts = DispatchActivities(pool, lambda: CAL)
    inp = DispatchReportWrite(figures=figures, workflow_id=f"dispatch-{pid}-2026-03", workflow_run_id="r1",
                              trigger="SCHEDULE")
    first = await acts.write_dispatch_report(inp)
    assert first.inserted and first.notices == 2
    # A retry (or a later run's figures for the same month) inserts nothing and sends nothing again.
    later = compile_dispatch(pid, period, datetime(2026, 3, 28, tzinfo=UTC), cases[:1], CAL)
    again = await acts.write_dispatch_report(inp.model_copy(update={"figures": later, "workflow_run_id": "r2"}))
    assert not again.inserted and again.notices == 0
    row = await pool.fetchrow("SELECT workflow_run_id, units FROM dispatch_report WHERE programme_id = $1", pid)
    assert row["workflow_run_id"] == "r1" and list(row["units"]) == ["乙县", "甲县"]

    await NoticeSender(pool, SmtpConfig()).drain()
    inbox = await pool.fetch("SELECT notice_key, unit, case_no, body FROM inbox WHERE case_no = $1 ORDER BY unit",
                             f"programme:{pid}")
    assert [(r["notice_key"], r["unit"]) for r in inbox] == \
        [(notice_key(pid, "2026-03", "乙县"), "乙县"), (notice_key(pid, "2026-03", "甲县"), "甲县")]
    assert "B1" in inbox[0]["body"] and "A1" not in inbox[0]["body"]


async def test_the_cases_of_a_programme_are_read_from_the_projection(pool: asyncpg.Pool) -> None:
    acts = DispatchActivities(pool, lambda: CAL)
    got = await acts.load_programme_cases(ProgrammeCasesRequest(
        programme_id=f"none-{uuid.uuid4().hex[:6]}", period="2026-03", as_of=datetime.now(UTC)))
    assert got == []


async def test_a_case_notice_still_needs_its_ledger_row(pool: asyncpg.Pool) -> None:
    with pytest.raises(asyncpg.CheckViolationError):
        await pool.execute("""INSERT INTO outbox (notice_key, case_no, seq, recipient_unit, recipient_role, subject, body)
                              VALUES ($1, 'C-1', NULL, 'u', 'RESPONSIBLE_UNIT', 's', 'b')""", f"k-{uuid.uuid4()}")
    with pytest.raises(asyncpg.ForeignKeyViolationError):
        await pool.execute("""INSERT INTO outbox (notice_key, case_no, seq, recipient_unit, recipient_role, subject, body)
                              VALUES ($1, 'C-nope', 1, 'u', 'RESPONSIBLE_UNIT', 's', 'b')""", f"k-{uuid.uuid4()}")
