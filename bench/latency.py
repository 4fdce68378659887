"""Handler latency: round trips of an approval-type Update at a steady offered load.

Open loop: request i is sent at t0 + i/rate whether or not earlier ones have answered, so a
slow server shows up as latency, not as a lower rate. The Update is 签收 ACKNOWLEDGE on a case
waiting in TRANSFERRED: the validator (authorization, stage, payload), compute_deadline,
record_case_events (ledger + projection + outbox) and the search-attribute upsert, the same
work as 初审通过 or 核查通过. The floor's figure is the same load on `FloorWorkflow` with one
Update running the same two activities.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from bench.common import RU, act, bounded, dist, new_prefix
from bench.floor import FLOOR_TASK_QUEUE, FLOOR_WORKFLOW, Step, step_payload
from bench.infra import BenchEnv, loadavg
from domain.enums import Action


async def _open_loop(rate: float, items: list[Any], fn) -> tuple[list[float], list[str]]:
    lat: list[float] = []
    errors: list[str] = []
    t0 = time.monotonic()

    async def one(i: int, item: Any) -> None:
        await asyncio.sleep(max(0.0, t0 + i / rate - time.monotonic()))
        s = time.monotonic()
        try:
            await fn(item)
            lat.append(time.monotonic() - s)
        except Exception as e:
            errors.append(f"{type(e).__name__}: {e}")

    await asyncio.gather(*(one(i, x) for i, x in enumerate(items)))
    return lat, errors


async def measure(env: BenchEnv, case_nos: list[str], rate: float, open_cases: int) -> dict[str, Any]:
    """ACKNOWLEDGE each of `case_nos` at `rate` per second (the engine's figure)."""
    assert env.client is not None
    c = env.client
    load0 = loadavg()
    lat, errors = await _open_loop(rate, case_nos, lambda n: act(c, n, Action.ACKNOWLEDGE, RU))
    return {"open_cases": open_cases, "rate": rate, **dist(lat), "errors": errors[:5],
            "loadavg_before": load0, "loadavg_after": loadavg()}


async def floor(env: BenchEnv, n: int, rate: float) -> dict[str, Any]:
    """The same offered load on floor workflows (one Update, two no-op activities, timer re-armed)."""
    assert env.client is not None
    c = env.client
    prefix = new_prefix("FL")

    async def start(i: int):
        return await c.start_workflow(FLOOR_WORKFLOW, {}, id=f"floor-{prefix}-{i}", task_queue=FLOOR_TASK_QUEUE)

    handles = await bounded(range(n), 50, start)
    await bounded(handles, 20, lambda h: h.query("stage"))  # every first task done: the floor is ready
    step = step_payload(Step("ACKNOWLEDGE", 1, 120, local=2))  # as CASE_PATH's 签收
    lat, errors = await _open_loop(rate, handles, lambda h: h.execute_update("act", step))
    return {"rate": rate, **dist(lat), "errors": errors[:5]}
