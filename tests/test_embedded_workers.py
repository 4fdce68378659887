"""`make run`'s extra worker processes (embedded/workers.py): restarted when one exits, stopped
with the run, never outliving it, a leftover of an earlier run stopped at the next start.

The supervision is real (processes, signals, pid files); the children run a stand-in command
(a sleeping Python) so these tests need no Temporal server. tests/e2e/test_run_command.py runs
`make run` itself with two worker processes.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from embedded.procs import pid_alive, write_pid_file
from embedded.workers import WorkerChildren

ROOT = Path(__file__).resolve().parents[1]
SLEEPER = [sys.executable, "-c", "import time; time.sleep(600)"]


async def _until(cond, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def test_a_child_that_exits_is_started_again_and_stop_ends_every_child(tmp_path: Path) -> None:
    env = dict(os.environ, METRICS_BIND="127.0.0.1:9464", HEALTH_BIND="0.0.0.0:8081")
    children = WorkerChildren(2, tmp_path, command=SLEEPER, env=env)
    # Worker i (the run's own is 1) serves on the run's ports + i - 1.
    assert children.endpoints(2) == {"METRICS_BIND": "127.0.0.1:9465", "HEALTH_BIND": "0.0.0.0:8082"}
    assert children.env_of(3)["HEALTH_BIND"] == "0.0.0.0:8083"
    await children.start()
    try:
        first = children.pids
        assert len(first) == 2 and all(pid_alive(p) for p in first)
        assert sorted(int(tmp_path.joinpath(f"worker-{i}.pid").read_text().split()[0]) for i in (2, 3)) == sorted(first)
        os.kill(first[0], signal.SIGKILL)
        await _until(lambda: children.restarts == 1 and len(children.pids) == 2, timeout=15)
        again = children.pids
        assert first[0] not in again and first[1] in again
    finally:
        await children.stop(timeout=5)
    assert all(not pid_alive(p) for p in [*first, *again])
    assert not list(tmp_path.glob("worker-*.pid"))


async def test_no_child_is_started_for_one_worker_process(tmp_path: Path) -> None:
    children = WorkerChildren(0, tmp_path, command=SLEEPER)
    await children.start()
    assert children.pids == []
    await children.stop()
    with pytest.raises(ValueError, match="-1"):
        WorkerChildren(-1, tmp_path)


_PARENT = textwrap.dedent(
    """
    import asyncio, json, sys
    from pathlib import Path
    from embedded.workers import WorkerChildren

    async def main():
        children = WorkerChildren(2, Path(sys.argv[1]), command=json.loads(sys.argv[2]))
        await children.start()
        print("PIDS", json.dumps(children.pids), flush=True)
        await asyncio.sleep(600)

    asyncio.run(main())
    """
)


def test_children_die_with_a_parent_killed_by_sigkill(tmp_path: Path) -> None:
    parent = subprocess.Popen([sys.executable, "-c", _PARENT, str(tmp_path), json.dumps(SLEEPER)], cwd=ROOT,
                              stdout=subprocess.PIPE)
    try:
        assert parent.stdout is not None
        line = b""
        while not line.startswith(b"PIDS "):  # the supervisor's own log lines come first
            line = parent.stdout.readline()
            assert line, "the parent ended before starting its children"
        pids = json.loads(line[5:])
        assert len(pids) == 2 and all(pid_alive(p) for p in pids)
    finally:
        parent.kill()
        parent.wait()
    deadline = time.monotonic() + 10
    while any(pid_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(pid_alive(p) for p in pids), "a worker child outlived its killed parent"


async def test_a_leftover_child_of_an_earlier_run_is_stopped_at_the_next_start(tmp_path: Path) -> None:
    # Started without a parent-death signal (as from a helper thread), recorded like a child.
    leftover = subprocess.Popen(SLEEPER, stdout=subprocess.DEVNULL)
    write_pid_file(tmp_path / "worker-2.pid", leftover.pid)
    children = WorkerChildren(1, tmp_path, command=SLEEPER)
    await children.start()
    try:
        assert leftover.wait(timeout=15) is not None
        assert children.pids and children.pids[0] != leftover.pid
    finally:
        await children.stop(timeout=5)


def test_a_bind_with_no_usable_port_is_not_passed_to_a_child(tmp_path: Path) -> None:
    from embedded.workers import shifted_bind

    assert shifted_bind("[::1]:8081", 2) == "[::1]:8083"
    assert shifted_bind("localhost", 1) is None and shifted_bind("h:65535", 1) is None
    assert shifted_bind("127.0.0.1:0", 3) == "127.0.0.1:0"  # any free port, each its own
    children = WorkerChildren(1, tmp_path, command=SLEEPER, env={"HEALTH_BIND": "nohost", "PATH": "/usr/bin"})
    assert "HEALTH_BIND" not in children.env_of(2) and children.endpoints(2) == {}
