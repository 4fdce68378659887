"""More worker processes beside `make run`'s own (`WORKER_PROCESSES`; README "Sizing a worker").

One worker process runs its Python on one core at a time (the GIL). A burst of deadlines on cases
the cache evicted is paced by the worker rebuilding them (bench/README.md, "The sandbox's cost
per payload"), so `make run` starts one worker process per core by default (at most 4): its own, plus
`WORKER_PROCESSES - 1` children running `python worker.py` on the same task queues, each with
its own cache (how a deployment adds workers; deploy/README.md). The children:

- die with `make run`, even after a `kill -9` of it (PR_SET_PDEATHSIG, as the embedded servers;
  `embedded.procs`), and each is recorded in a pid file so the next start stops a leftover;
- are started again when one exits: a worker exits non-zero when any part of it fails
  (worker_health.py), and here its supervisor is `make run`. The restart waits 1 s, doubling up
  to 60 s while a child keeps failing within a minute of its start; each exit is logged
  (`worker_process_exited`, with the exit code);
- get `make run`'s environment, with `METRICS_BIND` and `HEALTH_BIND` moved to the next ports:
  worker i (the run's own is worker 1) serves them on the run's port + i - 1, so a supervisor or
  a scraper sees every process (`make run` prints them). A bind that names no port is not
  passed on: that child then serves none.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import structlog

from embedded.procs import die_with_parent, stop_leftover, write_pid_file

ROOT = Path(__file__).resolve().parents[1]
WORKER_COMMAND: tuple[str, ...] = (sys.executable, str(ROOT / "worker.py"))
_PER_CHILD = ("METRICS_BIND", "HEALTH_BIND")
RESTART_FIRST_SECONDS = 1.0
RESTART_MAX_SECONDS = 60.0
HEALTHY_AFTER_SECONDS = 60.0  # a child that ran this long resets the restart delay

log = structlog.get_logger("run.workers")


def shifted_bind(bind: str, offset: int) -> str | None:
    """`host:port` with the port moved by `offset` (None when `bind` has no usable port; port 0,
    any free port, is kept: each process then gets its own)."""
    host, sep, port = bind.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) + offset < 65536:
        return None
    if int(port) == 0:
        return bind
    return f"{host}:{int(port) + offset}"


class WorkerChildren:
    """`count` child worker processes, kept running until `stop()`."""

    def __init__(self, count: int, data_dir: Path, command: Sequence[str] = WORKER_COMMAND,
                 env: dict[str, str] | None = None) -> None:
        if count < 0:
            raise ValueError(f"worker children: {count} is not a number of processes")
        self.count = count
        self.data_dir = data_dir
        self.command = list(command)
        base = dict(os.environ if env is None else env)
        self.env = {k: v for k, v in base.items() if k not in _PER_CHILD}
        self._binds = {k: base[k] for k in _PER_CHILD if base.get(k)}
        self.procs: dict[int, asyncio.subprocess.Process] = {}
        self.restarts = 0
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = False

    def pid_file(self, i: int) -> Path:
        return self.data_dir / f"worker-{i}.pid"

    def env_of(self, i: int) -> dict[str, str]:
        """Worker i's environment: the run's, its binds moved by i - 1 ports."""
        env = dict(self.env)
        for k, bind in self._binds.items():
            moved = shifted_bind(bind, i - 1)
            if moved:
                env[k] = moved
        return env

    def endpoints(self, i: int) -> dict[str, str]:
        """What worker i serves: {"METRICS_BIND": "host:port", ...} (empty when nothing); worker 1
        is the run's own process, which reads the same environment."""
        env = self.env_of(i)
        return {k: env[k] for k in _PER_CHILD if k in env}

    @property
    def pids(self) -> list[int]:
        return [p.pid for _, p in sorted(self.procs.items()) if p.returncode is None]

    async def start(self) -> None:
        for i in range(2, self.count + 2):  # worker 1 is make run's own
            # A child of an earlier run that outlived it (started off the main thread, no
            # parent-death signal) is stopped first.
            stop_leftover(self.pid_file(i), "worker process", group=False)
        for i in range(2, self.count + 2):
            await self._spawn(i)
            self._tasks.append(asyncio.create_task(self._supervise(i), name=f"worker-{i}"))

    async def _spawn(self, i: int) -> None:
        proc = await asyncio.create_subprocess_exec(
            *self.command, cwd=ROOT, env=self.env_of(i), stdin=asyncio.subprocess.DEVNULL,
            preexec_fn=die_with_parent(),
        )
        self.procs[i] = proc
        write_pid_file(self.pid_file(i), proc.pid)
        log.info("worker_process_started", worker=i, pid=proc.pid,
                 **{k.lower(): v for k, v in self.endpoints(i).items()})

    async def _supervise(self, i: int) -> None:
        delay = RESTART_FIRST_SECONDS
        while True:
            proc = self.procs[i]
            started = time.monotonic()
            code = await proc.wait()
            if self._stopping:
                return
            ran = time.monotonic() - started
            if ran >= HEALTHY_AFTER_SECONDS:
                delay = RESTART_FIRST_SECONDS
            log.warning("worker_process_exited", worker=i, pid=proc.pid, exit_code=code,
                        ran_seconds=round(ran, 1), restart_in_seconds=delay)
            await asyncio.sleep(delay)
            if self._stopping:
                return
            delay = min(delay * 2, RESTART_MAX_SECONDS)
            self.restarts += 1
            while not self._stopping:
                try:
                    await self._spawn(i)
                    break
                except OSError as e:  # e.g. out of processes: logged, tried again later
                    log.error("worker_process_start_failed", worker=i, error=str(e), retry_in_seconds=delay)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, RESTART_MAX_SECONDS)
            if self._stopping:
                return

    async def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM to every child (a worker then shuts down gracefully), SIGKILL after `timeout`."""
        self._stopping = True
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t
        for proc in self.procs.values():
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(signal.SIGTERM)
        waits = [p.wait() for p in self.procs.values() if p.returncode is None]
        try:
            await asyncio.wait_for(asyncio.gather(*waits), timeout)
        except TimeoutError:
            for proc in self.procs.values():
                if proc.returncode is None:
                    log.warning("worker_process_killed", pid=proc.pid, after_seconds=timeout)
                    with contextlib.suppress(ProcessLookupError):
                        proc.kill()
            await asyncio.gather(*(p.wait() for p in self.procs.values()))
        for i in self.procs:  # every child has been waited for: nothing left to find next time
            self.pid_file(i).unlink(missing_ok=True)
