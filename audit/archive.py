"""The history archive: every ended run of a Case workflow, kept in PostgreSQL.

The archiver lists closed runs through Temporal visibility
(`WorkflowType = 'Case' AND ExecutionStatus != 'Running'`) from a close-time
watermark minus an overlap (visibility is eventually consistent), fetches each
run's full history and stores it with its run id, case number and sha256
(ON CONFLICT (run_id) DO NOTHING). After downtime the watermark is simply
older, so the missed runs are caught up; running it twice stores nothing twice.

`load_histories` gives every run of one case in execution order: archived runs
first (their sha256 re-checked), then whatever Temporal still holds.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import asyncpg
import structlog
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from audit.history import HistoryError, RunHistory, from_workflow_history, order_runs, parse_history, sha256_text
from workflows.contracts import WORKFLOW_NAME, case_workflow_id

log = structlog.get_logger(__name__)

CHECKPOINT = "case-history-archiver"
DEFAULT_OVERLAP = timedelta(minutes=10)
_LOCK_ID = 7_233_002  # advisory lock: one archiver pass at a time across workers

_INSERT = """
INSERT INTO history_archive (run_id, workflow_id, case_no, status, start_time, close_time,
                             continued_from, event_count, history_json, sha256)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
ON CONFLICT (run_id) DO NOTHING
"""


class ArchiveIntegrityError(HistoryError):
    """An archived history no longer matches the sha256 stored with it."""


async def archive_run(pool: asyncpg.Pool | asyncpg.Connection, run: RunHistory) -> bool:
    """Store one ended run; False if it was already archived (idempotent)."""
    if not run.closed or run.close_time is None:
        raise HistoryError(f"run {run.run_id} of case {run.case_no} has not ended; only ended runs are archived")
    status = await pool.execute(
        _INSERT, run.run_id, run.workflow_id, run.case_no, run.status, run.start_time, run.close_time,
        run.continued_from, len(run.history.events), run.json_text, run.sha256,
    )
    return status.endswith(" 1")


def run_from_row(r: asyncpg.Record) -> RunHistory:
    text = r["history_json"]
    actual = sha256_text(text)
    if actual != r["sha256"]:
        raise ArchiveIntegrityError(
            f"archived history of run {r['run_id']} (case {r['case_no']}) hashes to {actual[:12]}… "
            f"but was stored with sha256 {r['sha256'][:12]}… (altered in the archive)"
        )
    run = parse_history(text, source="archive", origin="archive", workflow_id=r["workflow_id"])
    if run.run_id != r["run_id"] or run.case_no != r["case_no"]:
        raise ArchiveIntegrityError(
            f"archive row {r['run_id']} holds the history of run {run.run_id} (case {run.case_no})"
        )
    run.sha256 = r["sha256"]
    return run


async def load_archived(pool: asyncpg.Pool, case_no: str) -> list[RunHistory]:
    rows = await pool.fetch("SELECT * FROM history_archive WHERE case_no = $1 ORDER BY start_time", case_no)
    return [run_from_row(r) for r in rows]


async def fetch_run(client: Client, workflow_id: str, run_id: str | None) -> RunHistory | None:
    try:
        hist = await client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history()
    except RPCError as e:
        if e.status in (RPCStatusCode.NOT_FOUND, RPCStatusCode.INVALID_ARGUMENT):
            return None
        raise
    if not hist.events:
        return None
    return from_workflow_history(hist, source="temporal")


async def load_histories(pool: asyncpg.Pool | None, client: Client | None, case_no: str) -> list[RunHistory]:
    """Every run of a case, in execution order: the archive first, Temporal as fallback.

    Temporal is asked for the latest run of `case-<case_no>` and then, following
    continue-as-new links (and a reopened case's link to its archived run) backwards, for each earlier run not in the archive
    (works without visibility). Raises ArchiveIntegrityError if an archived
    history was altered.
    """
    runs: dict[str, RunHistory] = {}
    if pool is not None:
        for r in await load_archived(pool, case_no):
            runs[r.run_id] = r
    if client is not None:
        wid = case_workflow_id(case_no)
        latest = await fetch_run(client, wid, None)
        cursor = latest
        while cursor is not None:
            if cursor.run_id not in runs:
                runs[cursor.run_id] = cursor
            prev = cursor.previous_run  # continue-as-new, or the archived run a reopen continues
            if not prev:
                break
            cursor = runs.get(prev) or await fetch_run(client, wid, prev)
    return order_runs(list(runs.values()))


@dataclass
class ArchivePass:
    listed: int = 0
    archived: int = 0
    already: int = 0
    failed: list[str] = field(default_factory=list)
    watermark: datetime | None = None
    skipped_locked: bool = False


def rfc3339(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def closed_runs_query(since: datetime | None) -> str:
    q = f"WorkflowType = '{WORKFLOW_NAME}' AND ExecutionStatus != 'Running'"
    if since is not None:
        q += f" AND CloseTime >= '{rfc3339(since)}'"
    return q


async def archive_pass(
    client: Client, pool: asyncpg.Pool, *, overlap: timedelta = DEFAULT_OVERLAP, full: bool = False
) -> ArchivePass:
    """One catch-up pass: archive every closed run since the watermark (all if `full`)."""
    out = ArchivePass()
    async with pool.acquire() as lock_conn:
        if not await lock_conn.fetchval("SELECT pg_try_advisory_lock($1)", _LOCK_ID):
            out.skipped_locked = True
            return out
        try:
            mark = await pool.fetchval("SELECT watermark FROM archive_checkpoint WHERE name = $1", CHECKPOINT)
            since = None if full or mark is None else mark - overlap
            newest = mark
            async for wf in client.list_workflows(closed_runs_query(since)):
                out.listed += 1
                if wf.close_time is not None and (newest is None or wf.close_time > newest):
                    newest = wf.close_time
                if await pool.fetchval("SELECT 1 FROM history_archive WHERE run_id = $1", wf.run_id):
                    out.already += 1
                    continue
                try:
                    run = await fetch_run(client, wf.id, wf.run_id)
                    if run is None:
                        raise HistoryError("history no longer on the server")
                    if not run.closed:
                        raise HistoryError("history does not end with a close event yet")
                    if await archive_run(pool, run):
                        out.archived += 1
                        log.info("history_archived", case_no=run.case_no, run_id=run.run_id, status=run.status,
                                 events=len(run.history.events), sha256=run.sha256)
                    else:
                        out.already += 1
                except (HistoryError, RPCError) as e:
                    # Not advancing past a run we could not store: it is listed again next pass.
                    out.failed.append(f"{wf.id} run {wf.run_id}: {e}")
                    log.warning("history_archive_failed", workflow_id=wf.id, run_id=wf.run_id, error=str(e))
            # A failed run keeps the watermark where it was, so the next pass lists it again.
            # Never past our own clock: a close time in the future (server clock skew, a
            # time-skipped test workflow) must not make the next passes skip real closes.
            if out.failed:
                newest = mark
            elif newest is not None:
                newest = min(newest, datetime.now(UTC))
                await pool.execute(
                    """INSERT INTO archive_checkpoint (name, watermark, runs_seen) VALUES ($1, $2, $3)
                       ON CONFLICT (name) DO UPDATE SET watermark = GREATEST(archive_checkpoint.watermark,
                       EXCLUDED.watermark), runs_seen = archive_checkpoint.runs_seen + EXCLUDED.runs_seen,
                       updated_at = clock_timestamp()""",
                    CHECKPOINT, newest, out.archived,
                )
            out.watermark = newest
        finally:
            await lock_conn.execute("SELECT pg_advisory_unlock($1)", _LOCK_ID)
    return out


async def run_archiver(
    client: Client, pool: asyncpg.Pool, stop: asyncio.Event, poll_seconds: float,
    overlap: timedelta = DEFAULT_OVERLAP,
) -> None:
    """Archive closed runs every `poll_seconds` until `stop` is set (the worker's background task)."""
    while not stop.is_set():
        try:
            p = await archive_pass(client, pool, overlap=overlap)
            if p.skipped_locked:
                log.debug("archive_pass_skipped", reason="another archiver holds the lock")
            if p.archived or p.failed:
                log.info("archive_pass", listed=p.listed, archived=p.archived, failed=len(p.failed))
        except (RPCError, asyncpg.PostgresError, asyncpg.InterfaceError, asyncpg.exceptions.InternalClientError,
                OSError) as e:
            log.warning("archive_pass_error", error=str(e))
        try:
            await asyncio.wait_for(stop.wait(), timeout=poll_seconds)
        except TimeoutError:
            pass
