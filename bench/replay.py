"""Audit replay: histories/s and events/s replaying case histories against the current code.

`replay_throughput(histories, sandboxed)` takes a list of `WorkflowHistory` from anywhere (the
bench fetches the lifecycle run's histories from the server; the archive can feed its own).
Both runners use the production data converter. The unsandboxed runner is safe for replay:
the sandbox protects a *live* worker from workflow code that reaches for non-deterministic or
global state; replay only re-executes code that already passed the sandboxed worker (and the
replay suite), compares its commands with the recorded history, and a divergence is still
reported as a replay failure, so it checks the same thing, only without re-importing the
workflow module per run.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

from temporalio.client import Client, WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer, UnsandboxedWorkflowRunner

from bench.common import bounded
from worker import sandbox_runner
from workflows.case_workflow import CaseWorkflow
from workflows.contracts import case_workflow_id


async def fetch_histories(client: Client, case_nos: list[str]) -> list[WorkflowHistory]:
    return await bounded(case_nos, 20, lambda n: client.get_workflow_handle(case_workflow_id(n)).fetch_history())


async def replay_throughput(histories: list[WorkflowHistory], sandboxed: bool) -> dict[str, Any]:
    replayer = Replayer(
        workflows=[CaseWorkflow],
        data_converter=pydantic_data_converter,
        workflow_runner=sandbox_runner() if sandboxed else UnsandboxedWorkflowRunner(),
    )
    events = sum(len(h.events) for h in histories)
    async def each() -> AsyncIterator[WorkflowHistory]:
        for h in histories:
            yield h

    failures: list[str] = []
    if histories:  # warm-up, untimed: the first run imports the workflow module
        await replayer.replay_workflow(histories[0], raise_on_replay_failure=False)
    t0 = time.monotonic()
    async with replayer.workflow_replay_iterator(each()) as results:
        async for r in results:
            if r.replay_failure is not None:
                failures.append(f"{r.history.workflow_id}: {r.replay_failure}")
    elapsed = time.monotonic() - t0
    return {
        "histories": len(histories),
        "events": events,
        "failures": len(failures),
        "failure_examples": failures[:3],
        "seconds": elapsed,
        "histories_per_s": len(histories) / elapsed,
        "events_per_s": events / elapsed,
    }
