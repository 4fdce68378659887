"""The escalation watchdog (issue 9) heals a case kept from waking."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date, timedelta

import asyncpg
import pytest_asyncio
from temporalio import workflow
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from activities.case_activities import CaseActivities
from activities.watchdog import watchdog_pass
from config import Settings
from domain.enums import Action, Stage
from tests.harness import OFFICE, CaseDriver, end_started_cases, make_filing
from workflows.case_workflow import CaseWorkflow
from workflows.contracts import WORKFLOW_NAME, CaseWorkflowInput, CaseWorkflowResult

GRACE = timedelta(minutes=5)


@workflow.defn(name=WORKFLOW_NAME, sandboxed=False)
class LostTimerCaseWorkflow(CaseWorkflow):
    """Test-only: the case workflow with its timer lost (it waits for an action or a nudge only),
    the way a case looks to the office when its wake-up never comes."""

    @workflow.run
    async def run(self, inp: CaseWorkflowInput) -> CaseWorkflowResult:
        return await super().run(inp)

    async def _wait_for_clock_or_action(self) -> None:
        self._dirty = False
        await workflow.wait_condition(lambda: self._dirty or self._continue_as_new_due())


@pytest_asyncio.fixture
async def lost_timer_worker(ts_client: Client, pool: asyncpg.Pool, task_queue: str) -> AsyncIterator[None]:
    acts = CaseActivities(pool, "", Settings().calendar_overrides_file)
    async with Worker(ts_client, task_queue=task_queue, workflows=[LostTimerCaseWorkflow],
                      activities=acts.all(), workflow_runner=UnsandboxedWorkflowRunner()):
        try:
            yield
        finally:
            await end_started_cases(ts_client)


async def test_the_watchdog_nudges_a_case_that_missed_its_deadline_and_sees_it_heal(
    ts_env: WorkflowEnvironment, ts_client: Client, pool: asyncpg.Pool, task_queue: str, lost_timer_worker: None,
) -> None:
    stuck = CaseDriver(ts_client, pool, task_queue, make_filing(due=date.today() + timedelta(days=90)))
    waiting = CaseDriver(ts_client, pool, task_queue, make_filing(due=date.today() + timedelta(days=90)))
    await stuck.file()
    await waiting.file()
    assert (await stuck.do(Action.TRANSFER, OFFICE)).stage is Stage.TRANSFERRED  # 签收 in 3 working days
    now = await ts_env.get_current_time()
    assert (await watchdog_pass(ts_client, pool, grace=GRACE, now=now)).nudged == []  # nothing due yet

    await ts_env.sleep(timedelta(days=12))  # past the 签收 deadline and its first rungs; no timer fires
    assert "ESCALATED" not in await stuck.events()
    now = await ts_env.get_current_time()
    p = await watchdog_pass(ts_client, pool, grace=GRACE, now=now)
    assert p.nudged == [stuck.case_no]  # the REGISTERED case has no deadline: not nudged
    row = await pool.fetchrow("SELECT * FROM watchdog_nudge WHERE case_no = $1", stuck.case_no)
    assert row["what"].startswith("RUNG ") and row["late_seconds"] > GRACE.total_seconds() and row["healed_at"] is None

    for _ in range(100):  # the nudge makes the workflow re-run on_wakeup
        if "ESCALATED" in await stuck.events():
            break
        await ts_env.sleep(timedelta(seconds=1))
    assert "ESCALATED" in await stuck.events()
    p = await watchdog_pass(ts_client, pool, grace=GRACE, now=await ts_env.get_current_time())
    assert stuck.case_no in p.healed
    row = await pool.fetchrow("SELECT * FROM watchdog_nudge WHERE case_no = $1 AND healed_at IS NOT NULL", stuck.case_no)
    assert row is not None
