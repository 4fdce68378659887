"""Issue 9 (lag): what the clock decides is written inside the woken workflow task
(`clock-ledger-local-1`, `record_clock_events` as a local activity), on the real time-skipping
server with real PostgreSQL: the shape of the history, what the auditor reads from it, a task that
failed after its write, a ledger that holds something else, and an action that arrives with a due
clock."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta

import asyncpg
import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment, WorkflowEnvironment

from activities.case_activities import CaseActivities
from audit.history import CLOCK_RECORD_ACTIVITY, decode, local_activity_result
from audit.timeline import build_timeline
from audit.verify import verify_case
from config import Settings
from domain import decide as d
from domain.blocking import LEDGER_DIVERGENCE
from domain.enums import Action, Rung, Stage
from tests.harness import (
    OFFICE,
    RU,
    CaseDriver,
    case_worker,
    make_filing,
    start_dev_env,
    write_as_a_failed_clock_task,
)
from tests.workflows.test_case_workflow import open_case
from workflows.contracts import ClockRecordInput, ClockRecordResult, RecordInput, case_workflow_id


async def _scheduled_records(c: CaseDriver) -> int:
    return sum(1 for e in await c.handle_history_events()
               if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
               and e.activity_task_scheduled_event_attributes.activity_type.name == "record_case_events")


async def _clock_results(c: CaseDriver) -> list[ClockRecordResult]:
    out = []
    for e in await c.handle_history_events():
        la = local_activity_result(e)
        if la is not None and la[0] == CLOCK_RECORD_ACTIVITY:
            out.append(decode(la[1], ClockRecordResult))
    return out


async def _first_rung_at(c: CaseDriver) -> datetime:
    state = await c.state()
    assert state.deadline is not None and state.deadline.escalation_schedule
    return state.deadline.escalation_schedule[0].fire_at


async def _past(env: WorkflowEnvironment, fire_at: datetime) -> None:
    """Let the test server's clock run a minute past `fire_at` (the first rung's time)."""
    await env.sleep(fire_at - await env.get_current_time() + timedelta(minutes=1))


async def _until(env: WorkflowEnvironment, probe, what: str) -> None:  # type: ignore[no-untyped-def]
    for _ in range(200):
        if await probe():
            return
        await env.sleep(timedelta(seconds=1))
    raise AssertionError(f"never happened: {what}")


async def test_a_woken_escalation_is_written_inside_its_task_and_the_auditor_reads_it_from_the_history(
    ts_env: WorkflowEnvironment, ts_client: Client, pool: asyncpg.Pool, task_queue: str
) -> None:
    async with case_worker(ts_client, pool, task_queue):
        c = await open_case(ts_env, ts_client, pool, task_queue, days=3)
        before = await _scheduled_records(c)
        fire_at = await _first_rung_at(c)
        await _past(ts_env, fire_at)
        await _until(ts_env, lambda: _has_event(c, "ESCALATED"), "the first rung")
        assert await _scheduled_records(c) == before, "the clock's write is no scheduled activity"
        written = [r for r in await _clock_results(c) if r.record is not None]
        assert [e.event for r in written for e in r.record.entries] == ["ESCALATED"]  # type: ignore[union-attr]
        row = (await c.ledger())[-1]
        assert row["event"] == "ESCALATED" and row["actor_role"] == "SYSTEM"
        assert await pool.fetch("SELECT * FROM outbox WHERE case_no = $1 AND seq = $2", c.case_no, row["seq"])
        verdict = await verify_case(pool, ts_client, c.case_no)
        assert verdict.history_checked and verdict.ok, [str(f) for f in verdict.findings]
        timeline = build_timeline(await _runs(ts_client, c))
        assert any(t.kind == "ESCALATION" and t.seq == row["seq"] for t in timeline), "the timeline shows it"


async def _has_event(c: CaseDriver, event: str) -> bool:
    return event in await c.events()


async def _runs(client: Client, c: CaseDriver):  # type: ignore[no-untyped-def]
    from audit.archive import load_histories

    return await load_histories(None, client, c.case_no)


async def test_a_task_that_failed_after_its_write_decides_again_at_the_written_time(
    ts_env: WorkflowEnvironment, ts_client: Client, pool: asyncpg.Pool, task_queue: str
) -> None:
    """The ledger keeps the first writer: the retried task's decision is taken again at the time
    the failed one decided at, so the ledger, the workflow's state and the history agree."""
    async with case_worker(ts_client, pool, task_queue):
        c = await open_case(ts_env, ts_client, pool, task_queue, days=3)
        fire_at = await _first_rung_at(c)
        failed_at = fire_at + timedelta(seconds=7)
        await write_as_a_failed_clock_task(pool, ts_client, await c.state(), failed_at)
        await _past(ts_env, fire_at)
        await _until(ts_env, lambda: _fired(c), "the first rung in the workflow's state")
        state = await c.state()
        assert state.escalation.fired[0].rung is Rung.NOTICE_LETTER and state.escalation.fired[0].at == failed_at
        results = await _clock_results(c)
        assert results[0].redecide_at == failed_at and results[0].record is None
        assert results[1].record is not None and results[1].inserted == 0  # the same rows, kept
        rows = [r for r in await c.ledger() if r["event"] == "ESCALATED"]
        assert len(rows) == 1 and rows[0]["at"] == failed_at
        assert await c.stage() is Stage.RECTIFYING and await _blocked(ts_client, c) is None
        verdict = await verify_case(pool, ts_client, c.case_no)
        assert verdict.ok, [str(f) for f in verdict.findings]


