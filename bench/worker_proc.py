"""The worker process of the bench: the engine's worker exactly as `worker.py` runs it
(`worker.run_worker`: case workflows + activities + notice sender + history archiver), plus
the floor worker on its own task queue.

Run by bench/infra.py as a subprocess so its RSS and CPU are its own and py-spy can attach:
    python -m bench.worker_proc      (settings from the environment, like worker.py)
BENCH_WORKER_SYSTEM=engine|minimal|floor runs only that system's worker instead (bench/cost.py: each
system in a process of its own, so its CPU and peak RSS are its own).
Prints "READY <pid>" once both workers poll; stops on SIGTERM/SIGINT.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from datetime import timedelta

from temporalio.client import Client
from temporalio.worker import Worker

import worker
from bench.floor import FLOOR_TASK_QUEUE, FloorWorkflow, floor_noop
from config import Settings
from worker import configure_logging


def _baseline_runner() -> None:
    """BENCH_BASELINE=no-passthrough: the sandbox without our passthrough list (the lever off),
    so the bench can show the worker before and after it. Nothing else changes."""
    if "no-passthrough" in os.environ.get("BENCH_BASELINE", ""):
        from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner

        worker.sandbox_runner = SandboxedWorkflowRunner  # default restrictions


async def _floor_only(settings: Settings, system: str, stop: asyncio.Event) -> None:
    """Only the minimal or the history-shaped floor's worker, with the engine's runner and sizing."""
    import asyncpg

    from bench.minimal import CREATE_TABLE, MINIMAL_TASK_QUEUE, MinimalActivities, MinimalWorkflow
    from config import connect_client

    pool = await asyncpg.create_pool(settings.database_url, min_size=1, max_size=settings.db_pool_max)
    try:
        await pool.execute(CREATE_TABLE)
        client = await connect_client(settings, identity=f"bench-{system}@{os.getpid()}")
        if system == "minimal":
            kw = dict(task_queue=MINIMAL_TASK_QUEUE, workflows=[MinimalWorkflow],
                      activities=[MinimalActivities(pool).record])
        else:
            kw = dict(task_queue=FLOOR_TASK_QUEUE, workflows=[FloorWorkflow], activities=[floor_noop])
        w = Worker(client, workflow_runner=worker.sandbox_runner(), graceful_shutdown_timeout=timedelta(seconds=5),
                   **kw, **worker.worker_tuning(settings))  # type: ignore[arg-type]
        async with w:
            print(f"READY {os.getpid()}", flush=True)
            await stop.wait()
    finally:
        await pool.close()


async def main() -> int:
    _baseline_runner()
    settings = Settings.from_env()
    configure_logging(settings.log_level, settings.log_json)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    system = os.environ.get("BENCH_WORKER_SYSTEM", "")  # "": engine + floor; "engine": engine alone
    if system in ("minimal", "floor"):
        await _floor_only(settings, system, stop)
        return 0

    def floor(client: Client) -> list[Worker]:
        return [Worker(
            client,
            task_queue=FLOOR_TASK_QUEUE,
            workflows=[FloorWorkflow],
            activities=[floor_noop],
            workflow_runner=worker.sandbox_runner(),  # same runner as the case worker
            graceful_shutdown_timeout=timedelta(seconds=5),
            **worker.worker_tuning(settings),  # type: ignore[arg-type]
        )]

    await worker.run_worker(settings, stop, extra_workers=None if system == "engine" else floor,
                            on_ready=lambda: print(f"READY {os.getpid()}", flush=True))
    return 0


if __name__ == "__main__":
    status = asyncio.run(main())
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)  # sdk-python#300
