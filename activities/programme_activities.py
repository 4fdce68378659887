"""Activities of the programme workflow: its policy, its timers, its ledger and its case counts.

Idempotent like the case activities: ledger rows are keyed (programme_id, seq) with seq in the
workflow state, projection rows only move forward (last_seq), notices are keyed; ledger rows,
projection and outbox notices are written in one transaction. Each ledger row is chained by
sha256 to the previous row of its programme (deterministic: a retry computes the same hashes).
"""

from __future__ import annotations

import json

import asyncpg
import structlog
from pydantic import ValidationError
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.case_activities import CaseActivities
from activities.failures import classified
from activities.policy_source import policy_section
from audit.chain import GENESIS, side_ledger_hash
from domain.programme import (
    ProgrammeEntry,
    ProgrammePolicy,
    ProgrammePolicyRequest,
    ProgrammeRecordInput,
    ProgrammeTimer,
    ProgressCounts,
    TimerRequest,
    compute_timer,
    programme_workflow_id,
)

log = structlog.get_logger(__name__)


def programme_row_hash(e: ProgrammeEntry, prev: str) -> str:
    """sha256 over the previous row's hash and this row's content (canonical JSON)."""
    return side_ledger_hash(prev, {
        "programme_id": e.programme_id, "seq": e.seq, "event": e.event, "actor_user": e.actor.user_id,
        "actor_role": e.actor.role.value, "actor_unit": e.actor.unit, "at": e.at.isoformat(),
        "reason": e.reason, "request_id": e.request_id, "data": e.data,
    })


def load_programme_policy(policy_file: str | None) -> ProgrammePolicy:
    """The deployment's programme rules: POLICY_FILE's "programme" object over the defaults;
    office and supervision units come from the case policy."""
    raw = policy_section(policy_file, "programme")
    try:
        return ProgrammePolicy.model_validate(raw).checked()
    except ValidationError as e:
        raise ApplicationError(f"policy file {policy_file}: programme: {e}", type="PolicyError",
                               non_retryable=True) from None


_INSERT = """
INSERT INTO programme_ledger (programme_id, seq, event, actor_user, actor_role, actor_unit, at, reason,
                              request_id, data, workflow_run_id, prev_hash, row_hash)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10::jsonb, $11, $12, $13)
ON CONFLICT (programme_id, seq) DO NOTHING
"""
_HASH = "SELECT row_hash FROM programme_ledger WHERE programme_id = $1 AND seq = $2"
_PROJECTION = """
INSERT INTO programme_projection AS p (
    programme_id, workflow_id, name, inspection_round, locality, counties, stage, feedback_date,
    plan_submitted_at, plan_ref, report_due_date, report_due_at, report_submitted_at, report_ref,
    escalation_level, total_cases, done_cases, created_at, completed_at, last_seq, policy_version, detail,
    updated_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21,
        $22::jsonb, clock_timestamp())
ON CONFLICT (programme_id) DO UPDATE SET
    name = EXCLUDED.name, inspection_round = EXCLUDED.inspection_round, locality = EXCLUDED.locality,
    counties = EXCLUDED.counties, stage = EXCLUDED.stage, feedback_date = EXCLUDED.feedback_date,
    plan_submitted_at = EXCLUDED.plan_submitted_at, plan_ref = EXCLUDED.plan_ref,
    report_due_date = EXCLUDED.report_due_date, report_due_at = EXCLUDED.report_due_at,
    report_submitted_at = EXCLUDED.report_submitted_at, report_ref = EXCLUDED.report_ref,
    escalation_level = EXCLUDED.escalation_level, total_cases = EXCLUDED.total_cases,
    done_cases = EXCLUDED.done_cases, completed_at = EXCLUDED.completed_at, last_seq = EXCLUDED.last_seq,
    policy_version = EXCLUDED.policy_version, detail = EXCLUDED.detail, updated_at = clock_timestamp()
WHERE p.last_seq <= EXCLUDED.last_seq
"""
_OUTBOX = """
INSERT INTO outbox (notice_key, case_no, seq, programme_id, programme_seq, recipient_unit, recipient_role,
                    subject, body)
VALUES ($1, $2, NULL, $3, $4, $5, $6, $7, $8)
ON CONFLICT (notice_key) DO NOTHING
"""
_COUNTS = "SELECT stage, count(*) AS n FROM case_projection WHERE programme_id = $1 GROUP BY stage"


