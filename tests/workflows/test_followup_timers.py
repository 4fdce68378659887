"""Issue 13 (milestones): measure milestones and the monthly progress report as timers, and
验收 refused while a measure is open — on the time-skipping test server with real PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import date, timedelta

import asyncpg
import pytest
import pytest_asyncio
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from domain.calendar import local_date
from domain.enums import Action, DeadlineKind, Rung, Stage
from domain.followup_model import TimerKind
from domain.model import DeadlineSpec, Measure, Milestone
from embedded import find_temporal_test_server
from tests.conftest import _SA_TYPES
from tests.harness import LEAD, LEAD2, OFFICE, RU, CaseDriver, case_worker, criteria, make_filing
from workflows.client import ActionRefusedError
from workflows.contracts import SEARCH_ATTRIBUTES


@pytest_asyncio.fixture(scope="module")
async def own_env() -> AsyncIterator[WorkflowEnvironment]:
    """A test server of this module's own: after many earlier tests in the session's shared server,
    its long time skips here stalled (RPC timeouts) on the loaded 2-core machine."""
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=find_temporal_test_server(), data_converter=pydantic_data_converter)
    await env.client.operator_service.add_search_attributes(AddSearchAttributesRequest(
        namespace=env.client.namespace, search_attributes={k: _SA_TYPES[v] for k, v in SEARCH_ATTRIBUTES.items()}))
    yield env
    await env.shutdown()


@pytest.fixture
def ts_env(own_env: WorkflowEnvironment) -> WorkflowEnvironment:
    return own_env


@pytest.fixture
def ts_client(own_env: WorkflowEnvironment) -> Client:
    return own_env.client


async def _today(env: WorkflowEnvironment) -> date:
    return local_date(await env.get_current_time())


async def _skip(env: WorkflowEnvironment, days: int) -> None:
    """Skip `days` of server time. On a loaded machine the test server's sleep RPC can time out
    while it is still skipping; then carry on from the server's clock until the target."""
    target = await env.get_current_time() + timedelta(days=days)
    for _ in range(20):
        left = target - await env.get_current_time()
        if left <= timedelta(0):
            return
        try:
            await env.sleep(min(left, timedelta(days=4)))
        except RPCError:
            await asyncio.sleep(1)
    raise AssertionError(f"the test server did not reach {target}")


async def _rectifying(c: CaseDriver) -> None:
    assert (await c.file()).filed
    await c.do(Action.TRANSFER, OFFICE)
    await c.do(Action.ACKNOWLEDGE, RU)
    assert await c.stage() is Stage.RECTIFYING


async def test_a_missed_milestone_is_reminded_then_escalated_and_a_done_measure_stops_its_milestones(
    ts_env: WorkflowEnvironment, ts_client: Client, pool: asyncpg.Pool, task_queue: str
) -> None:
    today = await _today(ts_env)
    filing = make_filing(due=today + timedelta(days=300)).model_copy(update={"measures": [
        Measure(seq=1, text="建设渗滤液收集处理设施", milestones=[Milestone(due_date=today + timedelta(days=21), what="主体工程完工")]),
        Measure(seq=2, text="开展生态修复", milestones=[Milestone(due_date=today + timedelta(days=45), what="复绿完成")]),
    ]})
    c = CaseDriver(ts_client, pool, task_queue, filing)
    async with case_worker(ts_client, pool, task_queue):
        await _rectifying(c)
        s = await c.state()
        assert s.followup is not None
        m1, m2 = s.followup.timer("M1.1"), s.followup.timer("M2.1")
        assert m1 is not None and m2 is not None and m1.due_date == today + timedelta(days=21)
        assert m1.remind_date is not None and m1.remind_date < m1.due_date
        assert [r.rung for r in m1.schedule] == [Rung.NOTICE_LETTER, Rung.WARNING, Rung.CIRCULAR]
        assert "FOLLOWUP_SCHEDULED" in await c.events()

        await c.do(Action.COMPLETE_MEASURE, RU, measure_seq=2, evidence=["doc:复绿验收报告"])
        await _skip(ts_env, 30)  # past M1.1's date and its first rungs

        rows = await pool.fetch("SELECT event, data FROM ledger WHERE case_no = $1 AND event LIKE 'MILESTONE_%' "
                                "ORDER BY seq", c.case_no)
        events = [(r["event"], r["data"]) for r in rows]
        assert events[0][0] == "MILESTONE_REMINDER" and '"M1.1"' in events[0][1]
        escalated = [d for e, d in events if e == "MILESTONE_ESCALATED"]
        assert escalated and all('"M1.1"' in d for d in escalated)  # M2.1 stopped with its measure
        assert '"NOTICE_LETTER"' in escalated[0]
        notices = await pool.fetch("SELECT recipient_unit, subject FROM outbox WHERE case_no = $1 "
                                   "AND subject LIKE '%措施节点逾期督办%'", c.case_no)
        assert {n["recipient_unit"] for n in notices} >= {RU.unit, "整改办"}
        s = await c.state()
        assert s.followup.timer("M2.1").stopped == "MEASURE_DONE"
        assert s.followup.timer("M1.1").fired[0] is Rung.NOTICE_LETTER
        proj = await c.projection()
        assert proj["measures_open"] == 1 and proj["milestones_overdue"] == 1


