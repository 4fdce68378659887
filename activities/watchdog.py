"""The escalation watchdog (issue 9): a periodic reconciliation in the worker process.

Every `WATCHDOG_SECONDS` it reads the PostgreSQL projection, finds every open case whose wake-up
(due date, next rung, end of 公示, archiving; domain/watchdog.py) passed more than
`WATCHDOG_GRACE_SECONDS` ago with no ledger row since, and nudges it (the workflow's `nudge`
signal: it re-runs `on_wakeup` at once). Each finding is logged (`watchdog_nudged`) and kept in
the `watchdog_nudge` table, which the console's office page shows (运行监控 Runtime); a later
pass that sees the ledger row marks it healed (`watchdog_healed`). Blocked cases are skipped:
they are listed as blocked already and a nudge cannot help them.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import asyncpg
import structlog
from temporalio.client import Client
from temporalio.service import RPCError

from domain.blocking import clean_message
from domain.enums import Stage
from domain.model import ComputedDeadline
from domain.watchdog import expected_wakeup, missed_wakeup
from workflows.contracts import case_workflow_id

log = structlog.get_logger(__name__)

_CANDIDATES = """
SELECT p.case_no, p.stage, p.deadline, p.escalation_level, p.suspended, p.detail,
       (SELECT l.at FROM ledger l WHERE l.case_no = p.case_no ORDER BY l.seq DESC LIMIT 1) AS last_at
FROM case_projection p
WHERE p.stage <> 'ARCHIVED'
  AND (p.due_at < $1 OR p.stage IN ('PUBLIC_POSTING', 'CLOSED'))
  AND NOT EXISTS (SELECT 1 FROM case_block b WHERE b.case_no = p.case_no AND b.resolved_at IS NULL)
"""

_RECORD = """
INSERT INTO watchdog_nudge (case_no, wake_at, what, late_seconds, last_error)
VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (case_no, wake_at) DO UPDATE
   SET nudges = watchdog_nudge.nudges + 1, late_seconds = EXCLUDED.late_seconds,
       last_error = EXCLUDED.last_error
"""

_HEAL = """
UPDATE watchdog_nudge w SET healed_at = clock_timestamp()
WHERE w.healed_at IS NULL
  AND EXISTS (SELECT 1 FROM ledger l WHERE l.case_no = w.case_no AND l.at >= w.wake_at)
RETURNING w.case_no, w.wake_at, w.what
"""


@dataclass
class WatchdogPass:
    checked: int = 0
    nudged: list[str] = field(default_factory=list)
    healed: list[str] = field(default_factory=list)
    errors: int = 0


async def watchdog_pass(
    client: Client, pool: asyncpg.Pool, *, grace: timedelta, now: datetime | None = None
) -> WatchdogPass:
    """One reconciliation: heal what has healed, nudge what missed its wake-up."""
    now = now or datetime.now(UTC)
    out = WatchdogPass()
    for r in await pool.fetch(_HEAL):
        out.healed.append(r["case_no"])
        log.info("watchdog_healed", case_no=r["case_no"], wake_at=r["wake_at"].isoformat(), what=r["what"])
    for r in await pool.fetch(_CANDIDATES, now - grace):
        out.checked += 1
        deadline = ComputedDeadline.model_validate_json(r["deadline"]) if r["deadline"] else None
        detail = json.loads(r["detail"]) if isinstance(r["detail"], str) else (r["detail"] or {})
        wake = expected_wakeup(Stage(r["stage"]), deadline, r["escalation_level"], r["suspended"], detail)
        late = missed_wakeup(wake, r["last_at"], now, grace)
        if late is None or wake is None:
            continue
        error = None
        try:
            await client.get_workflow_handle(case_workflow_id(r["case_no"])).signal(
                "nudge", f"watchdog: {wake.what} due {wake.at.isoformat()} missed by {late.total_seconds():.0f} s"
            )
            out.nudged.append(r["case_no"])
        except RPCError as e:
            error = clean_message(str(e), 500)
            out.errors += 1
        await pool.execute(_RECORD, r["case_no"], wake.at, wake.what, late.total_seconds(), error)
        log.warning("watchdog_nudged", case_no=r["case_no"], wake_at=wake.at.isoformat(), what=wake.what,
                    late_seconds=round(late.total_seconds()), error=error)
    return out


async def run_watchdog(
    client: Client, pool: asyncpg.Pool, stop: asyncio.Event, every_seconds: float, grace: timedelta
) -> None:
    """Reconcile every `every_seconds` until `stop` is set (a worker part, watched by its health)."""
    while not stop.is_set():
        try:
            p = await watchdog_pass(client, pool, grace=grace)
            if p.nudged or p.healed or p.errors:
                log.info("watchdog_pass", checked=p.checked, nudged=len(p.nudged), healed=len(p.healed),
                         errors=p.errors)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, asyncpg.exceptions.InternalClientError,
                RPCError) as e:
            log.warning("watchdog_error", error=str(e))
        try:
            await asyncio.wait_for(stop.wait(), timeout=every_seconds)
        except TimeoutError:
            pass
