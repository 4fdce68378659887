"""Activities of the case workflow: policy, calendar arithmetic, and the ledger write.

Every activity is idempotent. The ledger is keyed by (case_no, seq), where seq
lives in the workflow state and so survives continue-as-new; a retried write
inserts nothing twice. Ledger rows, the projection and outbox notices are
written in one transaction, so a notice exists exactly when its ledger row does.
Each ledger row is hash-chained to the previous row of its case (audit/chain.py);
the hashes depend only on the activity input and the stored previous row, so a
retry computes the same ones.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime

import asyncpg
import structlog
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.calendar_source import load_calendar
from activities.county_source import load_counties
from activities.failures import classified
from activities.policy_source import load_policy
from audit.chain import GENESIS, ChainRow, row_hash
from domain.blocking import LEDGER_DIVERGENCE, clean_message
from domain.calendar import WorkingCalendar
from domain.deadlines import compute_deadline
from domain.fanout_types import CountyList
from domain.followup import compute_schedule
from domain.followup_model import ScheduleRequest, ScheduleResult
from domain.model import ComputedDeadline, DeadlineRequest
from domain.policy import Policy
from workflows.contracts import (
    CaseBlockRecord,
    ClockRecordInput,
    ClockRecordResult,
    CountiesRequest,
    PolicyRequest,
    RecordInput,
    case_workflow_id,
)

log = structlog.get_logger(__name__)

_INSERT_LEDGER = """
INSERT INTO ledger (case_no, seq, event, actor_user, actor_role, actor_unit, at,
                    from_stage, to_stage, reason, request_id, data, workflow_run_id,
                    prev_hash, row_hash)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12::jsonb, $13, $14, $15)
