"""Test harness: actors, filings, and a `CaseDriver` that acts on a real case workflow."""

from __future__ import annotations

import uuid
from contextlib import asynccontextmanager
from datetime import date, datetime
from typing import Any

import asyncpg
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.service import RPCError
from temporalio.testing import ActivityEnvironment, TimeSkippingConfig, WorkflowEnvironment
from temporalio.worker import Worker

from activities.case_activities import CaseActivities
from config import Settings
from domain import decide as d
from domain.enums import Action, CaseKind, DeadlineKind, Role, Stage
from domain.model import (
    ActionRequest,
    Actor,
    CaseFiling,
    CaseState,
    DeadlineSpec,
    Measure,
)
from domain.policy import Policy
from embedded import find_temporal_cli
from workflows import client as ops
from workflows.contracts import (
    SEARCH_ATTRIBUTE_KEYS,
    ActionResult,
    ClockRecordInput,
    RecordInput,
    case_workflow_id,
)

_STARTED: list[str] = []

OFFICE = Actor(user_id="office-zhang", role=Role.RECTIFICATION_OFFICE, unit="整改办")
RU = Actor(user_id="ru-li", role=Role.RESPONSIBLE_UNIT, unit="蓝山县人民政府")
OTHER_RU = Actor(user_id="ru-wang", role=Role.RESPONSIBLE_UNIT, unit="宁远县人民政府")
LEAD = Actor(user_id="lead-chen", role=Role.LEAD_SUPERVISOR, unit="市生态环境局")
LEAD2 = Actor(user_id="lead-zhao", role=Role.LEAD_SUPERVISOR, unit="市水利局")
PUBLIC = Actor(user_id="citizen-1", role=Role.PUBLIC, unit="")
DISCIPLINE = Actor(user_id="jw-sun", role=Role.DISCIPLINE_COMMISSION, unit="纪委监委")
AUDITOR = Actor(user_id="audit-qian", role=Role.AUDITOR, unit="审计组")
SUPERVISION = Actor(user_id="dcs-zhou", role=Role.SUPERVISION_OFFICE, unit="市委督查室")


def make_filing(
    case_no: str | None = None,
    kind: CaseKind = CaseKind.FEEDBACK_PROBLEM,
    due: date | None = None,
    long_term: bool = False,
    ladder: str = "canonical",
) -> CaseFiling:
    deadline = None
    if due is not None:
        kind_d = DeadlineKind.DATE_THEN_LONG_TERM if long_term else DeadlineKind.DATE
        deadline = DeadlineSpec(kind=kind_d, due_date=due, long_term=long_term, raw_zh=f"{due:%Y年%m月%d日}")
    return CaseFiling(
        case_no=case_no or f"T-{uuid.uuid4().hex[:10]}",
        kind=kind,
        title="湘江源头尾矿库污染治理不到位",
        problem="尾矿库渗滤液直排",
        target="完成尾矿库污染治理设施建设改造",
        measures=[Measure(seq=1, text="建设渗滤液收集处理设施"), Measure(seq=2, text="开展生态修复")],
        responsible_units=[RU.unit],
        lead_supervising_units=[LEAD.unit, LEAD2.unit],
        deadline=deadline,
        complaint="群众举报某企业夜间偷排废水" if kind is CaseKind.PETITION else "",
        inspection_round="第二轮中央生态环境保护督察",
        ladder_profile=ladder,
    )


def criteria(all_met: bool = True) -> dict[str, Any]:
    def c(met: bool) -> dict[str, Any]:
        return {"met": met, "evidence": ["doc:site-check-2026-001"] if met else []}

    return {
        "eco_restored": c(True),
        "pollution_eliminated": c(all_met),
        "public_satisfied": c(True),
    }


@asynccontextmanager
async def case_worker(client: Client, pool: asyncpg.Pool, task_queue: str, settings: Settings | None = None):
    """A real worker (real activities, real PostgreSQL) on its own task queue."""
    from worker import build_worker

    w: Worker = build_worker(client, pool, settings or Settings(), task_queue=task_queue)
    async with w:
        try:
            yield w
        finally:
            await end_started_cases(client)