class ProgrammeActivities:
    """Holds the pool; the calendar is the case activities' (reloaded when its file changes)."""

    def __init__(self, pool: asyncpg.Pool, cases: CaseActivities, policy_file: str = "") -> None:
        self._pool, self._cases, self._policy_file = pool, cases, policy_file

    @activity.defn(name="load_programme_policy")
    @classified
    async def load_programme_policy(self, req: ProgrammePolicyRequest) -> ProgrammePolicy:
        return load_programme_policy(self._policy_file or None)

    @activity.defn(name="programme_timer")
    @classified
    async def programme_timer(self, req: TimerRequest) -> ProgrammeTimer:
        """A programme deadline in calendar months or Chinese working days, with its schedule."""
        return compute_timer(req, self._cases.calendar())

    @activity.defn(name="programme_progress")
    @classified
    async def programme_progress(self, programme_id: str) -> ProgressCounts:
        """The programme's cases by stage (one GROUP BY on the indexed programme_id column)."""
        rows = await self._pool.fetch(_COUNTS, programme_id)
        return ProgressCounts.of({r["stage"]: r["n"] for r in rows})

    @activity.defn(name="record_programme_events")
    @classified
    async def record_programme_events(self, inp: ProgrammeRecordInput) -> int:
        """Ledger rows, the projection and outbox notices in one transaction; rows inserted (0 on a retry)."""
        p = inp.projection.model_dump()
        inserted = 0
        async with self._pool.acquire() as conn, conn.transaction():
            prev: str | None = None
            for e in inp.entries:
                if prev is None:
                    prev = GENESIS if e.seq == 1 else await conn.fetchval(_HASH, e.programme_id, e.seq - 1)
                    if prev is None:
                        raise ApplicationError(f"programme ledger of {e.programme_id} has no row {e.seq - 1}",
                                               type="LedgerGapError")
                own = programme_row_hash(e, prev)
                status = await conn.execute(
                    _INSERT, e.programme_id, e.seq, e.event, e.actor.user_id, e.actor.role.value, e.actor.unit,
                    e.at, e.reason, e.request_id, json.dumps(e.data, ensure_ascii=False, default=str),
                    inp.workflow_run_id, prev, own)
                n = int(status.rsplit(" ", 1)[-1])
                inserted += n
                prev = own if n else (await conn.fetchval(_HASH, e.programme_id, e.seq) or own)
            await conn.execute(
                _PROJECTION, p["programme_id"], programme_workflow_id(p["programme_id"]), p["name"],
                p["inspection_round"], p["locality"], p["counties"], p["stage"], p["feedback_date"],
                p["plan_submitted_at"], p["plan_ref"], p["report_due_date"], p["report_due_at"],
                p["report_submitted_at"], p["report_ref"], p["escalation_level"], p["total_cases"],
                p["done_cases"], p["created_at"], p["completed_at"], p["last_seq"], p["policy_version"],
                json.dumps(p["detail"], ensure_ascii=False, default=str))
            if inp.notices:
                await conn.executemany(_OUTBOX, [
                    (n.key, f"programme:{n.programme_id}", n.programme_id, n.seq, n.recipient_unit,
                     n.recipient_role.value, n.subject, n.body) for n in inp.notices])
        log.info("programme_events_recorded", programme_id=p["programme_id"], stage=p["stage"],
                 last_seq=p["last_seq"], inserted=inserted, notices=len(inp.notices))
        return inserted

    def all(self) -> list:
        return [self.load_programme_policy, self.programme_timer, self.programme_progress,
                self.record_programme_events]
