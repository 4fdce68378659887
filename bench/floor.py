"""The floor: Temporal alone, with a case's shape and none of our code.

`FloorWorkflow` has the same skeleton as `CaseWorkflow` (one Update `act` that runs
activities and moves a timer, a main loop that waits for "an action or the clock",
search-attribute upserts) but no domain logic, no pydantic models and no database:
its activities return at once. The bench drives it through `CASE_PATH`, which mirrors
the case's full path step for step (same number of Updates, timers, activities and
upserts), on the same server and worker process, so every figure of the engine can be
divided by the floor's.

Payloads are plain JSON (dicts / floats): the floor must not pay for our models.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import timedelta

from temporalio import activity, workflow
from temporalio.common import SearchAttributeKey

FLOOR_WORKFLOW = "BenchFloor"
FLOOR_TASK_QUEUE = "bench-floor"
_STAGE = SearchAttributeKey.for_keyword("CaseStage")  # the case's own attribute, same cost
_ACT_TIMEOUT = timedelta(seconds=30)


@dataclass(frozen=True)
class Step:
    """One step of the path: `local` no-op local activities, `activities` no-op activities, then
    optionally arm the timer."""

    name: str
    activities: int
    timer_days: float | None  # arm the clock this far ahead (None: no timer in this stage)
    stage: str | None = None  # the stage it leaves the case in (default: a stage named after the step)
    local: int = 0  # issue 15: the case reads its policy and calendar in local activities


# The case's happy path as the bench drives it (bench/lifecycle.py): filing with the
# deployment policy (load_policy as a local activity + record), then 7 Updates and one timer
# (公示期满) that the bench fast-forwards. Per step: compute_deadline as a local activity where
# the step sets a deadline, then record_case_events (issue 15's patch local-calendar-activities-1;
# before it, both were scheduled activities). Checked against the case's own history by the
# bench (the "shape" line of the lifecycle figure).
FILING = Step("FILED", 1, None, local=1)
CASE_PATH: list[Step] = [
    Step("TRANSFER", 1, 3, local=1),
    # entering 整改中 also dates the monthly progress report's timer (compute_followup_schedule)
    Step("ACKNOWLEDGE", 1, 120, local=2),
    # 措施完成: record only; the stage and its clock stay (the case re-arms its timer)
    Step("COMPLETE_MEASURE", 1, 120, stage="ACKNOWLEDGE"),
    Step("COMPLETE_MEASURE", 1, 120, stage="ACKNOWLEDGE"),
    Step("SUBMIT_COMPLETION", 1, 14, local=1),
    Step("PRELIM_PASS", 1, 7, local=1),  # the posting timer: fast-forwarded, fires POSTING_ENDED
]
# Issue 9 (clock-ledger-local-1): what the clock decides is written inside the woken task, so the
# posting's end is two local activities (compute_deadline, record_clock_events) and no activity.
ON_TIMER = Step("POSTING_ENDED", 0, 7, local=2)
CASE_PATH_AFTER_TIMER: list[Step] = [
    Step("APPLY_CLOSURE", 1, 28, local=1),
    Step("VERIFY_PASS", 1, 7, local=1),
    Step("RECORD_FILING", 1, 365),
]


@activity.defn(name="floor_noop")
async def floor_noop(n: int) -> int:
    return n


@workflow.defn(name=FLOOR_WORKFLOW)
class FloorWorkflow:
    """A case-shaped workflow with no domain logic: the floor the engine is measured against."""

    @workflow.init
    def __init__(self, inp: dict) -> None:
        self._wake: float | None = inp.get("wake_at")  # absolute epoch seconds
        self._dirty = False
        self._lock = asyncio.Lock()
        self._stage = ""  # the first step upserts, like the case at filing
        self._timer_fired_at: float | None = None
        self._done = False

    @workflow.run
    async def run(self, inp: dict) -> dict:
        async with self._lock:
            await self._activities(int(inp.get("start_activities", FILING.activities)), "REGISTERED",
                                   int(inp.get("start_local", FILING.local)))
        while not self._done:
            wake = self._wake
            self._dirty = False
            if wake is None:
                await workflow.wait_condition(lambda: self._dirty)
                continue
            delay = wake - workflow.now().timestamp()
            if delay > 0:
                try:
                    await workflow.wait_condition(lambda: self._dirty, timeout=delay)
                    continue
                except TimeoutError:
                    pass
            # The clock: what POSTING_ENDED / an escalation rung is to a case.
            self._timer_fired_at = workflow.now().timestamp()
            lag = self._timer_fired_at - wake
            async with self._lock:
                self._wake = None
                on_timer = inp.get("on_timer", {"activities": ON_TIMER.activities, "timer_days": ON_TIMER.timer_days,
                                                "local": ON_TIMER.local})
                await self._activities(int(on_timer["activities"]), "CLOSURE_APPLICATION", int(on_timer.get("local", 0)))
                if on_timer.get("timer_days") is not None:
                    self._wake = workflow.now().timestamp() + float(on_timer["timer_days"]) * 86400
                if inp.get("finish_on_timer"):
                    self._done = True
                    return {"timer_lag": lag, "fired_at": self._timer_fired_at}
        await workflow.wait_condition(workflow.all_handlers_finished)
        return {"timer_lag": None, "fired_at": self._timer_fired_at}

    async def _activities(self, n: int, stage: str, local: int = 0) -> None:
        for i in range(local):
            await workflow.execute_local_activity(floor_noop, i, start_to_close_timeout=_ACT_TIMEOUT)
        for i in range(n):
            await workflow.execute_activity(floor_noop, i, start_to_close_timeout=_ACT_TIMEOUT)
        if stage != self._stage:
            self._stage = stage
            workflow.upsert_search_attributes([_STAGE.value_set(stage)])

    @workflow.update(name="act")
    async def act(self, step: dict) -> dict:
        async with self._lock:
            await self._activities(int(step["activities"]), str(step.get("stage") or step["name"]),
                                   int(step.get("local", 0)))
            days = step.get("timer_days")
            self._wake = None if days is None else workflow.now().timestamp() + float(days) * 86400
            if step.get("finish"):
                self._done = True
            self._dirty = True
            return {"stage": self._stage}

    @act.validator
    def _validate(self, step: dict) -> None:
        if "activities" not in step or "name" not in step:
            raise ValueError("a floor step needs 'name' and 'activities'")

    @workflow.query(name="stage")
    def stage(self) -> str:
        return self._stage


def step_payload(step: Step, finish: bool = False) -> dict:
    return {"name": step.name, "activities": step.activities, "timer_days": step.timer_days, "finish": finish,
            "stage": step.stage, "local": step.local}
