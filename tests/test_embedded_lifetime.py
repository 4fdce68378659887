"""Embedded servers never outlive the process that started them (issue 11).

A child process starts PostgreSQL and the Temporal dev server on persistent data and is killed
with SIGKILL: started from its main thread, both servers die with it (PR_SET_PDEATHSIG); started
from another thread (no parent-death signal possible), they survive the kill but the next start
finds them by their pid files and stops them. Either way the next start is clean, on the same data.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import asyncpg
import pytest

from embedded import DevServer, EmbeddedPostgres, find_free_port
from embedded.procs import pid_alive

ROOT = Path(__file__).resolve().parents[1]

_CHILD = textwrap.dedent(
    """
    import asyncio, json, sys, threading, time
    from pathlib import Path
    from embedded import DevServer, EmbeddedPostgres

    data, pg_port, t_port, in_thread = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4] == "1"

    async def start():
        pg = EmbeddedPostgres(data / "pg", pg_port)  # durable, as `make run`
        url = await pg.start() if not in_thread else await asyncio.to_thread(pg.start_sync)
        dev = DevServer(data / "temporal.db", port=t_port, headless=True)
        await dev.start()
        import asyncpg
        conn = await asyncpg.connect(url)
        await conn.execute("CREATE TABLE IF NOT EXISTS kept (n int); INSERT INTO kept VALUES (42)")
        await conn.close()
        print(json.dumps({"pg": pg._postmaster_pid, "temporal": dev.pid}), flush=True)

    def main():
        if in_thread:
            # Started from a helper thread (that then ends): no parent-death signal is possible.
            t = threading.Thread(target=lambda: asyncio.run(start()))
            t.start(); t.join()
        else:
            asyncio.run(start())
        time.sleep(3600)

    main()
    """
)


def _start_child(data: Path, pg_port: int, t_port: int, in_thread: bool) -> tuple[subprocess.Popen[str], dict[str, int]]:
    proc = subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(data), str(pg_port), str(t_port), "1" if in_thread else "0"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line:
        proc.kill()
        raise AssertionError("child did not start its servers")
    return proc, json.loads(line)


def _wait_gone(pids: list[int], timeout: float = 30.0) -> list[int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(pid_alive(p) for p in pids):
        time.sleep(0.1)
    return [p for p in pids if pid_alive(p)]


async def _restart_on_same_data(data: Path, pg_port: int, t_port: int) -> None:
    async with EmbeddedPostgres(data / "pg", pg_port) as pg:
        conn = await asyncpg.connect(pg.url)
        try:
            assert await conn.fetchval("SELECT n FROM kept") == 42, "the data survived"
        finally:
            await conn.close()
        dev = DevServer(data / "temporal.db", port=t_port, headless=True)
        await dev.start()
        await dev.stop()


@pytest.mark.devserver
async def test_servers_die_with_a_killed_parent_and_the_next_start_is_clean(tmp_path: Path) -> None:
    pg_port, t_port = find_free_port(), find_free_port()
    proc, pids = _start_child(tmp_path, pg_port, t_port, in_thread=False)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    assert _wait_gone([pids["pg"], pids["temporal"]]) == [], "PostgreSQL and Temporal died with their parent"
    await _restart_on_same_data(tmp_path, pg_port, t_port)


@pytest.mark.devserver
async def test_servers_started_off_the_main_thread_are_stopped_by_pid_file_on_the_next_start(tmp_path: Path) -> None:
    pg_port, t_port = find_free_port(), find_free_port()
    proc, pids = _start_child(tmp_path, pg_port, t_port, in_thread=True)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    try:
        time.sleep(1)
        assert pid_alive(pids["pg"]) and pid_alive(pids["temporal"]), "orphans (no parent-death signal here)"
        assert (tmp_path / "temporal.db.pid").exists()
        await _restart_on_same_data(tmp_path, pg_port, t_port)  # would fail on the taken ports
        assert _wait_gone([pids["pg"], pids["temporal"]], timeout=5) == [], "the leftovers were stopped"
    finally:
        for pid in pids.values():
            if pid_alive(pid):
                os.kill(pid, signal.SIGKILL)


def test_the_guardian_kills_what_a_killed_test_run_left_running() -> None:
    """tests/conftest.py starts a guardian: servers the SDK spawns die with a killed test run too."""
    child = textwrap.dedent(
        """
        import subprocess, sys, time
        from embedded.guardian import start_guardian
        start_guardian()
        # Like the SDK's test server: its own session, no parent-death signal.
        p = subprocess.Popen(["sleep", "3600"], start_new_session=True)
        print(p.pid, flush=True)
        time.sleep(3600)
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", child], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    server = int(proc.stdout.readline())
    time.sleep(3)  # the guardian snapshots descendants twice a second
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    assert _wait_gone([server], timeout=15) == [], "the guardian killed the leftover"
