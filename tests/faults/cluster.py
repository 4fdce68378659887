"""A whole engine made of real parts, each of which a fault test can kill, stop or restart.

PostgreSQL (embedded, persistent data dir), the Temporal dev server (persistent SQLite file),
a local SMTP relay (aiosmtpd) that may be started late, and worker processes (`python worker.py`,
each a separate process so it can be `kill -9`ed) on the test's own task queue.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import uuid
from email import message_from_bytes
from email.policy import default as default_policy
from pathlib import Path

import asyncpg
from aiosmtpd.controller import Controller
from temporalio.client import Client

from activities.migrate import migrate
from config import Settings, connect_client
from embedded import DevServer, EmbeddedPostgres, find_free_port
from workflows.contracts import SEARCH_ATTRIBUTES

ROOT = Path(__file__).resolve().parents[2]


class SmtpRelay:
    """A real local SMTP server that records every message (by X-Notice-Key)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.messages: list[tuple[str, str]] = []  # (notice key, Message-ID)
        self._controller: Controller | None = None

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd API
        msg = message_from_bytes(envelope.content, policy=default_policy)
        self.messages.append((str(msg["X-Notice-Key"]), str(msg["Message-ID"])))
        return "250 OK"

    def start(self) -> None:
        self._controller = Controller(self, hostname="127.0.0.1", port=self.port)
        self._controller.start()

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None


class Cluster:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.pg = EmbeddedPostgres(root / "pg", find_free_port())
        self.temporal = DevServer(root / "temporal.db", port=find_free_port(), headless=True,
                                  search_attributes=SEARCH_ATTRIBUTES)
        self.smtp = SmtpRelay(find_free_port())
        self.task_queue = f"faults-{uuid.uuid4().hex[:8]}"
        self.workers: list[subprocess.Popen[bytes]] = []
        self.pool: asyncpg.Pool | None = None
        self.client: Client | None = None
        self._logs: list[Path] = []

    @property
    def settings(self) -> Settings:
        return Settings(temporal_address=self.temporal.address, database_url=self.pg.url,
                        task_queue=self.task_queue)

    async def start(self, *, smtp: bool = True) -> None:
        await self.pg.start()
        await self.temporal.start()
        conn = await asyncpg.connect(self.pg.url)
        try:
            await migrate(conn)
        finally:
            await conn.close()
        if smtp:
            self.smtp.start()
        self.pool = await asyncpg.create_pool(self.pg.url, min_size=1, max_size=10)
        self.client = await connect_client(self.settings, identity="fault-driver")
        self.start_worker()

    async def set_unit_emails(self, units: list[str]) -> None:
        assert self.pool is not None
        await self.pool.executemany(
            "INSERT INTO unit_directory (unit, email) VALUES ($1, $2) ON CONFLICT (unit) DO UPDATE SET email = $2",
            [(u, f"unit{i}@example.org") for i, u in enumerate(units)],
        )

    def start_worker(self) -> subprocess.Popen[bytes]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PG", "SMTP_", "TEMPORAL_"))}
        env.update(
            TEMPORAL_ADDRESS=self.temporal.address, DATABASE_URL=self.pg.url, TEMPORAL_TASK_QUEUE=self.task_queue,
            SMTP_HOST="127.0.0.1", SMTP_PORT=str(self.smtp.port), NOTICE_POLL_SECONDS="1",
            NOTICE_RETRY_MAX_SECONDS="4", ARCHIVE_POLL_SECONDS="0", LOG_LEVEL="WARNING",
        )
        log = self.root / f"worker{len(self._logs) + 1}.log"
        self._logs.append(log)
        with log.open("ab") as fh:
            proc = subprocess.Popen([sys.executable, "worker.py"], cwd=ROOT, env=env, stdin=subprocess.DEVNULL,
                                    stdout=fh, stderr=subprocess.STDOUT)
        self.workers.append(proc)
        return proc

    def kill_workers(self) -> int:
        """`kill -9` every running worker process; returns how many were killed."""
        n = 0
        for w in self.workers:
            if w.poll() is None:
                os.kill(w.pid, signal.SIGKILL)
                w.wait(timeout=30)
                n += 1
        return n

    def worker_logs(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}" for p in self._logs)

    async def stop(self) -> None:
        for w in self.workers:
            if w.poll() is None:
                w.send_signal(signal.SIGTERM)
        for w in self.workers:
            try:
                await asyncio.to_thread(w.wait, 20)
            except subprocess.TimeoutExpired:
                w.kill()
        if self.pool is not None:
            await self.pool.close()
        self.smtp.stop()
        await self.temporal.stop()
        await self.pg.stop()
