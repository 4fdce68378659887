"""End to end on the real Temporal dev server: worker + PostgreSQL + a case through the whole path.

The dev server runs with its (experimental) per-workflow time skipping: the case
runs in real time and the test skips its clock over the 7-day public posting. This is
also where visibility (search attributes, list queries) is tested: the Java
test server has no list API.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
import pytest_asyncio
from temporalio.testing import WorkflowEnvironment

from domain.calendar import local_date
from domain.enums import Action, Rung, Stage
from tests.harness import (
    LEAD,
    OFFICE,
    RU,
    CaseDriver,
    case_worker,
    criteria,
    make_filing,
    start_dev_env,
)
from workflows.contracts import case_workflow_id

pytestmark = pytest.mark.devserver


@pytest_asyncio.fixture(scope="module")
async def dev_env() -> AsyncIterator[WorkflowEnvironment]:
    env = await start_dev_env()
    yield env
    await env.shutdown()


async def _listed(env: WorkflowEnvironment, query: str) -> list[str]:
    for _ in range(50):  # visibility is eventually consistent
        ids = [w.id async for w in env.client.list_workflows(query)]
        if ids:
            return ids
        await asyncio.sleep(0.2)
    return []


async def test_a_case_goes_through_the_whole_path_on_the_dev_server(
    dev_env: WorkflowEnvironment, pool: asyncpg.Pool, task_queue: str
) -> None:
    """Filed, transferred, rectified, posted, verified and closed, with ledger, outbox and visibility."""
    client = dev_env.client
    async with case_worker(client, pool, task_queue):
        today = local_date(datetime.now(UTC))
        c = CaseDriver(client, pool, task_queue, make_filing(due=today + timedelta(days=120)))
        assert (await c.file()).filed
        assert not (await c.file()).filed, "filing the same case number twice is refused"
        await c.do(Action.TRANSFER, OFFICE)
        await c.do(Action.ACKNOWLEDGE, RU)
        ids = await _listed(dev_env, f'CaseStage = "RECTIFYING" AND ResponsibleUnits = "{RU.unit}"')
        assert case_workflow_id(c.case_no) in ids
        due = (await c.state()).deadline.due_at
        wid = case_workflow_id(c.case_no)
        def rfc3339(t: datetime) -> str:
            return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

        by_due = await _listed(
            dev_env,
            f'WorkflowId = "{wid}" AND CaseDueAt > "{rfc3339(due - timedelta(minutes=1))}" '
            f'AND CaseDueAt < "{rfc3339(due + timedelta(minutes=1))}" '
            'AND EscalationRung = 0 AND CaseKind = "FEEDBACK_PROBLEM"',
        )
        assert by_due == [wid]
        await c.complete_measures()  # 验收 needs every measure done (issue 13)
        await c.do(Action.SUBMIT_COMPLETION, RU)
        await c.do(Action.PRELIM_PASS, LEAD)
        handle = client.get_workflow_handle(case_workflow_id(c.case_no))
        await dev_env.fast_forward(handle, timedelta(days=8))
        for _ in range(50):
            if await c.stage() is Stage.CLOSURE_APPLICATION:
                break
            await asyncio.sleep(0.2)
        assert await c.stage() is Stage.CLOSURE_APPLICATION
        await c.do(Action.APPLY_CLOSURE, RU)
        await c.do(Action.VERIFY_PASS, LEAD, criteria=criteria())
        await c.do(Action.RECORD_FILING, OFFICE)
        assert await c.stage() is Stage.CLOSED
        assert await _listed(dev_env, f'CaseStage = "CLOSED" AND WorkflowId = "{case_workflow_id(c.case_no)}"')
        proj = await c.projection()
        assert proj["stage"] == "CLOSED"
        events = await c.events()
        assert events[0] == "FILED" and "POSTING_ENDED" in events and events[-1] == "RECORD_FILING"
        assert await pool.fetchval("SELECT count(*) FROM outbox WHERE case_no = $1", c.case_no) > 0


async def test_a_case_survives_a_worker_restart(
    dev_env: WorkflowEnvironment, pool: asyncpg.Pool, task_queue: str
) -> None:
    """A worker stops mid-case; a new worker rebuilds the case from history and escalates on time."""
    from config import Settings
    from worker import build_worker

    client = dev_env.client
    today = local_date(datetime.now(UTC))
    c = CaseDriver(client, pool, task_queue, make_filing(due=today + timedelta(days=3)))
    async with build_worker(client, pool, Settings(), task_queue=task_queue):
        assert (await c.file()).filed
        await c.do(Action.TRANSFER, OFFICE)
        await c.do(Action.ACKNOWLEDGE, RU)
    events_before = await c.events()
    async with case_worker(client, pool, task_queue):
        await dev_env.fast_forward(client.get_workflow_handle(case_workflow_id(c.case_no)), timedelta(days=6))
        for _ in range(50):
            state = await c.state()
            if state.escalation.level >= 1:
                break
            await asyncio.sleep(0.2)
        assert state.escalation.fired[0].rung is Rung.NOTICE_LETTER
        events = await c.events()
        assert events[: len(events_before)] == events_before and "ESCALATED" in events
        assert [r["seq"] for r in await c.ledger()] == list(range(1, state.seq + 1))
