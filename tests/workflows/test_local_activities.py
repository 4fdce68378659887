"""Issue 15: the calendar and policy reads as local activities, and a worker that leaves the
patch inactive (WORKER_INACTIVE_PATCHES) for new runs; both on the real test server."""

from __future__ import annotations

from datetime import date, timedelta

import asyncpg
import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

from config import Settings
from domain.enums import Action, Stage
from tests.harness import OFFICE, RU, CaseDriver, case_worker, make_filing
from workflows import client as ops
from workflows.case_workflow import CLOCK_LEDGER_PATCH, LOCAL_ACTIVITIES_PATCH
from workflows.contracts import case_workflow_id


async def _history_shape(client: Client, case_no: str) -> dict[str, object]:
    events = (await client.get_workflow_handle(case_workflow_id(case_no)).fetch_history()).events
    scheduled = [e.activity_task_scheduled_event_attributes.activity_type.name for e in events
                 if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED]
    markers = [e.marker_recorded_event_attributes.marker_name for e in events
               if e.event_type == EventType.EVENT_TYPE_MARKER_RECORDED]
    tasks = sum(e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED for e in events)
    return {"scheduled": scheduled, "markers": markers, "tasks": tasks, "events": len(events)}


async def _file_transfer_acknowledge(c: CaseDriver) -> None:
    outcome = await ops.file_case(c.client, c.filing, OFFICE, c.task_queue)  # policy by load_policy
    assert outcome.filed, outcome
    await c.do(Action.TRANSFER, OFFICE)
    result = await c.do(Action.ACKNOWLEDGE, RU)
    assert result.stage is Stage.RECTIFYING and result.due_date is not None


async def test_policy_and_deadlines_are_local_activities_and_each_action_takes_two_tasks(
    ts_client: Client, pool: asyncpg.Pool, task_queue: str
) -> None:
    c = CaseDriver(ts_client, pool, task_queue, make_filing("LOCAL-ACT-1", due=date.today() + timedelta(days=120)))
    async with case_worker(ts_client, pool, task_queue):
        await _file_transfer_acknowledge(c)
        shape = await _history_shape(ts_client, c.case_no)
    # Only the ledger writes are scheduled activities; policy and deadlines are markers.
    assert set(shape["scheduled"]) == {"record_case_events"}, shape
    assert shape["markers"].count("core_local_activity") >= 3, shape  # policy + two deadlines
    assert shape["markers"].count("core_patch") == 1, shape  # only the newest patch is recorded
    # Filing and each action: the deciding task and the one after the ledger write (7 measured;
    # the same path with the patch inactive takes 11, next test).
    assert shape["tasks"] <= 7, shape
    rows = await pool.fetch("SELECT event FROM ledger WHERE case_no = $1 ORDER BY seq", c.case_no)
    events = [r["event"] for r in rows]
    assert events[0] == "FILED" and {"TRANSFER", "ACKNOWLEDGE", "DEADLINE_SET"} <= set(events), events


async def test_a_worker_leaving_the_patch_inactive_keeps_the_scheduled_activities(
    ts_client: Client, pool: asyncpg.Pool, task_queue: str
) -> None:
    c = CaseDriver(ts_client, pool, task_queue, make_filing("LOCAL-ACT-2", due=date.today() + timedelta(days=120)))
    inactive = f"{CLOCK_LEDGER_PATCH},{LOCAL_ACTIVITIES_PATCH}"
    async with case_worker(ts_client, pool, task_queue, Settings(inactive_patches=inactive)):
        await _file_transfer_acknowledge(c)
        shape = await _history_shape(ts_client, c.case_no)
    assert "core_local_activity" not in shape["markers"], shape
    assert {"load_policy", "compute_deadline", "record_case_events"} <= set(shape["scheduled"]), shape
    assert shape["tasks"] >= 10, shape


def test_unknown_or_implied_inactive_patches_are_refused() -> None:
    from worker import inactive_patch_ids

    with pytest.raises(ValueError, match="unknown patch id.*no-such-patch"):
        inactive_patch_ids(Settings(inactive_patches="no-such-patch"))
    with pytest.raises(ValueError, match="fanout-v1 stays active.*local-calendar-activities-1"):
        inactive_patch_ids(Settings(inactive_patches="fanout-v1"))
    with pytest.raises(ValueError, match="local-calendar-activities-1 stays active.*clock-ledger-local-1"):
        inactive_patch_ids(Settings(inactive_patches=f"{LOCAL_ACTIVITIES_PATCH}, fanout-v1"))
    assert inactive_patch_ids(Settings(inactive_patches=f" {CLOCK_LEDGER_PATCH},{LOCAL_ACTIVITIES_PATCH}, fanout-v1 ")) == {
        CLOCK_LEDGER_PATCH, LOCAL_ACTIVITIES_PATCH, "fanout-v1"}
