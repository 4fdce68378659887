"""Activities of the look-back campaign (回头看): policy, reminder schedule, candidates, ledger, reopen.

Idempotent like the programme's: ledger rows are keyed (campaign_id, seq) with seq in the workflow
state and chained by sha256 to the previous row of the campaign (a retry computes the same
hashes); projection and item rows only move forward (last_seq); notices are keyed
`lookback:<id>:<seq>:<unit>`; all in one transaction. A reopen is sent with the request id
`lookback-<campaign>-<finding seq>`, so a retried activity never reopens twice.
"""

from __future__ import annotations

import json
from datetime import date

import asyncpg
import structlog
from pydantic import ValidationError
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.case_activities import CaseActivities
from activities.failures import classified
from activities.policy_source import policy_section
from audit.chain import GENESIS, side_ledger_hash
from domain.calendar import add_days
from domain.enums import DayCount
from domain.lookback import (
    Candidate,
    CandidateQuery,
    LookbackEntry,
    LookbackPolicy,
    LookbackRecordInput,
    ReopenOrder,
    ReopenOutcome,
    Schedule,
    ScheduleRequest,
    compute_schedule,
    lookback_workflow_id,
)
from domain.lookback_rules import DONE

log = structlog.get_logger(__name__)


def lookback_row_hash(e: LookbackEntry, prev: str) -> str:
    """sha256 over the previous row's hash and this row's content (canonical JSON)."""
    return side_ledger_hash(prev, {
        "campaign_id": e.campaign_id, "seq": e.seq, "event": e.event, "actor_user": e.actor.user_id,
        "actor_role": e.actor.role.value, "actor_unit": e.actor.unit, "at": e.at.isoformat(),
        "reason": e.reason, "request_id": e.request_id, "case_no": e.case_no, "data": e.data,
    })


def load_lookback_policy(policy_file: str | None) -> LookbackPolicy:
    """POLICY_FILE's "lookback" object over the defaults; office and supervision units from the case policy."""
    raw = policy_section(policy_file, "lookback")
    try:
        return LookbackPolicy.model_validate(raw)
    except ValidationError as e:
        raise ApplicationError(f"policy file {policy_file}: lookback: {e}", type="PolicyError",
                               non_retryable=True) from None


_INSERT = """
INSERT INTO lookback_ledger (campaign_id, seq, event, actor_user, actor_role, actor_unit, at, reason,
                             request_id, case_no, data, workflow_run_id, prev_hash, row_hash)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11::jsonb, $12, $13, $14)
ON CONFLICT (campaign_id, seq) DO NOTHING
"""
_HASH = "SELECT row_hash FROM lookback_ledger WHERE campaign_id = $1 AND seq = $2"
_PROJECTION = """
INSERT INTO lookback_projection AS p (
    campaign_id, workflow_id, name, basis, unannounced, start_date, end_date, programme_id, stage, created_by,
    created_at, closed_at, close_reason, selected, visited, population, criteria, reminders, last_seq,
    policy_version, updated_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17::jsonb, $18::jsonb, $19, $20,
        clock_timestamp())
ON CONFLICT (campaign_id) DO UPDATE SET
    stage = EXCLUDED.stage, closed_at = EXCLUDED.closed_at, close_reason = EXCLUDED.close_reason,
    selected = EXCLUDED.selected, visited = EXCLUDED.visited, population = EXCLUDED.population,
    criteria = EXCLUDED.criteria, reminders = EXCLUDED.reminders, last_seq = EXCLUDED.last_seq,
    updated_at = clock_timestamp()
WHERE p.last_seq <= EXCLUDED.last_seq
"""
_ITEM = """
INSERT INTO lookback_item AS i (
    campaign_id, case_no, title, stage_at_selection, responsible_units, lead_supervising_units, finding, evidence,
    evidence_refs, inspector_user, inspector_role, inspector_unit, found_at, finding_seq, reopen, reopen_due_date,
    reopen_error, referral_proposed, last_seq)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)
ON CONFLICT (campaign_id, case_no) DO UPDATE SET
    finding = EXCLUDED.finding, evidence = EXCLUDED.evidence, evidence_refs = EXCLUDED.evidence_refs,
    inspector_user = EXCLUDED.inspector_user, inspector_role = EXCLUDED.inspector_role,
    inspector_unit = EXCLUDED.inspector_unit, found_at = EXCLUDED.found_at, finding_seq = EXCLUDED.finding_seq,
    reopen = EXCLUDED.reopen, reopen_due_date = EXCLUDED.reopen_due_date, reopen_error = EXCLUDED.reopen_error,
    referral_proposed = EXCLUDED.referral_proposed, last_seq = EXCLUDED.last_seq
WHERE i.last_seq <= EXCLUDED.last_seq
"""
_OUTBOX = """
INSERT INTO outbox (notice_key, case_no, seq, lookback_id, lookback_seq, recipient_unit, recipient_role,
                    subject, body)
VALUES ($1, $2, NULL, $3, $4, $5, $6, $7, $8)
ON CONFLICT (notice_key) DO NOTHING
"""
_CANDIDATES = """
SELECT case_no, title, stage, responsible_units, lead_supervising_units, inspection_round, programme_id
FROM case_projection
WHERE stage = ANY($1::text[]) AND ($2 = '' OR programme_id = $2)
ORDER BY case_no
LIMIT $3
"""


