"""The minimal floor: the plainest Temporal workflow that does a case's job.

Issue 15's comparison point. One workflow per case; the filing runs one activity that writes
the FILED row; every handler action is one Update with a validator (who may do what, in which
stage) that runs one activity writing one ledger row, idempotently (`ON CONFLICT (case_no, seq)
DO NOTHING`, the key from case and sequence), and answers with the new stage. Nothing else: no
deadlines, no timers, no search attributes, no notices, no pydantic models (payloads are plain
JSON dicts). What the engine spends above this is what its features cost.

Its ledger is its own table (`bench_min_ledger`, created by the worker at start) in the same
PostgreSQL, so the database's cost per action is counted like the engine's.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from temporalio import activity, workflow
from temporalio.exceptions import ApplicationError

if TYPE_CHECKING:  # not at run time: the sandbox re-imports this module, and asyncpg must not
    import asyncpg  # be imported again inside it (its C extension crashes the worker)

MINIMAL_WORKFLOW = "BenchMinimal"
MINIMAL_TASK_QUEUE = "bench-minimal"
_TIMEOUT = timedelta(seconds=30)

# action -> (the stage it is allowed in, the role that may take it, the stage it leads to)
RULES: dict[str, tuple[str, str, str]] = {
    "TRANSFER": ("REGISTERED", "RECTIFICATION_OFFICE", "TRANSFERRED"),
    "ACKNOWLEDGE": ("TRANSFERRED", "RESPONSIBLE_UNIT", "IN_RECTIFICATION"),
    "SUBMIT_COMPLETION": ("IN_RECTIFICATION", "RESPONSIBLE_UNIT", "PRELIM_REVIEW"),
}

CREATE_TABLE = """
CREATE TABLE IF NOT EXISTS bench_min_ledger (
    case_no text NOT NULL, seq int NOT NULL, event text NOT NULL, actor text NOT NULL,
    role text NOT NULL, at timestamptz NOT NULL, data jsonb NOT NULL,
    PRIMARY KEY (case_no, seq))
"""
_INSERT = """
INSERT INTO bench_min_ledger (case_no, seq, event, actor, role, at, data)
VALUES ($1, $2, $3, $4, $5, $6::timestamptz, $7::jsonb) ON CONFLICT (case_no, seq) DO NOTHING
"""


class MinimalActivities:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    @activity.defn(name="minimal_record")
    async def record(self, row: dict[str, Any]) -> int:
        """One ledger row, idempotent; returns the rows inserted (0 on a retry)."""
        async with self._pool.acquire() as conn:
            status = await conn.execute(
                _INSERT, row["case_no"], int(row["seq"]), row["event"], row["actor"], row["role"],
                datetime.fromisoformat(row["at"]), json.dumps(row.get("data") or {}, ensure_ascii=False),
            )
        return int(status.rsplit(" ", 1)[-1])


@workflow.defn(name=MINIMAL_WORKFLOW)
class MinimalWorkflow:
    @workflow.init
    def __init__(self, inp: dict[str, Any]) -> None:
        self._case_no = str(inp["case_no"])
        self._stage = "REGISTERED"
        self._seq = 0
        self._filed = False

    async def _record(self, event: str, actor: dict[str, Any], data: dict[str, Any]) -> None:
        self._seq += 1
        row = {"case_no": self._case_no, "seq": self._seq, "event": event, "actor": actor.get("user_id", ""),
               "role": actor.get("role", ""), "at": workflow.now().isoformat(), "data": data}
        await workflow.execute_activity("minimal_record", row, start_to_close_timeout=_TIMEOUT)

    @workflow.run
    async def run(self, inp: dict[str, Any]) -> dict[str, Any]:
        await self._record("FILED", inp.get("filed_by") or {}, {"title": inp.get("title", "")})
        self._filed = True
        # Open until told otherwise, like a case (the bench leaves them open).
        await workflow.wait_condition(lambda: self._stage == "CLOSED")
        await workflow.wait_condition(workflow.all_handlers_finished)
        return {"stage": self._stage, "seq": self._seq}

    @workflow.update(name="act")
    async def act(self, req: dict[str, Any]) -> dict[str, Any]:
        await workflow.wait_condition(lambda: self._filed)
        action = req["action"]
        _, _, to = RULES[action]
        frm = self._stage
        self._stage = to  # before the await: a second identical action is refused by the validator
        await self._record(action, req["actor"], {"from": frm, "to": to, "request_id": req.get("request_id")})
        return {"case_no": self._case_no, "stage": self._stage, "seq": self._seq}

    @act.validator
    def _validate(self, req: dict[str, Any]) -> None:
        rule = RULES.get(req.get("action", ""))
        if rule is None:
            raise ApplicationError(f"unknown action {req.get('action')!r}", type="InvalidAction", non_retryable=True)
        stage, role, _ = rule
        actor = req.get("actor") or {}
        if actor.get("role") != role:
            raise ApplicationError(f"{req['action']} needs role {role}", type="NotAllowed", non_retryable=True)
        if self._stage != stage:
            raise ApplicationError(f"{req['action']} not allowed in {self._stage}", type="WrongStage",
                                   non_retryable=True)

    @workflow.query(name="stage")
    def stage(self) -> str:
        return self._stage


def action_payload(action: str, actor: Any) -> dict[str, Any]:
    """An Update payload from one of bench.common's actors."""
    import uuid

    return {"action": action, "actor": {"user_id": actor.user_id, "role": actor.role.value, "unit": actor.unit},
            "request_id": f"bench-{uuid.uuid4().hex}"}
