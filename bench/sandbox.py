"""What the workflow sandbox costs per case rebuilt from its history (issue 9, worker_sandbox.py).

A woken case the worker's cache evicted is rebuilt by replaying its history: a new sandboxed
instance (re-importing the workflow's definition module), then one activation per recorded
workflow task, each visited for payloads on the way in and out. This replays stored histories
(tests/replay/histories) with three runners, in one process, and prints the worker CPU per
history:

- `sdk`: the SDK's `SandboxedWorkflowRunner` with the worker's passthrough modules (what the
  worker ran before worker_sandbox.py);
- `worker`: the worker's runner (`worker.sandbox_runner()`: the same sandbox, answering the
  payload-context look-ups without an `exec` each);
- `unsandboxed`: `UnsandboxedWorkflowRunner` (`WORKER_WORKFLOW_SANDBOX=false`).

The runners take turns, `--rounds` times, so drift on a shared machine spreads over all three;
the figure is the median over rounds of CPU ms per history. Printed and written as JSON, never
asserted. Usage:

    .venv/bin/python -m bench.sandbox [--repeat 100] [--rounds 5] [--json bench/measured/sandbox.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer, UnsandboxedWorkflowRunner
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner

from worker import WORKFLOWS, sandbox_runner

ROOT = Path(__file__).resolve().parents[1]
HISTORIES = ROOT / "tests" / "replay" / "histories"


def _histories() -> dict[str, list[Any]]:
    """Three shapes: a case woken right after filing (the first task only: the bench's escalation
    wakes cases with a few tasks), a whole happy path, and a case escalated to its last rung."""
    def events(stem: str) -> list[Any]:
        return list(WorkflowHistory.from_json("wf", json.loads((HISTORIES / f"{stem}.json").read_text())).events)

    happy = events("happy_path")
    first_done = next(i for i, e in enumerate(happy) if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED)
    return {"first task": happy[: first_done + 1], "happy_path": happy,
            "escalation_clock_ledger": events("escalation_clock_ledger")}


def _runners() -> dict[str, Any]:
    ours = sandbox_runner()
    return {"sdk": SandboxedWorkflowRunner(restrictions=ours.restrictions), "worker": ours,
            "unsandboxed": UnsandboxedWorkflowRunner()}


async def _replay_cpu_ms(runner: Any, events: list[Any], repeat: int, tag: str) -> float:
    replayer = Replayer(workflows=WORKFLOWS, data_converter=pydantic_data_converter, workflow_runner=runner)

    async def each() -> AsyncIterator[WorkflowHistory]:
        for i in range(repeat):
            yield WorkflowHistory(f"{tag}-{i}", events)

    t0 = time.process_time()
    await replayer.replay_workflows(each(), raise_on_replay_failure=True)
    return (time.process_time() - t0) / repeat * 1000


async def measure(repeat: int, rounds: int) -> dict[str, Any]:
    runners, shapes = _runners(), _histories()
    out: dict[str, Any] = {"repeat": repeat, "rounds": rounds, "loadavg_start": os.getloadavg(), "shapes": {}}
    for shape, events in shapes.items():
        wft = sum(1 for e in events if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED)
        samples: dict[str, list[float]] = {name: [] for name in runners}
        for name, runner in runners.items():  # warm-up: first imports
            await _replay_cpu_ms(runner, events, 3, f"warm-{name}")
        for r in range(rounds):
            for name, runner in runners.items():
                samples[name].append(await _replay_cpu_ms(runner, events, repeat, f"{shape}-{name}-{r}"))
        out["shapes"][shape] = {"events": len(events), "workflow_tasks": wft,
                                "cpu_ms_per_history": {n: round(statistics.median(v), 2) for n, v in samples.items()},
                                "samples": {n: [round(x, 2) for x in v] for n, v in samples.items()}}
    out["loadavg_end"] = os.getloadavg()
    return out


def table(res: dict[str, Any]) -> str:
    lines = ["| history | events / workflow tasks | SDK sandbox | worker's sandbox | unsandboxed | worker / SDK |",
             "|---|---|---|---|---|---|"]
    for shape, s in res["shapes"].items():
        c = s["cpu_ms_per_history"]
        lines.append(f"| {shape} | {s['events']} / {s['workflow_tasks']} | {c['sdk']:.1f} | {c['worker']:.1f} | "
                     f"{c['unsandboxed']:.1f} | {c['worker'] / c['sdk']:.2f} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=100, help="histories replayed per runner per round")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    res = asyncio.run(measure(args.repeat, args.rounds))
    print(f"worker CPU ms per history replayed (median of {args.rounds} rounds of {args.repeat}); "
          f"load {res['loadavg_start'][0]:.2f} -> {res['loadavg_end'][0]:.2f}")
    print(table(res))
    if args.json:
        args.json.write_text(json.dumps(res, indent=2))
    sys.stdout.flush()
    os._exit(0)  # sdk-python#300


if __name__ == "__main__":
    main()
