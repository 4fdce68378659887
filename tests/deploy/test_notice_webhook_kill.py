"""A notice sender process killed (SIGKILL) while its webhook POST is in flight: the next sender
re-posts at most that one notice, with the same Idempotency-Key and the same signed body; every
other notice reaches the receiver exactly once."""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path

import asyncpg
from temporalio.testing import ActivityEnvironment

from activities.case_activities import CaseActivities
from domain.notice_channels import idempotency_key
from embedded import find_free_port
from tests.deploy.procs import WorkerProcess
from tests.integration.test_store_and_notices import _record_input
from tests.integration.webhook_receiver import Receiver

SECRET = "kill-test-secret-0123456789"
N = 5


async def _wait(check, what: str, proc: WorkerProcess, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}:\n{proc.tail()}"
        assert proc.proc.poll() is None, proc.tail()
        await asyncio.sleep(0.1)


async def test_a_sender_killed_mid_post_reposts_only_the_one_in_flight(
    database_url: str, pool: asyncpg.Pool, tmp_path: Path
) -> None:
    rx = Receiver(find_free_port(), hang_on=3).start()  # the third POST hangs until released
    unit = f"信息机器人县-{uuid.uuid4().hex[:6]}"
    await pool.execute("INSERT INTO unit_webhook (unit, url, secret, timeout_seconds) VALUES ($1, $2, $3, 60)",
                       unit, rx.url, SECRET)
    inp = _record_input()
    inp = inp.model_copy(update={"notices": [inp.notices[0].model_copy(update={"recipient_unit": unit})]})
    await ActivityEnvironment().run(CaseActivities(pool).record_case_events, inp)
    keys = [inp.notices[0].key]
    for i in range(1, N):
        keys.append(f"{keys[0]}#{i}")
        await pool.execute(
            """INSERT INTO outbox (notice_key, case_no, seq, recipient_unit, recipient_role, subject, body)
               VALUES ($1, $2, $3, $4, 'RESPONSIBLE_UNIT', '督办通知', '请按时整改')""",
            keys[-1], inp.projection.case_no, inp.notices[0].seq, unit)
    env = {"DATABASE_URL": database_url, "NOTICE_POLL_SECONDS": "1", "NOTICE_RETRY_MAX_SECONDS": "1"}
    first = WorkerProcess("sender-1", env, tmp_path, args=["-m", "ops.notice_sender"])
    second = None
    try:
        async def third_in_flight() -> bool:
            return len(rx.requests) >= 3

        await _wait(third_in_flight, "the third POST", first)
        first.kill()  # SIGKILL while the third POST waits for its answer
        rx.release.set()
        in_flight = rx.requests[2]
        assert len(rx.requests) == 3
        sent = await pool.fetchval("SELECT count(*) FROM outbox WHERE notice_key = ANY($1::text[]) "
                                   "AND webhook_sent_at IS NOT NULL", keys)
        assert sent == 2  # the two answered before the kill were committed

        second = WorkerProcess("sender-2", env, tmp_path, args=["-m", "ops.notice_sender"])

        async def all_delivered() -> bool:
            return await pool.fetchval("SELECT count(*) FROM outbox WHERE notice_key = ANY($1::text[]) "
                                       "AND status = 'DELIVERED'", keys) == N

        await _wait(all_delivered, "every notice delivered", second)
        await asyncio.sleep(1.5)  # a further poll posts nothing more
    finally:
        if second is not None:
            assert second.stop() == 0, second.tail()
        rx.stop()
        await pool.execute("DELETE FROM unit_webhook WHERE unit = $1", unit)
    counts = rx.counts()
    assert counts[in_flight.key] == 2, counts
    assert all(counts[idempotency_key(k)] == 1 for k in keys if idempotency_key(k) != in_flight.key), counts
    assert sum(counts.values()) == N + 1
    again = [r for r in rx.requests if r.key == in_flight.key]
    assert again[0].body == again[1].body and all(r.signed_by(SECRET) for r in again)
    assert {r.json["notice_key"] for r in rx.requests} == set(keys)
