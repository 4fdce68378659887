"""Issue 14: keep the final state of a run that ended ARCHIVED, and read it back to reopen.

The state is written by the case workflow's `record_archived_state` activity when a run ends
ARCHIVED (behind `workflow.patched("reopen-archive-snapshot-1")`), one row per run, idempotent
(ON CONFLICT DO NOTHING). `workflows/reopen.py` reads it back to start the linked new run.
"""

from __future__ import annotations

import asyncpg
import structlog
from temporalio import activity

from domain.model import CaseState
from workflows.contracts import ArchivedStateRecord

log = structlog.get_logger(__name__)

_INSERT = """
INSERT INTO archived_case_state (workflow_run_id, case_no, seq, archived_at, state)
VALUES ($1, $2, $3, $4, $5::jsonb)
ON CONFLICT (workflow_run_id) DO NOTHING
"""


def _archived_at(state: CaseState):  # noqa: ANN202 - datetime | None
    return next((t.at for t in reversed(state.timeline) if t.event == "ARCHIVED"), state.archive_at)


async def store_archived_state(pool: asyncpg.Pool, rec: ArchivedStateRecord) -> bool:
    """Store one run's archived final state; False if it was stored already."""
    s = rec.state
    status = await pool.execute(_INSERT, rec.workflow_run_id, rec.case_no, s.seq, _archived_at(s),
                                s.model_dump_json())
    return status.endswith(" 1")


async def load_archived_state(pool: asyncpg.Pool, case_no: str, run_id: str | None = None) -> CaseState | None:
    """The archived final state of `run_id` (or of the case's latest archived run)."""
    if run_id is not None:
        text = await pool.fetchval(
            "SELECT state::text FROM archived_case_state WHERE case_no = $1 AND workflow_run_id = $2",
            case_no, run_id,
        )
    else:
        text = await pool.fetchval(
            "SELECT state::text FROM archived_case_state WHERE case_no = $1 ORDER BY seq DESC, recorded_at DESC "
            "LIMIT 1", case_no,
        )
    return CaseState.model_validate_json(text) if text is not None else None


async def current_archived_state(pool: asyncpg.Pool, case_no: str) -> CaseState | None:
    """The kept final state of a case that is archived now (its last ledger row is the archived
    run's last): for the console when Temporal no longer holds the run. None otherwise."""
    text = await pool.fetchval(
        """SELECT a.state::text FROM archived_case_state a JOIN case_projection p ON p.case_no = a.case_no
           WHERE a.case_no = $1 AND a.seq = p.last_seq ORDER BY a.recorded_at DESC LIMIT 1""", case_no)
    return CaseState.model_validate_json(text) if text is not None else None


class ReopenActivities:
    """Holds the pool; the worker registers the bound methods."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    @activity.defn(name="record_archived_state")
    async def record_archived_state(self, rec: ArchivedStateRecord) -> bool:
        stored = await store_archived_state(self._pool, rec)
        log.info("archived_state_recorded", case_no=rec.case_no, run_id=rec.workflow_run_id,
                 seq=rec.state.seq, stored=stored)
        return stored

    def all(self) -> list:
        return [self.record_archived_state]
