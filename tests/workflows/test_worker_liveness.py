"""A worker is whole or gone (issue 9): a workflow task stalled past the SDK's deadlock timeout
makes the worker process exit non-zero with the reason; restarted, it completes the stalled run
and new cases move."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from datetime import date, timedelta
from pathlib import Path

import asyncpg
import pytest
from temporalio.client import Client

from domain.enums import Action, Stage
from embedded import find_free_port
from tests.harness import OFFICE, CaseDriver, make_filing, start_dev_env
from worker import EXIT_WORKER_FAILED
from worker_health import WorkerHealth, serve_health

ROOT = Path(__file__).resolve().parents[2]


def _spawn(env: dict[str, str], marker: Path, log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.workflows.stall_worker", str(marker)],
        cwd=ROOT, env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT,
    )


async def _wait_for(log: Path, text: str, proc: subprocess.Popen[bytes], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if text in log.read_text(errors="replace"):
            return
        if proc.poll() is not None:
            break
        await asyncio.sleep(0.3)
    raise AssertionError(f"{text!r} not seen:\n{log.read_text(errors='replace')[-4000:]}")


async def _exit_code(proc: subprocess.Popen[bytes], timeout: float = 180) -> int:
    deadline = time.monotonic() + timeout
    while proc.poll() is None and time.monotonic() < deadline:
        await asyncio.sleep(0.3)
    if proc.poll() is None:
        proc.kill()
        raise AssertionError("worker process did not exit")
    return proc.returncode


async def _get(port: int, path: str) -> tuple[int, dict]:
    r, w = await asyncio.open_connection("127.0.0.1", port)
    w.write(f"GET {path} HTTP/1.0\r\nHost: x\r\n\r\n".encode())
    await w.drain()
    raw = await r.read()
    w.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body)


@pytest.mark.devserver
async def test_a_stalled_workflow_task_makes_the_worker_exit_non_zero_and_a_restart_recovers(
    pool: asyncpg.Pool, database_url: str, task_queue: str, tmp_path: Path,
) -> None:
    """On the dev server (the Java test server does not hand a failed task of a dead worker's
    sticky queue back to the normal queue)."""
    dev = await start_dev_env()
    try:
        await _stall_then_restart(dev.client, pool, database_url, task_queue, tmp_path)
    finally:
        await dev.shutdown()


async def _stall_then_restart(
    ts_client: Client, pool: asyncpg.Pool, database_url: str, task_queue: str, tmp_path: Path
) -> None:
    stall_tq = f"stall-{uuid.uuid4().hex[:8]}"
    health_port = find_free_port()
    env = {
        **os.environ,
        "TEMPORAL_ADDRESS": ts_client.service_client.config.target_host,
        "DATABASE_URL": database_url,
        "TEMPORAL_TASK_QUEUE": task_queue,
        "STALL_TASK_QUEUE": stall_tq,
        "ARCHIVE_POLL_SECONDS": "0",
        "WORKER_HEALTH_PORT": str(health_port),
        # The activation blocks 40 s; the worker gives the SDK 5 s to evict it (default 60 s).
        "STALL_SECONDS": "40",
        "WORKER_EVICTION_GRACE_SECONDS": "5",
        "PYTHONPATH": str(ROOT),
    }
    marker, log = tmp_path / "stalled", tmp_path / "worker.log"
    first = _spawn(env, marker, log)
    try:
        await _wait_for(log, "worker_started", first)
        status, body = await _get(health_port, "/healthz")
        assert status == 200 and body["status"] == "ok"
        assert body["parts"][f"temporal-worker:{task_queue}"] == "running"

        stalled = await ts_client.start_workflow("StallWorkflow", id=f"stall-{uuid.uuid4().hex[:8]}", task_queue=stall_tq)
        assert await _exit_code(first) == EXIT_WORKER_FAILED
    finally:
        if first.poll() is None:
            first.kill()
    out = log.read_text(errors="replace")
    assert "TMPRL1101" in out  # the SDK's deadlock detector fired
    assert "worker_failed" in out and "cannot evict a workflow run" in out  # and we said why we stop

    second = _spawn(env, marker, log)
    try:
        await _wait_for(log, "worker_started", second)
        try:
            assert await asyncio.wait_for(stalled.result(), 120) == "done"  # the stalled run completes
        except TimeoutError:
            raise AssertionError(log.read_text(errors="replace")[-6000:]) from None
        case = CaseDriver(ts_client, pool, task_queue, make_filing(due=date.today() + timedelta(days=90)))
        await case.file()
        result = await case.do(Action.TRANSFER, OFFICE)
        assert result.stage is Stage.TRANSFERRED
        second.send_signal(signal.SIGTERM)
        assert await _exit_code(second) == 0
    finally:
        if second.poll() is None:
            second.kill()


async def test_healthz_says_failed_with_the_reason_while_the_process_lasts() -> None:
    health = WorkerHealth()
    health.running("notice-sender")
    port = find_free_port()
    server = await serve_health(health, "127.0.0.1", port)
    try:
        assert (await _get(port, "/healthz"))[0] == 200
        health.fail("notice-sender", "ended while the worker should run")
        status, body = await _get(port, "/healthz")
        assert status == 503
        assert body["failure"] == "notice-sender: ended while the worker should run"
        assert (await _get(port, "/nope"))[0] == 404
    finally:
        server.close()
