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

import asyncio
import multiprocessing
import os
import time
from collections.abc import AsyncIterator
from concurrent.futures import ProcessPoolExecutor
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


def _replay_chunk(items: list[tuple[str, str]], sandboxed: bool) -> dict[str, Any]:
    """In a child process: replay histories given as (workflow_id, history JSON)."""
    hs = [WorkflowHistory.from_json(wid, raw) for wid, raw in items]
    return asyncio.run(replay_throughput(hs, sandboxed))


async def replay_parallel(histories: list[WorkflowHistory], sandboxed: bool = False,
                          processes: int | None = None) -> dict[str, Any]:
    """The same replay split across processes (spawned: the Temporal runtime holds threads).

    `histories_per_s` counts the whole wall time (process start and imports included);
    `histories_per_s_steady` divides by the slowest process's own replay time.
    """
    processes = processes or os.cpu_count() or 1
    chunks = [[(h.workflow_id, h.to_json()) for h in histories[i::processes]] for i in range(processes)]
    chunks = [c for c in chunks if c]
    loop = asyncio.get_running_loop()
    t0 = time.monotonic()
    with ProcessPoolExecutor(len(chunks), mp_context=multiprocessing.get_context("spawn")) as pool:
        parts = await asyncio.gather(*(loop.run_in_executor(pool, _replay_chunk, c, sandboxed) for c in chunks))
    elapsed = time.monotonic() - t0
    n = sum(p["histories"] for p in parts)
    events = sum(p["events"] for p in parts)
    slowest = max(p["seconds"] for p in parts)
    return {
        "processes": len(chunks),
        "histories": n,
        "events": events,
        "failures": sum(p["failures"] for p in parts),
        "seconds": elapsed,
        "histories_per_s": n / elapsed,
        "histories_per_s_steady": n / slowest,
        "events_per_s_steady": events / slowest,
    }
