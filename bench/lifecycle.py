"""Lifecycle throughput: cases carried from filing to 销号, against the floor's same path.

Each case: file (deployment policy: load_policy + record) → 交办 TRANSFER → 签收 ACKNOWLEDGE →
措施完成 COMPLETE_MEASURE ×2 → 申报完成 SUBMIT_COMPLETION → 初审通过 PRELIM_PASS → (the bench fast-forwards the case 8 days
over the 7-day 公示; POSTING_ENDED fires on the case's own timer) → APPLY_CLOSURE → VERIFY_PASS →
RECORD_FILING (销号). `concurrency` paths run at once. The floor does the same with
`FloorWorkflow` and the same number of Updates, timers and activities.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from datetime import timedelta
from typing import Any

from temporalio.api.enums.v1 import EventType

from bench.common import LEAD, OFFICE, RU, act, bounded, criteria, filing, new_prefix
from bench.floor import CASE_PATH, CASE_PATH_AFTER_TIMER, FLOOR_TASK_QUEUE, FLOOR_WORKFLOW, step_payload
from bench.infra import BenchEnv
from domain.enums import Action, Stage
from workflows import client as ops
from workflows.contracts import TASK_QUEUE, case_workflow_id

POSTING_SKIP = timedelta(days=8)


async def _until(pred, timeout: float = 60.0, every: float = 0.05) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if await pred():
            return
        await asyncio.sleep(every)
    raise TimeoutError("condition not reached")


async def case_path(env: BenchEnv, case_no: str) -> None:
    c = env.client
    assert c is not None and env.skipper is not None
    outcome = await ops.file_case(c, filing(case_no), OFFICE, TASK_QUEUE)
    if not outcome.filed:
        raise RuntimeError(outcome.reason)
    await act(c, case_no, Action.TRANSFER, OFFICE)
    await act(c, case_no, Action.ACKNOWLEDGE, RU)
    for seq in (1, 2):  # 验收 checks each measure done with its evidence (issue 13)
        await act(c, case_no, Action.COMPLETE_MEASURE, RU, measure_seq=seq, evidence=[f"doc:bench-measure-{seq}"])
    await act(c, case_no, Action.SUBMIT_COMPLETION, RU)
    await act(c, case_no, Action.PRELIM_PASS, LEAD)
    await env.skipper.fast_forward(c.get_workflow_handle(case_workflow_id(case_no)), POSTING_SKIP)

    async def posted() -> bool:
        return (await ops.get_state(c, case_no)).stage is Stage.CLOSURE_APPLICATION

    await _until(posted)
    await act(c, case_no, Action.APPLY_CLOSURE, RU)
    await act(c, case_no, Action.VERIFY_PASS, LEAD, criteria=criteria())
    r = await act(c, case_no, Action.RECORD_FILING, OFFICE)
    if r.stage is not Stage.CLOSED:
        raise RuntimeError(f"{case_no} ended in {r.stage}, not CLOSED")


async def floor_path(env: BenchEnv, wid: str) -> None:
    c = env.client
    assert c is not None and env.skipper is not None
    h = await c.start_workflow(FLOOR_WORKFLOW, {}, id=wid, task_queue=FLOOR_TASK_QUEUE)
    for step in CASE_PATH:
        await h.execute_update("act", step_payload(step))
    await env.skipper.fast_forward(h, POSTING_SKIP)

    async def posted() -> bool:
        return await h.query("stage") == "CLOSURE_APPLICATION"

    await _until(posted)
    for step in CASE_PATH_AFTER_TIMER:
        # not finished: like a closed case it stays open on its last timer (回头看 window)
        await h.execute_update("act", step_payload(step))


def shape(events: list[Any]) -> dict[str, int]:
    """What a history is made of: the counts the floor must match."""
    c = Counter(EventType.Name(e.event_type) for e in events)
    return {
        "events": len(events),
        "updates": c["EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED"],
        "activities": c["EVENT_TYPE_ACTIVITY_TASK_SCHEDULED"],
        "markers": c["EVENT_TYPE_MARKER_RECORDED"],  # local activities and patches (issue 15)
        "timers_started": c["EVENT_TYPE_TIMER_STARTED"],
        "timers_fired": c["EVENT_TYPE_TIMER_FIRED"],
        "upserts": c["EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES"],
        "workflow_tasks": c["EVENT_TYPE_WORKFLOW_TASK_COMPLETED"],
    }


async def _timed(env: BenchEnv, ids: list[str], concurrency: int, fn) -> dict[str, Any]:
    failures: list[str] = []

    async def one(i: str) -> None:
        try:
            await fn(env, i)
        except Exception as e:  # counted and reported, never hidden
            failures.append(f"{i}: {type(e).__name__}: {e}")

    t0 = time.monotonic()
    await bounded(ids, concurrency, one)
    elapsed = time.monotonic() - t0
    done = len(ids) - len(failures)
    return {
        "cases": len(ids),
        "completed": done,
        "failures": failures[:5],
        "seconds": elapsed,
        "per_minute": done / elapsed * 60 if elapsed else None,
    }


async def run(env: BenchEnv, cases: int, concurrency: int) -> dict[str, Any]:
    """Floor first, then the engine, on the same server and worker process."""
    assert env.client is not None
    prefix = new_prefix("L")
    floor_ids = [f"floor-{prefix}-{i}" for i in range(cases)]
    case_nos = [f"{prefix}-{i:05d}" for i in range(cases)]
    floor = await _timed(env, floor_ids, concurrency, floor_path)
    engine = await _timed(env, case_nos, concurrency, case_path)
    case_events = [e async for e in env.client.get_workflow_handle(case_workflow_id(case_nos[0])).fetch_history_events()]
    floor_events = [e async for e in env.client.get_workflow_handle(floor_ids[0]).fetch_history_events()]
    return {
        "floor": floor,
        "engine": engine,
        "concurrency": concurrency,
        "shape": {"engine": shape(case_events), "floor": shape(floor_events)},
        "case_nos": [n for n in case_nos],
    }