async def end_started_cases(client: Client) -> None:
    """The time-skipping server cannot skip past timers of workflows nobody polls for: end a
    test's cases before its worker goes away."""
    while _STARTED:
        wid = _STARTED.pop()
        try:
            await client.get_workflow_handle(wid).terminate("test finished")
        except RPCError:
            pass  # already closed


class CaseDriver:
    """Drives one case through the real workflow, like the admin tool would."""

    def __init__(self, client: Client, pool: asyncpg.Pool, task_queue: str, filing: CaseFiling) -> None:
        self.client, self.pool, self.task_queue, self.filing = client, pool, task_queue, filing

    @property
    def case_no(self) -> str:
        return self.filing.case_no

    async def file(self, policy: Policy | None = None) -> ops.FilingOutcome:
        outcome = await ops.file_case(self.client, self.filing, OFFICE, self.task_queue, policy=policy or Policy())
        if outcome.filed:
            _STARTED.append(f"case-{self.case_no}")
        return outcome

    async def do(self, action: Action, actor: Actor, **fields: Any) -> ActionResult:
        req = ActionRequest(action=action, actor=actor, request_id=f"req-{uuid.uuid4().hex}", **fields)
        return await ops.act(self.client, self.case_no, req, pool=self.pool)

    async def complete_measures(self, actor: Actor = RU) -> None:
        """Mark every open measure done with an evidence reference (验收 needs them, issue 13)."""
        from domain.milestones import open_measures

        for m in open_measures(await self.state()):
            await self.do(Action.COMPLETE_MEASURE, actor, measure_seq=m.seq, evidence=[f"doc:measure-{m.seq}-report"])

    async def state(self) -> CaseState:
        return await ops.get_state(self.client, self.case_no)

    async def stage(self) -> Stage:
        return (await self.state()).stage

    async def ledger(self) -> list[asyncpg.Record]:
        return await self.pool.fetch("SELECT * FROM ledger WHERE case_no = $1 ORDER BY seq", self.case_no)

    async def events(self) -> list[str]:
        return [r["event"] for r in await self.ledger()]

    async def projection(self) -> asyncpg.Record | None:
        return await self.pool.fetchrow("SELECT * FROM case_projection WHERE case_no = $1", self.case_no)

    async def handle_history_events(self) -> list[Any]:
        h = self.client.get_workflow_handle(f"case-{self.case_no}")
        return [e async for e in h.fetch_history_events()]


async def start_dev_env() -> WorkflowEnvironment:
    """The real dev server with its (experimental) per-workflow time skipping.

    Cases run in real time; `env.fast_forward(handle, duration)` skips one
    case's clock ahead by exactly `duration` when a test needs it.
    """
    return await WorkflowEnvironment.start_time_skipping_v2(
        ts_config=TimeSkippingConfig(enabled=False),
        dev_server_existing_path=find_temporal_cli(),
        dev_server_extra_args=["--dynamic-config-value", "frontend.WorkflowTimeSkippingEnabled=true"],
        search_attributes=SEARCH_ATTRIBUTE_KEYS,
        data_converter=pydantic_data_converter,
        ui=False,
    )


async def write_as_a_failed_clock_task(pool: asyncpg.Pool, client: Client, state: CaseState, at: datetime,
                                  run_id: str | None = None) -> d.Decision:
    """What a woken task that decided at `at` and failed after its local activity left behind."""
    decision = d.on_wakeup(state, at)
    assert decision is not None and decision.deadline_request is None
    run_id = run_id or (await client.get_workflow_handle(case_workflow_id(state.case_no)).describe()).run_id
    record = RecordInput(entries=decision.entries, notices=decision.notices,
                         projection=d.projection(decision.state, with_filing=False), workflow_run_id=run_id)
    done = await ActivityEnvironment().run(
        CaseActivities(pool).record_clock_events, ClockRecordInput(record=record, decided_at=at))
    assert done.inserted == len(decision.entries) and done.redecide_at is None
    return decision
