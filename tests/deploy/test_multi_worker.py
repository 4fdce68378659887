"""Several workers for real: three `python worker.py` processes on one task queue and one PostgreSQL.

On the dev server (real time; a case's clock is skipped over the 7-day posting): the cases
spread over all three workers (the identity in each history), one worker is killed with
SIGKILL mid-way and the other two finish every case; nothing is doubled (ledger rows, outbox
and inbox rows, e-mails by Message-ID). Every worker runs a notice sender (outbox rows claimed
FOR UPDATE SKIP LOCKED) and a history archiver (one pass at a time: a PostgreSQL advisory lock).
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import time
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest
import pytest_asyncio
from aiosmtpd.controller import Controller
from temporalio.api.enums.v1 import EventType
from temporalio.testing import WorkflowEnvironment

from activities.migrate import migrate
from audit.archive import _LOCK_ID
from domain.calendar import local_date
from domain.enums import Action, Stage
from embedded import EmbeddedPostgres, find_free_port
from tests.deploy.procs import WorkerProcess
from tests.harness import LEAD, OFFICE, RU, CaseDriver, criteria, make_filing, start_dev_env
from workflows.contracts import case_workflow_id

pytestmark = [pytest.mark.devserver, pytest.mark.timeout(900)]

WORKERS = 3
BATCH = 6
MAX_CASES = 30


class _Smtp:
    def __init__(self) -> None:
        self.messages: list[email.message.Message] = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd API
        self.messages.append(email.message_from_bytes(envelope.content, policy=email.policy.default))
        return "250 OK"


@pytest_asyncio.fixture(scope="module")
async def dev_env() -> AsyncIterator[WorkflowEnvironment]:
    env = await start_dev_env()
    yield env
    await env.shutdown()


@pytest_asyncio.fixture(scope="module")
async def own_db(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    """A PostgreSQL of its own: the unit directory gets e-mail addresses here."""
    pg = EmbeddedPostgres(tmp_path_factory.mktemp("pg-multi"), find_free_port(), fast=True)
    url = await pg.start()
    try:
        conn = await asyncpg.connect(url)
        try:
            await migrate(conn)
        finally:
            await conn.close()
        yield url
    finally:
        await pg.stop()


async def _eventually(check, what: str, timeout: float = 300.0, every: float = 0.3):
    deadline = time.monotonic() + timeout
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(every)


async def _identities(driver: CaseDriver) -> set[str]:
    """Every worker identity that handled a workflow or activity task of this case."""
    out = set()
    for e in await driver.handle_history_events():
        if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
            out.add(e.workflow_task_completed_event_attributes.identity)
        elif e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
            out.add(e.activity_task_started_event_attributes.identity)
    return {i for i in out if i}


async def _drive_to_closed(env: WorkflowEnvironment, c: CaseDriver) -> None:
    await c.complete_measures()  # 验收 needs every measure done (issue 13)
    await c.do(Action.SUBMIT_COMPLETION, RU)
    await c.do(Action.PRELIM_PASS, LEAD)
    await env.fast_forward(c.client.get_workflow_handle(case_workflow_id(c.case_no)), timedelta(days=8))

    async def in_closure() -> bool:
        return await c.stage() is Stage.CLOSURE_APPLICATION

    await _eventually(in_closure, f"{c.case_no} to reach CLOSURE_APPLICATION")
    await c.do(Action.APPLY_CLOSURE, RU)
    await c.do(Action.VERIFY_PASS, LEAD, criteria=criteria())
    await c.do(Action.RECORD_FILING, OFFICE)


async def test_three_worker_processes_share_one_queue_and_survive_losing_one(
    dev_env: WorkflowEnvironment, own_db: str, task_queue: str, tmp_path: Path
) -> None:
    client = dev_env.client
    smtp = _Smtp()
    controller = Controller(smtp, hostname="127.0.0.1", port=find_free_port())
    controller.start()
    pool = await asyncpg.create_pool(own_db, min_size=1, max_size=5)
    await pool.execute("INSERT INTO unit_directory (unit, email) VALUES ($1, 'ru@example.org'), "
                       "($2, 'lead@example.org'), ($3, 'office@example.org') ON CONFLICT (unit) DO NOTHING",
                       RU.unit, LEAD.unit, OFFICE.unit)
    env = {
        "TEMPORAL_ADDRESS": client.service_client.config.target_host,
        "TEMPORAL_NAMESPACE": client.namespace,
        "TEMPORAL_TASK_QUEUE": task_queue,
        "DATABASE_URL": own_db,
        "DB_POOL_MAX": "4",
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": str(controller.port),
        "NOTICE_POLL_SECONDS": "1",
        "ARCHIVE_POLL_SECONDS": "1",
        "LOG_LEVEL": "DEBUG",
    }
    workers = [WorkerProcess(f"worker-{i}", env, tmp_path) for i in range(WORKERS)]
    drivers: list[CaseDriver] = []
    try:
        for w in workers:
            await asyncio.to_thread(w.wait_logged, "worker_started", 240.0)
        today = local_date(datetime.now(UTC))
        by_worker: dict[str, set[str]] = {w.identity: set() for w in workers}

        # File cases (in batches) until each of the three workers has run some.
        while len(drivers) < MAX_CASES and not all(by_worker.values()):
            batch = [CaseDriver(client, pool, task_queue, make_filing(due=today + timedelta(days=120)))
                     for _ in range(BATCH)]
            for c in batch:
                assert (await c.file()).filed
            await asyncio.gather(*(c.do(Action.TRANSFER, OFFICE) for c in batch))
            await asyncio.gather(*(c.do(Action.ACKNOWLEDGE, RU) for c in batch))
            for c in batch:
                for ident in await _identities(c):
                    by_worker.setdefault(ident, set()).add(c.case_no)
            drivers += batch
        assert set(by_worker) == {w.identity for w in workers}, f"unknown identities in histories: {by_worker}"
        assert all(by_worker.values()), f"cases per worker: { {k: len(v) for k, v in by_worker.items()} }"

        # Kill the worker that holds the most cases (SIGKILL: no graceful shutdown) once the
        # notices written so far are delivered: a sender killed between the SMTP hand-off and its
        # commit resends that one e-mail with the same Message-ID (activities/notices.py); what is
        # tested here is that live senders never send one notice twice.
        async def delivered_so_far() -> bool:
            return not await pool.fetchval("SELECT count(*) FROM outbox WHERE case_no = ANY($1) "
                                           "AND status <> 'DELIVERED'", [c.case_no for c in drivers])

        await _eventually(delivered_so_far, "the notices written before the kill to be delivered")
        victim = max(workers, key=lambda w: len(by_worker[w.identity]))
        victim.kill()
        survivors = [w for w in workers if w is not victim]

        await asyncio.gather(*(_drive_to_closed(dev_env, c) for c in drivers))
        for c in drivers:
            assert await c.stage() is Stage.CLOSED
        # The killed worker's cases were finished by the others.
        finished_by = set()
        for c in drivers:
            if c.case_no in by_worker[victim.identity]:
                finished_by |= await _identities(c) - {victim.identity}
        assert finished_by and finished_by <= {w.identity for w in survivors}

        # Nothing doubled: each case's ledger is seq 1..n, one row per event of the path.
        for c in drivers:
            events = await c.events()
            seqs = [r["seq"] for r in await c.ledger()]
            assert seqs == list(range(1, len(seqs) + 1))
            counts = Counter(events)
            for once in ("FILED", "TRANSFER", "ACKNOWLEDGE", "SUBMIT_COMPLETION", "PRELIM_PASS",
                         "APPLY_CLOSURE", "VERIFY_PASS", "RECORD_FILING"):
                assert counts[once] == 1, f"{c.case_no}: {once} recorded {counts[once]} times: {events}"

        # Every notice delivered once: to the inbox once, and by e-mail once.
        case_nos = [c.case_no for c in drivers]

        async def all_delivered() -> bool:
            return not await pool.fetchval(
                "SELECT count(*) FROM outbox WHERE case_no = ANY($1) AND status <> 'DELIVERED'", case_nos)

        await _eventually(all_delivered, "every notice delivered")
        notices = await pool.fetchval("SELECT count(*) FROM outbox WHERE case_no = ANY($1)", case_nos)
        assert notices > 0
        assert await pool.fetchval("SELECT count(*) FROM inbox WHERE case_no = ANY($1)", case_nos) == notices
        keys = Counter(m["X-Notice-Key"] for m in smtp.messages)
        emailed = await pool.fetchval(
            "SELECT count(*) FROM outbox WHERE case_no = ANY($1) AND email_sent_at IS NOT NULL", case_nos)
        assert emailed > 0 and len(keys) == emailed
        assert max(keys.values()) == 1, f"e-mails sent more than once: {[k for k, n in keys.items() if n > 1]}"

        # One archiver pass at a time: while the lock is held elsewhere every worker's pass
        # steps aside; released, each ended run is archived exactly once.
        lock = await asyncpg.connect(own_db)
        try:
            async def took_lock() -> bool:  # a worker's pass may hold it for a moment: wait for a gap
                return bool(await lock.fetchval("SELECT pg_try_advisory_lock($1)", _LOCK_ID))

            await _eventually(took_lock, "the archiver lock free between two passes")
            for c in drivers:
                await client.get_workflow_handle(case_workflow_id(c.case_no)).terminate("multi-worker test done")
            marks = {w.name: len(w.lines()) for w in survivors}

            async def all_stepped_aside() -> bool:
                return all(any(line.get("event") == "archive_pass_skipped" for line in w.lines()[marks[w.name]:])
                           for w in survivors)

            await _eventually(all_stepped_aside, "both surviving archivers to find the lock taken")
            assert await pool.fetchval("SELECT count(*) FROM history_archive WHERE case_no = ANY($1)", case_nos) == 0
        finally:
            await lock.execute("SELECT pg_advisory_unlock($1)", _LOCK_ID)
            await lock.close()

        async def all_archived() -> bool:
            n = await pool.fetchval("SELECT count(DISTINCT case_no) FROM history_archive WHERE case_no = ANY($1)",
                                    case_nos)
            return n == len(case_nos)

        await _eventually(all_archived, "every ended run archived")
        per_run = await pool.fetch("SELECT case_no, count(*) AS n FROM history_archive WHERE case_no = ANY($1) "
                                   "GROUP BY case_no", case_nos)
        assert all(r["n"] == 1 for r in per_run)
    finally:
        for w in workers:
            w.stop()
        await pool.close()
        controller.stop()
