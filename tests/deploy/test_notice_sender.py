"""`python -m ops.notice_sender` as its own process: delivers outbox notices once, answers probes,
stops cleanly on SIGTERM (the workers then run with NOTICE_SENDER=false)."""

from __future__ import annotations

import asyncio
import email
import email.policy
import time
import uuid
from pathlib import Path

import asyncpg
import httpx
from aiosmtpd.controller import Controller
from temporalio.testing import ActivityEnvironment

from activities.case_activities import CaseActivities
from embedded import find_free_port
from tests.deploy.procs import WorkerProcess
from tests.integration.test_store_and_notices import _record_input


class _Smtp:
    def __init__(self) -> None:
        self.messages: list[email.message.Message] = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd API
        self.messages.append(email.message_from_bytes(envelope.content, policy=email.policy.default))
        return "250 OK"


async def test_the_standalone_notice_sender_delivers_each_notice_once(
    database_url: str, pool: asyncpg.Pool, tmp_path: Path
) -> None:
    smtp = _Smtp()
    controller = Controller(smtp, hostname="127.0.0.1", port=find_free_port())
    controller.start()
    unit = f"测试县-{uuid.uuid4().hex[:6]}"
    case_no = f"NS-{uuid.uuid4().hex[:8]}"
    await pool.execute("INSERT INTO unit_directory (unit, email) VALUES ($1, 'unit@example.org')", unit)
    # A filed and transferred case written as the record activity writes it (ledger, outbox),
    # its notices addressed to a unit of this test only.
    inp = _record_input(case_no)
    inp = inp.model_copy(update={"notices": [n.model_copy(update={"recipient_unit": unit}) for n in inp.notices]})
    assert inp.notices
    await ActivityEnvironment().run(CaseActivities(pool).record_case_events, inp)
    keys = [n.key for n in inp.notices]
    health = find_free_port()
    proc = WorkerProcess("notice-sender", {
        "DATABASE_URL": database_url, "SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(controller.port),
        "NOTICE_POLL_SECONDS": "1", "HEALTH_BIND": f"127.0.0.1:{health}",
    }, tmp_path, args=["-m", "ops.notice_sender"])
    try:
        deadline = time.monotonic() + 60
        while await pool.fetchval("SELECT count(*) FROM outbox WHERE case_no = $1 AND status = 'DELIVERED'",
                                  case_no) < len(keys):
            assert time.monotonic() < deadline, proc.tail()
            assert proc.proc.poll() is None, proc.tail()
            await asyncio.sleep(0.2)
        async with httpx.AsyncClient(timeout=10) as http:
            r = await http.get(f"http://127.0.0.1:{health}/readyz")
            assert r.status_code == 200 and r.json()["checks"] == {"sender": "ok", "postgres": "ok"}
        assert sorted(m["X-Notice-Key"] for m in smtp.messages if m["X-Notice-Key"] in keys) == sorted(keys)
        assert await pool.fetchval("SELECT count(*) FROM inbox WHERE case_no = $1", case_no) == len(keys)
    finally:
        assert proc.stop() == 0, proc.tail()
        controller.stop()
    assert proc.has_logged("notice_sender_stopped")
