"""The worker process of the bench: the engine's worker exactly as `worker.py` runs it
(`worker.run_worker`: case workflows + activities + notice sender + history archiver), plus
the floor worker on its own task queue.

Run by bench/infra.py as a subprocess so its RSS and CPU are its own and py-spy can attach:
    python -m bench.worker_proc      (settings from the environment, like worker.py)
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


async def main() -> int:
    _baseline_runner()
    settings = Settings.from_env()
    configure_logging(settings.log_level, settings.log_json)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)

    def floor(client: Client) -> list[Worker]:
        return [Worker(
            client,
            task_queue=FLOOR_TASK_QUEUE,
            workflows=[FloorWorkflow],
            activities=[floor_noop],
            workflow_runner=worker.sandbox_runner(),  # same runner as the case worker
            max_cached_workflows=settings.max_cached_workflows,
            graceful_shutdown_timeout=timedelta(seconds=5),
        )]

    await worker.run_worker(settings, stop, extra_workers=floor,
                            on_ready=lambda: print(f"READY {os.getpid()}", flush=True))
    return 0


if __name__ == "__main__":
    status = asyncio.run(main())
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)  # sdk-python#300