async def _fired(c: CaseDriver) -> bool:
    return bool((await c.state()).escalation.fired)


async def _blocked(client: Client, c: CaseDriver):  # type: ignore[no-untyped-def]
    return await client.get_workflow_handle(case_workflow_id(c.case_no)).query("blocked")


async def test_a_ledger_row_of_another_run_where_the_clock_writes_blocks_the_case_visibly(
    ts_env: WorkflowEnvironment, ts_client: Client, pool: asyncpg.Pool, task_queue: str
) -> None:
    async with case_worker(ts_client, pool, task_queue):
        c = await open_case(ts_env, ts_client, pool, task_queue, days=3)
        fire_at = await _first_rung_at(c)
        await write_as_a_failed_clock_task(pool, ts_client, await c.state(), fire_at, run_id="some-other-run")
        await _past(ts_env, fire_at)

        async def blocked() -> bool:
            return await _blocked(ts_client, c) is not None

        await _until(ts_env, blocked, "the case blocked")
        info = await _blocked(ts_client, c)
        assert info["error_type"] == LEDGER_DIVERGENCE and info["activity"] == CLOCK_RECORD_ACTIVITY, info
        assert "some-other-run" in info["message"], info
        assert (await c.state()).escalation.fired == [], "nothing of the refused decision is adopted"
        row = await pool.fetchrow("SELECT error_type FROM case_block WHERE case_no = $1", c.case_no)
        assert row is not None and row["error_type"] == LEDGER_DIVERGENCE


@pytest.mark.devserver
async def test_an_action_delivered_with_a_due_clock_comes_after_the_clocks_decision(
    pool: asyncpg.Pool, task_queue: str
) -> None:
    """The woken task also carries an action that arrived while no worker ran (as a retried task
    carries one that arrived after the failed attempt). The clock decides first, as a failed
    attempt would have: the rung that was due fires, then the unit's completion stops the ladder.
    On the dev server: the Java test server does not move its clock past a task nobody polls."""
    from worker import build_worker

    dev = await start_dev_env()
    try:
        client = dev.client
        async with build_worker(client, pool, Settings(), task_queue=task_queue):
            c = CaseDriver(client, pool, task_queue, make_filing(due=date.today() + timedelta(days=3)))
            assert (await c.file()).filed
            await c.do(Action.TRANSFER, OFFICE)
            await c.do(Action.ACKNOWLEDGE, RU)
            await c.complete_measures()
            fire_at = await _first_rung_at(c)
        # No worker: the timer fires on the server and its task waits, with the action beside it.
        handle = client.get_workflow_handle(case_workflow_id(c.case_no))
        await dev.fast_forward(handle, fire_at - datetime.now(UTC) + timedelta(minutes=1))  # type: ignore[attr-defined]
        action = asyncio.create_task(c.do(Action.SUBMIT_COMPLETION, RU, evidence=["doc:completion-report"]))
        await asyncio.sleep(2.0)
        assert not action.done()
        async with build_worker(client, pool, Settings(), task_queue=task_queue):
            result = await asyncio.wait_for(action, 90)
            assert result.stage is Stage.PRELIM_REVIEW
            events = await c.events()
            assert events.index("ESCALATED") < events.index("SUBMIT_COMPLETION"), events
            state = await c.state()
            assert [f.rung for f in state.escalation.fired] == [Rung.NOTICE_LETTER]
            verdict = await verify_case(pool, client, c.case_no)
            assert verdict.ok, [str(f) for f in verdict.findings]
            await handle.terminate("test finished")
    finally:
        await dev.shutdown()


async def test_other_content_at_the_time_the_ledger_holds_is_refused_not_decided_again(
    ts_env: WorkflowEnvironment, ts_client: Client, pool: asyncpg.Pool, task_queue: str
) -> None:
    """Deciding again at the stored time must give the stored rows; if it does not (the calendar
    changed between the attempts), nothing is written and the failure is non-retryable."""
    async with case_worker(ts_client, pool, task_queue):
        c = await open_case(ts_env, ts_client, pool, task_queue, days=3)
        at = await _first_rung_at(c)
        decision = await write_as_a_failed_clock_task(pool, ts_client, await c.state(), at)
        run_id = (await ts_client.get_workflow_handle(case_workflow_id(c.case_no)).describe()).run_id
        other = [decision.entries[0].model_copy(update={"reason": decision.entries[0].reason + "(另)"}),
                 *decision.entries[1:]]
        record = RecordInput(entries=other, notices=decision.notices,
                             projection=d.projection(decision.state, with_filing=False), workflow_run_id=run_id)
        with pytest.raises(ApplicationError) as refused:
            await ActivityEnvironment().run(CaseActivities(pool).record_clock_events,
                                            ClockRecordInput(record=record, decided_at=at))
        assert refused.value.type == LEDGER_DIVERGENCE and refused.value.non_retryable
        rows = await pool.fetch("SELECT reason FROM ledger WHERE case_no = $1 AND seq = $2",
                                c.case_no, decision.entries[0].seq)
        assert [r["reason"] for r in rows] == [decision.entries[0].reason]