ON CONFLICT (case_no, seq) DO NOTHING
"""

_STORED_HASH = "SELECT row_hash FROM ledger WHERE case_no = $1 AND seq = $2"
_STORED_ROW = "SELECT at, workflow_run_id, row_hash FROM ledger WHERE case_no = $1 AND seq = $2"
_CASE_ROWS_BEFORE = "SELECT * FROM ledger WHERE case_no = $1 AND seq < $2 ORDER BY seq"


async def _prev_hash(conn: asyncpg.Connection, case_no: str, seq: int) -> str:
    """The row_hash of row seq - 1 of the case (GENESIS for seq 1).

    A row written before the chain existed (migration 002) has no stored hash:
    then the chain over the case's earlier rows is computed from their content
    (audit.chain's legacy rule), so this row commits to all of them.
    """
    if seq == 1:
        return GENESIS
    stored = await conn.fetchval(_STORED_HASH, case_no, seq - 1)
    if stored is not None:
        return stored
    rows = await conn.fetch(_CASE_ROWS_BEFORE, case_no, seq)
    if not rows or rows[-1]["seq"] != seq - 1:
        raise RuntimeError(f"ledger of case {case_no} has no row seq {seq - 1}; refusing to chain seq {seq}")
    prev = GENESIS
    for r in rows:
        prev = r["row_hash"] or row_hash(ChainRow.from_record(r), prev)
    return prev

_UPSERT_PROJECTION = """
INSERT INTO case_projection AS p (
    case_no, workflow_id, kind, title, stage, stage_entered_at, responsible_units,
    lead_supervising_units, assisting_units, inspection_round, due_date, due_at, deadline,
    escalation_level, escalation_max_level, suspended, cycle, reopen_count, open_referrals,
    filed_at, closed_at, last_seq, policy_version, filing, detail, updated_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13::jsonb, $14, $15, $16, $17, $18,
        $19, $20, $21, $22, $23, COALESCE($24::jsonb, 'null'::jsonb), $25::jsonb, clock_timestamp())
ON CONFLICT (case_no) DO UPDATE SET
    kind = EXCLUDED.kind, title = EXCLUDED.title, stage = EXCLUDED.stage,
    stage_entered_at = EXCLUDED.stage_entered_at, responsible_units = EXCLUDED.responsible_units,
    lead_supervising_units = EXCLUDED.lead_supervising_units,
    assisting_units = EXCLUDED.assisting_units, inspection_round = EXCLUDED.inspection_round,
    due_date = EXCLUDED.due_date, due_at = EXCLUDED.due_at, deadline = EXCLUDED.deadline,
    escalation_level = EXCLUDED.escalation_level,
    escalation_max_level = EXCLUDED.escalation_max_level, suspended = EXCLUDED.suspended,
    cycle = EXCLUDED.cycle, reopen_count = EXCLUDED.reopen_count,
    open_referrals = EXCLUDED.open_referrals, closed_at = EXCLUDED.closed_at,
    last_seq = EXCLUDED.last_seq, policy_version = EXCLUDED.policy_version,
    filing = CASE WHEN $24::jsonb IS NULL THEN p.filing ELSE EXCLUDED.filing END,
    detail = EXCLUDED.detail,
    updated_at = clock_timestamp()
WHERE p.last_seq <= EXCLUDED.last_seq
"""

# Issue 13 (migration 012): the follow-up columns, beside the upsert above (same transaction).
_UPDATE_FOLLOWUP = """
UPDATE case_projection SET report_due_date = $2, report_period = $3, report_last_period = $4,
    report_last_at = $5, measures_open = $6, milestone_next_due = $7, milestones_overdue = $8
WHERE case_no = $1 AND last_seq = $9
"""

_INSERT_OUTBOX = """
INSERT INTO outbox (notice_key, case_no, seq, recipient_unit, recipient_role, subject, body)
VALUES ($1, $2, $3, $4, $5, $6, $7)
ON CONFLICT (notice_key) DO NOTHING
"""


class CaseActivities:
    """Holds the pool and settings; the worker registers the bound methods."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        policy_file: str = "",
        calendar_overrides_file: str = "",
    ) -> None:
        self._pool = pool
        self._policy_file = policy_file
        if policy_file:  # a bad POLICY_FILE stops the worker at start, naming the profile and rung
            load_policy(policy_file)
        self._overrides = calendar_overrides_file
        self._calendar: WorkingCalendar | None = None
        self._calendar_stamp: float | None = None

    def calendar(self) -> WorkingCalendar:
        """The calendar, reloaded when the override file changes."""
        stamp = None
        if self._overrides and os.path.exists(self._overrides):
            stamp = os.stat(self._overrides).st_mtime
        if self._calendar is None or stamp != self._calendar_stamp:
            self._calendar = load_calendar(self._overrides or None)
            self._calendar_stamp = stamp
        return self._calendar

    @activity.defn(name="load_policy")
    @classified
    async def load_policy(self, req: PolicyRequest) -> Policy:
        """The policy snapshot a new case is filed under."""
        policy = load_policy(self._policy_file or None)
        policy.ladder(req.ladder_profile)  # an unknown profile fails here, by name
        return policy

    @activity.defn(name="load_counties")
    @classified
    async def load_counties(self, req: CountiesRequest) -> CountyList:
        """The locality's county list for a fan-out (issue 13); the workflow records what it got."""
        from config import ROOT

        return load_counties(os.environ.get("COUNTIES_FILE") or ROOT / "deploy" / "counties.json")

    @activity.defn(name="compute_deadline")
    @classified
    async def compute_deadline(self, req: DeadlineRequest) -> ComputedDeadline:
        """A due date in Chinese working or calendar days, with its explanation."""
        return compute_deadline(req, self.calendar(), computed_at=datetime.now(UTC))

    @activity.defn(name="compute_followup_schedule")
    @classified
    async def compute_followup_schedule(self, req: ScheduleRequest) -> ScheduleResult:
        """Dates of milestone and monthly-report timers (reminder, due date, rungs), issue 13."""
        return compute_schedule(req, self.calendar())

    @activity.defn(name="record_case_events")
    @classified
    async def record_case_events(self, inp: RecordInput) -> int:
        """Write ledger rows, the projection and outbox notices in one transaction.

        Returns the number of ledger rows actually inserted (0 on a retry).
        """
        async with self._pool.acquire() as conn, conn.transaction():
            return await self._write(conn, inp)

    @activity.defn(name="record_clock_events")
    @classified
    async def record_clock_events(self, inp: ClockRecordInput) -> ClockRecordResult:
        """What the clock decided, written as a local activity inside the woken workflow task.

        Issue 9 (lag): a scheduled activity costs the server an activity and a second workflow
        task per escalation. As a local activity the write happens before the task completes, so
        a task that fails afterwards (a worker lost, the deadlock detector) is retried, and the
        retry decides again at a later workflow time. The ledger keeps the first writer: when this
        run already has a row at the first entry's seq with other content, nothing is written and
        the workflow is told the time that row was decided at, to decide again at it (the same
        state and the same time give the same rows). A row of another run, or other content at the
        same time, is a divergence retrying cannot mend: refused non-retryably, the case blocks.
        """
        r = inp.record
        async with self._pool.acquire() as conn, conn.transaction():
            prev: str | None = None
            for e in r.entries:  # every row already there must be this decision's own
                stored = await conn.fetchrow(_STORED_ROW, e.case_no, e.seq)
                if stored is None:
                    break
                prev = prev if prev is not None else await _prev_hash(conn, e.case_no, e.seq)
                if stored["row_hash"] == row_hash(ChainRow.from_entry(e, r.workflow_run_id), prev):
                    prev = stored["row_hash"]
                    continue
                if stored["workflow_run_id"] != r.workflow_run_id or stored["at"] == inp.decided_at:
                    raise ApplicationError(
                        f"ledger of case {e.case_no} holds another row at seq {e.seq} "
                        f"(run {stored['workflow_run_id']}, decided at {stored['at']:%Y-%m-%d %H:%M:%S}); "
                        f"this run decided {e.event} at {inp.decided_at:%Y-%m-%d %H:%M:%S}",
                        type=LEDGER_DIVERGENCE, non_retryable=True,
                    )
                log.warning("clock_decision_redecided", case_no=e.case_no, seq=e.seq,
                            decided_at=inp.decided_at.isoformat(), stored_at=stored["at"].isoformat())
                return ClockRecordResult(redecide_at=stored["at"])
            return ClockRecordResult(record=r, inserted=await self._write(conn, r))

    async def _write(self, conn: asyncpg.Connection, inp: RecordInput) -> int:
        """Ledger rows, projection and outbox of `inp` on `conn`, inside the caller's transaction."""
        p = inp.projection
        inserted = 0
        prev: str | None = None
        for e in inp.entries:
            # Deterministic: a retry computes the same hashes (and inserts nothing).
            if prev is None:
                prev = await _prev_hash(conn, e.case_no, e.seq)
            own = row_hash(ChainRow.from_entry(e, inp.workflow_run_id), prev)
            status = await conn.execute(
                _INSERT_LEDGER,
                e.case_no, e.seq, e.event, e.actor.user_id, e.actor.role.value, e.actor.unit,
                e.at, e.from_stage.value if e.from_stage else None,
                e.to_stage.value if e.to_stage else None, e.reason, e.request_id,
                json.dumps(e.data, ensure_ascii=False, default=str), inp.workflow_run_id,
                prev, own,
            )
            n = int(status.rsplit(" ", 1)[-1])
            inserted += n
            # The next row chains onto what is stored (the same hash, unless the row
            # was written earlier with other content: then verify reports that row).
            prev = own if n else (await conn.fetchval(_STORED_HASH, e.case_no, e.seq) or own)
        await conn.execute(
            _UPSERT_PROJECTION,
            p.case_no, case_workflow_id(p.case_no), p.kind.value, p.title, p.stage.value,
            p.stage_entered_at, p.responsible_units, p.lead_supervising_units, p.assisting_units,
            p.inspection_round, p.due_date, p.due_at,
            p.deadline.model_dump_json() if p.deadline else None,
            p.escalation_level, p.escalation_max_level, p.suspended, p.cycle, p.reopen_count,
            p.open_referrals, p.filed_at, p.closed_at, p.last_seq, p.policy_version,
            p.filing.model_dump_json() if p.filing else None,
            json.dumps(p.detail, ensure_ascii=False, default=str),
        )
        if fu := p.followup:
            await conn.execute(
                _UPDATE_FOLLOWUP, p.case_no, fu.report_due_date, fu.report_period, fu.report_last_period,
                fu.report_last_at, fu.measures_open, fu.milestone_next_due, fu.milestones_overdue, p.last_seq,
            )
        if inp.notices:
            await conn.executemany(
                _INSERT_OUTBOX,
                [
                    (n.key, n.case_no, n.seq, n.recipient_unit, n.recipient_role.value, n.subject, n.body)
                    for n in inp.notices
                ],
            )
        log.info(
            "case_events_recorded",
            case_no=p.case_no,
            stage=p.stage.value,
            last_seq=p.last_seq,
            inserted=inserted,
            notices=len(inp.notices),
        )
        return inserted

    @activity.defn(name="record_case_block")
    async def record_case_block(self, inp: CaseBlockRecord) -> None:
        """The side-table row of a blocked case (idempotent per run and block number)."""
        b = inp.blocked
        await self._pool.execute(
            """INSERT INTO case_block (case_no, workflow_run_id, block_no, blocked_at, activity,
                                       error_type, message, origin, request_id)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
               ON CONFLICT (workflow_run_id, block_no) DO NOTHING""",
            inp.case_no, inp.workflow_run_id, b.block_no, b.at, b.activity, b.error_type,
            clean_message(b.message), clean_message(b.origin, 200), b.request_id,
        )
        log.error("case_blocked", case_no=inp.case_no, activity=b.activity, error_type=b.error_type,
                  error=clean_message(b.message, 500), origin=b.origin)

    @activity.defn(name="resolve_case_block")
    async def resolve_case_block(self, inp: CaseBlockRecord) -> None:
        """Mark a block resolved by the office's UNBLOCK."""
        u = inp.unblock
        assert u is not None
        await self._pool.execute(
            """UPDATE case_block SET resolved_at = $3, resolved_by = $4, resolution = $5,
                                     resolution_reason = $6
               WHERE workflow_run_id = $1 AND block_no = $2 AND resolved_at IS NULL""",
            inp.workflow_run_id, inp.blocked.block_no, inp.at, u.actor.user_id, u.mode.value,
            clean_message(u.reason, 500),
        )
        log.info("case_unblocked", case_no=inp.case_no, by=u.actor.user_id, mode=u.mode.value)

    def all(self) -> list:
        return [self.load_policy, self.compute_deadline, self.compute_followup_schedule, self.record_case_events,
                self.record_clock_events,  # issue 9 (lag): the clock's write as a local activity
                self.record_case_block, self.resolve_case_block,
                self.load_counties]  # issue 13 (county fan-out)
