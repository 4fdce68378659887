"""Issue 14: an archived case comes back as a linked new run (workflows/reopen.py).

Real Temporal (Java time-skipping test server), real worker and activities, real PostgreSQL.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import date, timedelta

import asyncpg
import pytest
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.testing import WorkflowEnvironment

from activities.reopen_activities import load_archived_state
from audit.archive import load_histories
from audit.verify import verify_case
from domain.enums import Action, Stage
from domain.policy import Policy
from tests.harness import _STARTED, LEAD, OFFICE, RU, CaseDriver, case_worker, criteria
from tests.workflows.test_case_workflow import open_case, through_posting, today
from workflows.client import ActionRefusedError
from workflows.reopen import latest_run, reopen_case

WINDOW = 30  # look-back window of these cases (days; 365 by default)


async def closed_case(env: WorkflowEnvironment, client: Client, pool: asyncpg.Pool, task_queue: str) -> CaseDriver:
    c = await open_case(env, client, pool, task_queue, days=30, policy=Policy(lookback_window_days=WINDOW))
    await through_posting(env, c)
    await c.do(Action.APPLY_CLOSURE, RU)
    await c.do(Action.VERIFY_PASS, LEAD, criteria=criteria())
    await c.do(Action.RECORD_FILING, OFFICE)
    assert await c.stage() is Stage.CLOSED
    return c


async def archived_case(env: WorkflowEnvironment, client: Client, pool: asyncpg.Pool, task_queue: str) -> tuple[
        CaseDriver, str]:
    """A case closed, then left past its look-back window: ARCHIVED, its run completed."""
    c = await closed_case(env, client, pool, task_queue)
    await env.sleep(timedelta(days=WINDOW + 2))
    desc = await latest_run(client, f"case-{c.case_no}")
    assert desc.status is WorkflowExecutionStatus.COMPLETED
    assert (await c.events())[-1] == "ARCHIVED"
    return c, desc.run_id


def rid() -> str:
    return f"reopen-{uuid.uuid4().hex}"


async def refusals(pool: asyncpg.Pool, case_no: str) -> list[asyncpg.Record]:
    return await pool.fetch("SELECT * FROM refused_action WHERE case_no = $1 ORDER BY request_id", case_no)


async def test_archived_case_is_reopened_as_a_linked_new_run(
    ts_env: WorkflowEnvironment, ts_client: Client, pool: asyncpg.Pool, task_queue: str
) -> None:
    """Archived → reopened: new run, RECTIFYING, cycle+1, reopen_count+1, the new due date, the
    ledger chain going on across both runs, the archived run named in the REOPEN row."""
    async with case_worker(ts_client, pool, task_queue):
        c, old_run = await archived_case(ts_env, ts_client, pool, task_queue)
        kept = await load_archived_state(pool, c.case_no, old_run)
        assert kept is not None and kept.stage is Stage.ARCHIVED
        rows_before = await c.ledger()
        due = await today(ts_env) + timedelta(days=60)
        res = await reopen_case(ts_client, pool, case_no=c.case_no, actor=OFFICE, new_due_date=due,
                                lookback_finding="REBOUND", reason="回头看发现问题反弹", request_id=rid())
        assert res.stage is Stage.RECTIFYING and res.due_date == due.isoformat()
        desc = await latest_run(ts_client, f"case-{c.case_no}")
        assert desc.status is WorkflowExecutionStatus.RUNNING and desc.run_id != old_run
        _STARTED.append(f"case-{c.case_no}")
        state = await c.state()
        assert state.stage is Stage.RECTIFYING
        assert (state.cycle, state.reopen_count) == (kept.cycle + 1, kept.reopen_count + 1)
        assert state.deadline is not None and state.deadline.due_date == due and state.runs == kept.runs + 1
        rows = await c.ledger()
        assert [r["seq"] for r in rows] == list(range(1, len(rows) + 1))  # one ledger, seq goes on
        reopen = rows[len(rows_before)]
        assert reopen["event"] == "REOPEN" and reopen["from_stage"] == "ARCHIVED" and reopen["to_stage"] == "RECTIFYING"
        assert reopen["prev_hash"] == rows_before[-1]["row_hash"]  # the chain continues
        data = reopen["data"] if isinstance(reopen["data"], dict) else json.loads(reopen["data"])
        assert data["previous_run_id"] == old_run and data["lookback_finding"] == "REBOUND"
        assert reopen["workflow_run_id"] == desc.run_id
        proj = await c.projection()
        assert proj["stage"] == "RECTIFYING" and proj["cycle"] == state.cycle
        # Audit: both runs found (linked by the reopen, not by continue-as-new), chain and cross-check clean.
        runs = await load_histories(None, ts_client, c.case_no)
        assert [r.run_id for r in runs] == [old_run, desc.run_id] and runs[1].reopened_from == old_run
        verdict = await verify_case(pool, ts_client, c.case_no)
        assert verdict.runs == 2 and verdict.history_checked
        assert verdict.findings == [], [f.as_dict() for f in verdict.findings]
        # The new run goes on like any case: the unit can work on it.
        await c.do(Action.REPORT_PROGRESS, RU, reason="重新整改进展")


async def test_reopen_of_an_archived_case_is_refused_before_anything_starts_and_only_once(
    ts_env: WorkflowEnvironment, ts_client: Client, pool: asyncpg.Pool, task_queue: str
) -> None:
    """Unauthorised or malformed: refused, recorded, nothing started. Two concurrent reopens:
    exactly one new cycle; a retry of the winning request gets its answer again."""
    async with case_worker(ts_client, pool, task_queue):
        c, old_run = await archived_case(ts_env, ts_client, pool, task_queue)
        due = await today(ts_env) + timedelta(days=60)
        bad = [(RU, "REBOUND", "NotAuthorizedError"), (LEAD, "REBOUND", "NotAuthorizedError"),
               (OFFICE, "SOMETHING", "MissingInputError")]
        for actor, finding, error_type in bad:
            with pytest.raises(ActionRefusedError) as refused:
                await reopen_case(ts_client, pool, case_no=c.case_no, actor=actor, new_due_date=due,
                                  lookback_finding=finding, reason="回头看", request_id=rid())
            assert refused.value.error_type == error_type
        with pytest.raises(ActionRefusedError) as past:  # checked by the client: nothing started
            await reopen_case(ts_client, pool, case_no=c.case_no, actor=OFFICE,
                              new_due_date=date.today() - timedelta(days=1),
                              lookback_finding="REBOUND", reason="回头看", request_id=rid())
        assert past.value.error_type == "InvalidDeadlineError"
        recorded = await refusals(pool, c.case_no)
        assert sorted(r["error_type"] for r in recorded) == sorted(
            ["NotAuthorizedError", "NotAuthorizedError", "MissingInputError", "InvalidDeadlineError"])
        desc = await latest_run(ts_client, f"case-{c.case_no}")
        assert desc.status is WorkflowExecutionStatus.COMPLETED and desc.run_id == old_run  # nothing started
        events = await c.events()
        assert events[-1] == "ARCHIVED"

        # The new run checks again with its own clock (here the test server's, a year ahead of the
        # client's): refused there, it records nothing and ends ARCHIVED again; the refusal is recorded.
        late = rid()
        with pytest.raises(ActionRefusedError) as in_run:
            await reopen_case(ts_client, pool, case_no=c.case_no, actor=OFFICE,
                              new_due_date=date.today() + timedelta(days=2),
                              lookback_finding="REBOUND", reason="回头看", request_id=late)
        assert in_run.value.error_type == "InvalidDeadlineError"
        assert any(r["request_id"] == late for r in await refusals(pool, c.case_no))
        refused_run = await latest_run(ts_client, f"case-{c.case_no}")
        ended = await ts_client.get_workflow_handle(f"case-{c.case_no}", run_id=refused_run.run_id).result()
        assert ended["stage"] == "ARCHIVED" and "InvalidDeadlineError" in ended["reopen_refused"]
        refused_run = await latest_run(ts_client, f"case-{c.case_no}")
        assert refused_run.status is WorkflowExecutionStatus.COMPLETED and refused_run.run_id != old_run
        assert await c.events() == events

        first, second = rid(), rid()
        outcomes = await asyncio.gather(
            *(reopen_case(ts_client, pool, case_no=c.case_no, actor=OFFICE, new_due_date=due,
                          lookback_finding="NOT_IN_PLACE", reason="回头看发现整改不到位", request_id=r)
              for r in (first, second)),
            return_exceptions=True,
        )
        _STARTED.append(f"case-{c.case_no}")
        won = [o for o in outcomes if not isinstance(o, BaseException)]
        lost = [o for o in outcomes if isinstance(o, BaseException)]
        assert len(won) == 1 and len(lost) == 1, outcomes
        assert isinstance(lost[0], ActionRefusedError)
        events = await c.events()
        assert events.count("REOPEN") == 1
        state = await c.state()
        assert state.reopen_count == 1 and state.stage is Stage.RECTIFYING
        winner = first if not isinstance(outcomes[0], BaseException) else second
        again = await reopen_case(ts_client, pool, case_no=c.case_no, actor=OFFICE, new_due_date=due,
                                  lookback_finding="NOT_IN_PLACE", reason="回头看发现整改不到位", request_id=winner)
        assert again.stage is Stage.RECTIFYING and again.seq >= won[0].seq
        assert (await c.events()).count("REOPEN") == 1
        loser = second if winner == first else first
        assert any(r["request_id"] == loser for r in await refusals(pool, c.case_no))
        runs = await load_histories(None, ts_client, c.case_no)
        assert [r.run_id for r in runs][:2] == [old_run, refused_run.run_id] and len(runs) == 3
        verdict = await verify_case(pool, ts_client, c.case_no)
        assert verdict.runs == 3 and verdict.findings == [], [f.as_dict() for f in verdict.findings]


async def test_reopen_case_on_a_live_closed_case_sends_the_ordinary_reopen(
    ts_env: WorkflowEnvironment, ts_client: Client, pool: asyncpg.Pool, task_queue: str
) -> None:
    """Within the look-back window the same entry point reopens the running case (same run)."""
    async with case_worker(ts_client, pool, task_queue):
        c = await closed_case(ts_env, ts_client, pool, task_queue)
        run = (await latest_run(ts_client, f"case-{c.case_no}")).run_id
        with pytest.raises(ActionRefusedError) as refused:
            await reopen_case(ts_client, pool, case_no=c.case_no, actor=RU,
                              new_due_date=await today(ts_env) + timedelta(days=40),
                              lookback_finding="REBOUND", reason="x", request_id=rid())
        assert refused.value.error_type == "NotAuthorizedError"
        due = await today(ts_env) + timedelta(days=40)
        res = await reopen_case(ts_client, pool, case_no=c.case_no, actor=OFFICE, new_due_date=due,
                                lookback_finding="REBOUND", reason="回头看发现污染反弹", request_id=rid())
        assert res.stage is Stage.RECTIFYING and res.due_date == due.isoformat()
        assert (await latest_run(ts_client, f"case-{c.case_no}")).run_id == run
        state = await c.state()
        assert state.reopen_count == 1 and state.cycle == 2
        reopen = [r for r in await c.ledger() if r["event"] == "REOPEN"][0]
        assert reopen["from_stage"] == "CLOSED"
        with pytest.raises(ActionRefusedError) as unknown:
            await reopen_case(ts_client, pool, case_no="NO-SUCH-CASE", actor=OFFICE, new_due_date=due,
                              lookback_finding="REBOUND", reason="x", request_id=rid())
        assert unknown.value.error_type == "CaseNotFoundError"
