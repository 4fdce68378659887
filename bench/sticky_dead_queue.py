"""Does a woken workflow's task wait on the sticky queue of a worker that has stopped?

    python -m bench.sticky_dead_queue [--gap SECONDS] [--timer SECONDS] [--kill] [--skip SECONDS]

Starts an in-memory dev server, a worker process A that runs a one-timer workflow's first task
(so the server records A's sticky queue), stops A with SIGTERM (`--kill`: SIGKILL, no graceful
shutdown), starts worker process B `--gap` seconds later, and prints the workflow's history when
the timer has fired: on which queue the woken task was scheduled, who started it, how long after
the timer, and whether it timed out on the sticky queue first. `--skip S` does it the bench's way:
time skipping on, a timer S seconds longer, fast-forwarded by S after A stops. Matching refuses a
sticky queue whose poller it has not seen for 10 s (`stickyWorkerAvailable`), so with the timer
more than 10 s after A stopped the task should start on B at once. One task meets no backlog;
in a burst, the refused tasks wait on the shared queue under the sticky time-out and those still
queued after it time out (bench/README.md, "The sticky time-out")."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import uuid

from temporalio import workflow


@workflow.defn(sandboxed=False)
class OneTimer:
    @workflow.run
    async def run(self, seconds: float) -> str:
        await workflow.sleep(seconds)
        return "fired"


async def _serve(address: str, task_queue: str) -> None:
    from temporalio.client import Client
    from temporalio.worker import Worker

    client = await Client.connect(address)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    async with Worker(client, task_queue=task_queue, workflows=[OneTimer], max_cached_workflows=10):
        await stop.wait()


def _worker(address: str, task_queue: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "bench.sticky_dead_queue", "--serve", address, task_queue])


async def _check(gap: float, timer: float, kill: bool, skip: float) -> None:
    from datetime import timedelta

    from temporalio.api.enums.v1 import TaskQueueKind
    from temporalio.client import Client
    from temporalio.testing import TimeSkipper, TimeSkippingConfig

    from bench.infra import TIME_SKIPPING_FLAG
    from embedded import DevServer, find_free_port

    extra = TIME_SKIPPING_FLAG if skip else []
    async with DevServer(None, port=find_free_port(), headless=True, extra_args=extra) as srv:
        skipper = TimeSkipper(await Client.connect(srv.address), config=TimeSkippingConfig(enabled=False)) if skip else None
        client = skipper.client if skipper else await Client.connect(srv.address)
        task_queue = "sticky-check-" + uuid.uuid4().hex[:8]
        a = _worker(srv.address, task_queue)
        b = None
        try:
            handle = await client.start_workflow(OneTimer.run, timer + skip, id=task_queue, task_queue=task_queue)
            while not any(e.HasField("workflow_task_completed_event_attributes")
                          for e in (await handle.fetch_history()).events):
                await asyncio.sleep(0.2)
            a.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
            a.wait(30)
            if skipper is not None:  # the bench's way of bringing a far deadline near
                await skipper.fast_forward(handle, timedelta(seconds=skip))
            await asyncio.sleep(gap)
            b = _worker(srv.address, task_queue)
            print("result:", await handle.result())
        finally:
            for p in (a, b):
                if p is not None and p.poll() is None:
                    p.send_signal(signal.SIGTERM)
                    p.wait(30)
        events = (await handle.fetch_history()).events
        t0 = events[0].event_time.ToDatetime()
        print(f"worker A pid {a.pid}, worker B pid {b.pid}")
        for e in events:
            kind = e.WhichOneof("attributes").removesuffix("_event_attributes")
            extra = ""
            if kind == "workflow_task_scheduled":
                q = e.workflow_task_scheduled_event_attributes.task_queue
                extra = f"queue {q.name} ({'sticky' if q.kind == TaskQueueKind.TASK_QUEUE_KIND_STICKY else 'normal'})"
            elif kind == "workflow_task_started":
                extra = f"by {e.workflow_task_started_event_attributes.identity}"
            elif kind == "workflow_task_timed_out":
                extra = f"timeout type {e.workflow_task_timed_out_event_attributes.timeout_type}"
            print(f"{(e.event_time.ToDatetime() - t0).total_seconds():8.3f} s  {e.event_id:3d} {kind} {extra}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--gap", type=float, default=5.0, help="seconds between stopping A and starting B")
    ap.add_argument("--timer", type=float, default=25.0, help="the workflow's timer, seconds")
    ap.add_argument("--kill", action="store_true", help="stop A with SIGKILL instead of SIGTERM")
    ap.add_argument("--skip", type=float, default=0.0,
                    help="time skipping on: the timer is this much longer and fast-forwarded by it after A stops")
    ap.add_argument("--serve", nargs=2, metavar=("ADDRESS", "TASK_QUEUE"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve:
        asyncio.run(_serve(*args.serve))
    else:
        asyncio.run(_check(args.gap, args.timer, args.kill, args.skip))
    sys.stdout.flush()
    os._exit(0)  # sdk-python#300: leave without the interpreter's teardown


if __name__ == "__main__":
    main()