async def test_verification_is_refused_while_a_measure_is_open(
    ts_env: WorkflowEnvironment, ts_client: Client, pool: asyncpg.Pool, task_queue: str
) -> None:
    today = await _today(ts_env)
    c = CaseDriver(ts_client, pool, task_queue, make_filing(due=today + timedelta(days=90)))
    async with case_worker(ts_client, pool, task_queue):
        await _rectifying(c)
        with pytest.raises(ActionRefusedError, match="needs evidence"):
            await c.do(Action.COMPLETE_MEASURE, RU, measure_seq=1)
        await c.do(Action.COMPLETE_MEASURE, RU, measure_seq=1, evidence=["doc:渗滤液设施验收"])
        await c.do(Action.SUBMIT_COMPLETION, RU)  # allowed (policy submit_requires_measures_done off)
        await c.do(Action.PRELIM_PASS, LEAD2)
        await _skip(ts_env, 8)
        assert await c.stage() is Stage.CLOSURE_APPLICATION
        await c.do(Action.APPLY_CLOSURE, RU)

        with pytest.raises(ActionRefusedError) as refused:
            await c.do(Action.VERIFY_PASS, LEAD, criteria=criteria())
        assert refused.value.error_type == "InvalidTransitionError"
        assert "2. 开展生态修复" in refused.value.message and "1." not in refused.value.message.split(":")[2]
        assert await c.stage() is Stage.VERIFICATION
        n = await pool.fetchval("SELECT count(*) FROM refused_action WHERE case_no = $1", c.case_no)
        assert n >= 2

        await c.do(Action.VERIFY_FAIL, LEAD, reason="措施2未落实")
        await c.do(Action.COMPLETE_MEASURE, RU, measure_seq=2, evidence=["doc:生态修复验收"])
        await c.do(Action.SUBMIT_COMPLETION, RU)
        await c.do(Action.PRELIM_PASS, LEAD2)
        await _skip(ts_env, 8)
        await c.do(Action.APPLY_CLOSURE, RU)
        await c.do(Action.VERIFY_PASS, LEAD, criteria=criteria())
        assert await c.stage() is Stage.FILING
        assert (await c.projection())["measures_open"] == 0


async def test_an_ongoing_case_is_kept_moving_by_the_monthly_report_timer(
    ts_env: WorkflowEnvironment, ts_client: Client, pool: asyncpg.Pool, task_queue: str
) -> None:
    """持续推进 has no stage deadline; a missing monthly report reminds, then escalates (000:427)."""
    filing = make_filing().model_copy(update={"deadline": DeadlineSpec(kind=DeadlineKind.ONGOING, raw_zh="持续推进")})
    c = CaseDriver(ts_client, pool, task_queue, filing)
    async with case_worker(ts_client, pool, task_queue):
        await _rectifying(c)
        s = await c.state()
        assert s.deadline is None  # no stage timer at all
        reports = [t for t in s.followup.timers if t.kind is TimerKind.REPORT]
        assert len(reports) == 1
        first = reports[0]
        proj = await c.projection()
        assert proj["report_due_date"] == first.due_date and proj["report_period"] == first.period

        days = (first.due_date - await _today(ts_env)).days + 12
        await _skip(ts_env, days)
        events = await c.events()
        assert "REPORT_REMINDER" in events and "REPORT_ESCALATED" in events
        assert events.index("REPORT_REMINDER") < events.index("REPORT_ESCALATED")

        await c.do(Action.REPORT_PROGRESS, RU, reason="本月完成排查并整改问题12处")
        s = await c.state()
        assert s.followup.timer(first.key).stopped == "REPORTED"
        nxt = [t for t in s.followup.timers if t.kind is TimerKind.REPORT and t.stopped is None]
        assert len(nxt) == 1 and nxt[0].period > first.period
        proj = await c.projection()
        assert proj["report_last_period"] is not None and proj["report_due_date"] == nxt[0].due_date
        row = await pool.fetchrow("SELECT this_month_in FROM case_report_status WHERE case_no = $1", c.case_no)
        assert row is not None
