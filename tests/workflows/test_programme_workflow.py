"""InspectionProgrammeWorkflow on the Java time-skipping test server, real activities and PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import asyncpg
import pytest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from activities.notices import NoticeSender, SmtpConfig
from domain.calendar import local_date
from domain.enums import Action, Stage
from domain.programme import ProgrammeAction, ProgrammePolicy, ProgrammeStage
from tests.harness import LEAD, OFFICE, RU, CaseDriver, case_worker, criteria, make_filing
from tests.programme_harness import ProgrammeDriver, make_spec
from workflows import programme_client as pc
from workflows.client import ActionRefusedError
from workflows.programme_workflow import ProgrammeWorkflow

# A check of the case counts every 30 days keeps these long skips short.
SLOW_CHECKS = ProgrammePolicy(progress_check_hours=24 * 30)


async def spec_now(env: WorkflowEnvironment):  # type: ignore[no-untyped-def]
    """A programme whose feedback came today (on the test server's clock)."""
    return make_spec(feedback=local_date(await env.get_current_time()))


async def test_six_month_report_is_reminded_then_escalated(
    ts_env: WorkflowEnvironment, ts_client: Client, pool: asyncpg.Pool, task_queue: str
) -> None:
    async with case_worker(ts_client, pool, task_queue):
        p = ProgrammeDriver(ts_client, pool, task_queue, await spec_now(ts_env))
        try:
            await p.create(policy=SLOW_CHECKS)
            s = await p.until(lambda s: s.report_timer is not None, "set its report timer")
            assert s.stage is ProgrammeStage.PLAN_SUBMITTED
            assert s.plan_timer is not None and s.plan_timer.on_time is True
            due = s.report_timer.due_date  # type: ignore[union-attr]
            await ts_env.sleep(timedelta(days=179))
            assert (await p.events()).count("REMINDER") == 2  # 30 and 7 days before
            await ts_env.sleep(timedelta(days=40))
            s = await p.until(lambda s: s.report_timer.level() >= 3, "escalated to 通报")  # type: ignore[union-attr]
            events = await p.events()
            assert events[:4] == ["PROGRAMME_CREATED", "DEADLINE_SET", "PLAN_SUBMITTED", "DEADLINE_SET"]
            rungs = await pool.fetch(
                "SELECT data->>'rung' AS rung, at FROM programme_ledger WHERE programme_id = $1 AND event = 'ESCALATED'"
                " ORDER BY seq", p.pid)
            assert [r["rung"] for r in rungs][:3] == ["NOTICE_LETTER", "WARNING", "CIRCULAR"]
            assert all(local_date(r["at"]) > due for r in rungs)
            units = {r["recipient_unit"] for r in await pool.fetch(
                "SELECT recipient_unit FROM outbox WHERE programme_id = $1", p.pid)}
            assert units == {"整改办", "市委督查室", "市政府督查室"}
            await NoticeSender(pool, SmtpConfig()).drain()  # the same sender delivers them to the inbox
            inbox = await pool.fetch("SELECT unit, case_no FROM inbox WHERE case_no = $1", f"programme:{p.pid}")
            assert {r["unit"] for r in inbox} == units
            proj = await pool.fetchrow("SELECT * FROM programme_projection WHERE programme_id = $1", p.pid)
            assert proj["report_due_date"] == due and proj["escalation_level"] >= 3
            # the chain: each row's prev_hash is the previous row's hash
            rows = await pool.fetch("SELECT prev_hash, row_hash FROM programme_ledger WHERE programme_id = $1"
                                    " ORDER BY seq", p.pid)
            assert all(b["prev_hash"] == a["row_hash"] for a, b in zip(rows, rows[1:], strict=False))
            # late report: submitted, the climbing stops
            await p.do(ProgrammeAction.SUBMIT_REPORT, reference="整改落实情况报告-1", evidence=["doc:report-1"])
            events = await p.events()
            assert events[-2:] == ["SIX_MONTH_REPORT_SUBMITTED", "ESCALATION_STOPPED"]
        finally:
            await p.end()


async def test_report_in_time_is_not_escalated(
    ts_env: WorkflowEnvironment, ts_client: Client, pool: asyncpg.Pool, task_queue: str
) -> None:
    async with case_worker(ts_client, pool, task_queue):
        p = ProgrammeDriver(ts_client, pool, task_queue, await spec_now(ts_env))
        try:
            await p.create(with_plan=False, policy=SLOW_CHECKS)
            await p.until(lambda s: s.plan_timer is not None, "set its plan deadline")
            with pytest.raises(ActionRefusedError) as e:  # refused by the validator: nothing recorded
                await p.do(ProgrammeAction.SUBMIT_REPORT)
            assert e.value.error_type == "InvalidTransitionError"
            with pytest.raises(ActionRefusedError) as e:
                await p.do(ProgrammeAction.SUBMIT_PLAN, actor=RU)
            assert e.value.error_type == "NotAuthorizedError"
            await p.do(ProgrammeAction.SUBMIT_PLAN, reference="x办发〔2026〕2号")
            await ts_env.sleep(timedelta(days=100))
            r = await p.do(ProgrammeAction.SUBMIT_REPORT, reference="整改落实情况报告")
            assert r.stage is ProgrammeStage.REPORTED
            await ts_env.sleep(timedelta(days=150))
            events = await p.events()
            assert "ESCALATED" not in events and "REMINDER" not in events
            s = await p.state()
            assert s.report_timer is not None and s.report_timer.on_time is True
            assert s.stage is ProgrammeStage.REPORTED
        finally:
            await p.end()


async def test_programme_ends_when_its_last_case_closes(
    ts_env: WorkflowEnvironment, ts_client: Client, pool: asyncpg.Pool, task_queue: str
) -> None:
    async with case_worker(ts_client, pool, task_queue):
        p = ProgrammeDriver(ts_client, pool, task_queue, await spec_now(ts_env))
        await p.create()
        await p.until(lambda s: s.report_timer is not None, "set its report timer")
        today = (await ts_env.get_current_time()).date()
        cases = []
        for _ in range(2):
            f = make_filing(due=today + timedelta(days=60)).model_copy(update={"programme_id": p.pid})
            c = CaseDriver(ts_client, pool, task_queue, f)
            assert (await c.file()).filed
            cases.append(c)
        for c in cases:  # the case records its FILED row (and projection) just after its start
            for _ in range(100):
                if await c.projection() is not None:
                    break
                await asyncio.sleep(0.1)
        await pc.refresh_programme(ts_client, p.pid)  # a case changed: read the counts now
        await p.until(lambda s: s.counts.total == 2, "counted its two cases")

        async def close(c: CaseDriver) -> None:
            await c.do(Action.TRANSFER, OFFICE)
            await c.do(Action.ACKNOWLEDGE, RU)
            await c.complete_measures()
            await c.do(Action.SUBMIT_COMPLETION, RU, evidence=["doc:completion"])
            await c.do(Action.PRELIM_PASS, LEAD)
            await ts_env.sleep(timedelta(days=8))
            await c.do(Action.APPLY_CLOSURE, RU)
            await c.do(Action.VERIFY_PASS, LEAD, criteria=criteria())
            await c.do(Action.RECORD_FILING, OFFICE)
            assert await c.stage() is Stage.CLOSED

        await close(cases[0])
        await ts_env.sleep(timedelta(days=2))  # daily counts check
        s = await p.until(lambda s: s.counts.done == 1, "counted the first closure")
        assert s.stage is ProgrammeStage.PLAN_SUBMITTED
        await close(cases[1])
        handle = ts_client.get_workflow_handle_for(ProgrammeWorkflow.run, p.handle.id)
        await ts_env.sleep(timedelta(days=2))
        result = await handle.result()
        assert result.stage is ProgrammeStage.COMPLETED
        events = await p.events()
        assert events[-1] == "PROGRAMME_COMPLETED"
        seen = [r["c"] for r in await pool.fetch(
            "SELECT data->'by_stage' AS c FROM programme_ledger WHERE programme_id = $1 AND event = 'PROGRESS'"
            " ORDER BY seq", p.pid)]
        assert all(a != b for a, b in zip(seen, seen[1:], strict=False))  # a row only when the counts changed
        proj = await pool.fetchrow("SELECT stage, total_cases, done_cases, completed_at FROM programme_projection"
                                   " WHERE programme_id = $1", p.pid)
        assert (proj["stage"], proj["total_cases"], proj["done_cases"]) == ("COMPLETED", 2, 2)
        assert proj["completed_at"] is not None