class LookbackActivities:
    """Holds the pool and the Temporal client (for reopening cases); the calendar is the case activities'."""

    def __init__(self, pool: asyncpg.Pool, cases: CaseActivities, client: object, policy_file: str = "") -> None:
        self._pool, self._cases, self._client, self._policy_file = pool, cases, client, policy_file

    @activity.defn(name="load_lookback_policy")
    @classified
    async def load_lookback_policy(self, campaign_id: str) -> LookbackPolicy:
        return load_lookback_policy(self._policy_file or None)

    @activity.defn(name="lookback_schedule")
    @classified
    async def lookback_schedule(self, req: ScheduleRequest) -> Schedule:
        """The reminder days, counted in Chinese working days back from the period's end."""
        return compute_schedule(req, self._cases.calendar())

    @activity.defn(name="lookback_candidates")
    @classified
    async def lookback_candidates(self, q: CandidateQuery) -> list[Candidate]:
        """Closed, long-term and archived cases (of the programme, when given), by case number."""
        rows = await self._pool.fetch(_CANDIDATES, sorted(DONE), q.programme_id, q.limit + 1)
        if len(rows) > q.limit:
            raise ApplicationError(f"more than {q.limit} closed cases match: filter by programme", type="InvalidInput",
                                   non_retryable=True)
        return [Candidate(case_no=r["case_no"], title=r["title"], stage=r["stage"],
                          responsible_units=list(r["responsible_units"]),
                          lead_supervising_units=list(r["lead_supervising_units"]),
                          inspection_round=r["inspection_round"], programme_id=r["programme_id"] or "")
                for r in rows]

    @activity.defn(name="lookback_reopen")
    @classified
    async def lookback_reopen(self, order: ReopenOrder) -> ReopenOutcome:
        """Reopen one case through workflows.reopen.reopen_case (the only way); a refusal is an
        outcome (recorded by the campaign as REOPEN_FAILED), not an activity failure."""
        from workflows.client import ActionRefusedError
        from workflows.reopen import reopen_case

        due = order.new_due_date
        if due is None:
            due = add_days(self._cases.calendar(), order.today, order.working_days, DayCount.WORKING).end
        try:
            result = await reopen_case(self._client, self._pool, case_no=order.case_no, actor=order.actor,  # type: ignore[arg-type]
                                       new_due_date=due, lookback_finding=order.lookback_finding.value,
                                       reason=order.reason, request_id=order.request_id)
        except ActionRefusedError as e:
            if e.error_type == "EngineUnavailable":
                raise  # retried
            log.warning("lookback_reopen_refused", campaign_id=order.campaign_id, case_no=order.case_no,
                        error_type=e.error_type, message=e.message)
            return ReopenOutcome(case_no=order.case_no, ok=False, error_type=e.error_type, message=e.message)
        return ReopenOutcome(case_no=order.case_no, ok=True,
                             due_date=date.fromisoformat(result.due_date) if result.due_date else due)

    @activity.defn(name="record_lookback_events")
    @classified
    async def record_lookback_events(self, inp: LookbackRecordInput) -> int:
        """Ledger rows, the projection, the items touched and outbox notices in one transaction."""
        s = inp.state
        touched = {e.case_no for e in inp.entries if e.case_no}
        selected = any(e.event == "CASES_SELECTED" for e in inp.entries)
        items = [i for i in s.items if selected or i.case_no in touched]
        inserted = 0
        async with self._pool.acquire() as conn, conn.transaction():
            prev: str | None = None
            for e in inp.entries:
                if prev is None:
                    prev = GENESIS if e.seq == 1 else await conn.fetchval(_HASH, e.campaign_id, e.seq - 1)
                    if prev is None:
                        raise ApplicationError(f"look-back ledger of {e.campaign_id} has no row {e.seq - 1}",
                                               type="LedgerGapError")
                own = lookback_row_hash(e, prev)
                status = await conn.execute(
                    _INSERT, e.campaign_id, e.seq, e.event, e.actor.user_id, e.actor.role.value, e.actor.unit,
                    e.at, e.reason, e.request_id, e.case_no, json.dumps(e.data, ensure_ascii=False, default=str),
                    inp.workflow_run_id, prev, own)
                n = int(status.rsplit(" ", 1)[-1])
                inserted += n
                prev = own if n else (await conn.fetchval(_HASH, e.campaign_id, e.seq) or own)
            sp = s.spec
            await conn.execute(
                _PROJECTION, sp.campaign_id, lookback_workflow_id(sp.campaign_id), sp.name, sp.basis, sp.unannounced,
                sp.start, sp.end, sp.programme_id, s.stage.value, s.created_by.user_id, s.created_at, s.closed_at,
                s.close_reason, len(s.items), sum(1 for i in s.items if i.finding is not None), s.population,
                json.dumps(s.criteria.model_dump(mode="json")) if s.criteria else None,
                json.dumps([r.model_dump(mode="json") for r in s.reminders]), s.seq, s.policy.version)
            if items:
                await conn.executemany(_ITEM, [(
                    sp.campaign_id, i.case_no, i.title, i.stage, i.responsible_units, i.lead_supervising_units,
                    i.finding.value if i.finding else None, i.evidence, i.evidence_refs,
                    i.inspector.user_id if i.inspector else None, i.inspector.role.value if i.inspector else None,
                    i.inspector.unit if i.inspector else None, i.found_at, i.finding_seq,
                    i.reopen.value if i.reopen else None, i.reopen_due_date, i.reopen_error,
                    i.referral_proposed.value if i.referral_proposed else None, s.seq) for i in items])
            if inp.notices:
                await conn.executemany(_OUTBOX, [
                    (n.key, f"lookback:{n.campaign_id}", n.campaign_id, n.seq, n.recipient_unit,
                     n.recipient_role.value, n.subject, n.body) for n in inp.notices])
        log.info("lookback_events_recorded", campaign_id=s.campaign_id, stage=s.stage.value, last_seq=s.seq,
                 inserted=inserted, notices=len(inp.notices))
        return inserted

    def all(self) -> list:
        return [self.load_lookback_policy, self.lookback_schedule, self.lookback_candidates, self.lookback_reopen,
                self.record_lookback_events]
