"""The Temporal Schedule of a programme's monthly dispatch (一月一调度一督办).

    await ensure_dispatch_schedule(client, programme_id, day_of_month)   # create or update
    await delete_dispatch_schedule(client, programme_id)                 # gone (no error if absent)

One Schedule per programme, id `dispatch-<programme>`; at 09:00 Asia/Shanghai on the chosen day
(1..28) of every month it starts `DispatchTick(programme_id)` (workflows/dispatch_workflow.py),
which runs that month's `Dispatch` under the id `dispatch-<programme>-<YYYY-MM>`.

Policies (written down here and in README):
- overlap ALLOW_ALL: runs for different months are independent, and the same month is
  idempotent by its Dispatch workflow id, so no run needs to wait for or skip another;
- catchup window 93 days: months whose time passed while the server was down (or the
  Schedule could not run) within the last quarter are run when it is back, each for its own
  month (the tick takes the month from the run's nominal time); older ones are not;
- a paused Schedule does not catch up the months it was paused for (Temporal's rule).

`ensure_dispatch_schedule` is idempotent: called again with the same day it changes nothing,
with another day (or task queue) it updates the Schedule in place.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleBackfill,
    ScheduleCalendarSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleRange,
    ScheduleSpec,
    ScheduleState,
    ScheduleUpdate,
    ScheduleUpdateInput,
)
from temporalio.service import RPCError, RPCStatusCode

from domain.dispatch import check_day_of_month, check_programme_id, schedule_id
from workflows.contracts import TASK_QUEUE
from workflows.dispatch_contracts import DISPATCH_TICK_WORKFLOW, DispatchTickInput

HOUR = 9  # 09:00 Beijing time on the chosen day
TIME_ZONE = "Asia/Shanghai"
CATCHUP_WINDOW = timedelta(days=93)
OVERLAP = ScheduleOverlapPolicy.ALLOW_ALL


@dataclass(frozen=True)
class ScheduleOutcome:
    schedule_id: str
    day_of_month: int
    status: str  # CREATED, UPDATED, UNCHANGED


def build_schedule(programme_id: str, day_of_month: int, task_queue: str = TASK_QUEUE) -> Schedule:
    """The Schedule of a programme's dispatch (checked input; DispatchError names what is wrong)."""
    check_programme_id(programme_id)
    check_day_of_month(day_of_month)
    return Schedule(
        action=ScheduleActionStartWorkflow(
            DISPATCH_TICK_WORKFLOW, DispatchTickInput(programme_id=programme_id),
            id=f"{schedule_id(programme_id)}-tick", task_queue=task_queue,
            execution_timeout=timedelta(hours=6),
        ),
        spec=ScheduleSpec(
            calendars=[ScheduleCalendarSpec(day_of_month=[ScheduleRange(day_of_month)], hour=[ScheduleRange(HOUR)])],
            time_zone_name=TIME_ZONE,
        ),
        policy=SchedulePolicy(overlap=OVERLAP, catchup_window=CATCHUP_WINDOW),
        state=ScheduleState(note=f"月度调度 monthly dispatch of {programme_id}, day {day_of_month} {HOUR:02d}:00 "
                                 f"{TIME_ZONE}"),
    )


def day_of(schedule: Schedule) -> int | None:
    """The day of month a stored dispatch Schedule runs on."""
    cals = schedule.spec.calendars
    if len(cals) != 1 or len(cals[0].day_of_month) != 1:
        return None
    return cals[0].day_of_month[0].start


def _same(current: Schedule, wanted: Schedule) -> bool:
    a, b = current.action, wanted.action
    return (day_of(current) == day_of(wanted) and isinstance(a, ScheduleActionStartWorkflow)
            and isinstance(b, ScheduleActionStartWorkflow) and a.task_queue == b.task_queue
            and a.workflow == b.workflow and current.policy.overlap == wanted.policy.overlap
            and current.policy.catchup_window == wanted.policy.catchup_window
            and current.spec.time_zone_name == wanted.spec.time_zone_name)


async def ensure_dispatch_schedule(client: Client, programme_id: str, day_of_month: int,
                                   task_queue: str = TASK_QUEUE) -> ScheduleOutcome:
    """Create the programme's dispatch Schedule, or bring an existing one to this day (idempotent)."""
    wanted = build_schedule(programme_id, day_of_month, task_queue)
    sid = schedule_id(programme_id)
    try:
        await client.create_schedule(sid, wanted)
        return ScheduleOutcome(sid, day_of_month, "CREATED")
    except ScheduleAlreadyRunningError:
        pass
    changed = False

    def updater(inp: ScheduleUpdateInput) -> ScheduleUpdate | None:
        nonlocal changed
        if _same(inp.description.schedule, wanted):
            return None
        changed = True
        wanted.state = inp.description.schedule.state  # keep paused/unpaused as the operator left it
        wanted.state.note = build_schedule(programme_id, day_of_month, task_queue).state.note
        return ScheduleUpdate(schedule=wanted)

    await client.get_schedule_handle(sid).update(updater)
    return ScheduleOutcome(sid, day_of_month, "UPDATED" if changed else "UNCHANGED")


async def delete_dispatch_schedule(client: Client, programme_id: str) -> bool:
    """Delete the programme's dispatch Schedule; False when there was none. Reports stay."""
    try:
        await client.get_schedule_handle(schedule_id(check_programme_id(programme_id))).delete()
    except RPCError as e:
        if e.status == RPCStatusCode.NOT_FOUND:
            return False
        raise
    return True


async def describe_dispatch_schedule(client: Client, programme_id: str) -> dict | None:
    """Day, next run times, pause state and recent actions of the Schedule; None when there is none."""
    try:
        d = await client.get_schedule_handle(schedule_id(check_programme_id(programme_id))).describe()
    except RPCError as e:
        if e.status == RPCStatusCode.NOT_FOUND:
            return None
        raise
    return {
        "schedule_id": d.id, "day_of_month": day_of(d.schedule), "hour": HOUR, "time_zone": TIME_ZONE,
        "paused": d.schedule.state.paused, "note": d.schedule.state.note,
        "next_action_times": [t.isoformat() for t in d.info.next_action_times[:3]],
        "recent_actions": [{"scheduled_at": a.scheduled_at.isoformat(), "started_at": a.started_at.isoformat()}
                           for a in d.info.recent_actions[-12:]],
        "num_actions": d.info.num_actions,
    }


async def backfill_dispatch(client: Client, programme_id: str, start_at: datetime, end_at: datetime) -> None:
    """Run the Schedule's action for every nominal time in [start_at, end_at] (past months)."""
    await client.get_schedule_handle(schedule_id(check_programme_id(programme_id))).backfill(
        ScheduleBackfill(start_at=start_at, end_at=end_at, overlap=OVERLAP))
