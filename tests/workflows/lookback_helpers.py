"""Helpers of the look-back tests: closed cases on the time-skipping server, a campaign and its findings."""

from __future__ import annotations

import asyncio
import uuid
from datetime import date, timedelta

import asyncpg
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from domain.calendar import local_date
from domain.enums import Action, Stage
from domain.lookback import CampaignFinding, CampaignSpec, FindingRequest, SelectionCriteria, SelectRequest
from domain.model import Actor
from domain.policy import Policy
from tests.harness import LEAD, LEAD2, OFFICE, RU, CaseDriver, criteria, make_filing
from workflows import lookback_client as lc


async def today(env: WorkflowEnvironment) -> date:
    return local_date(await env.get_current_time())


async def closed_cases(env: WorkflowEnvironment, client: Client, pool: asyncpg.Pool, task_queue: str, n: int,
                       programme_id: str, policy: Policy | None = None, prefix: str = "LB") -> list[CaseDriver]:
    """`n` feedback problems of one programme driven to CLOSED together (one posting wait for all)."""
    due = await today(env) + timedelta(days=60)
    tag = uuid.uuid4().hex[:6]
    drivers = []
    for i in range(n):
        f = make_filing(case_no=f"{prefix}-{tag}-{i:02d}", due=due).model_copy(update={"programme_id": programme_id})
        c = CaseDriver(client, pool, task_queue, f)
        assert (await c.file(policy=policy)).filed
        drivers.append(c)

    async def to_posting(c: CaseDriver) -> None:
        await c.do(Action.TRANSFER, OFFICE)
        await c.do(Action.ACKNOWLEDGE, RU)
        await c.complete_measures()
        await c.do(Action.SUBMIT_COMPLETION, RU, evidence=["doc:completion-report"])
        await c.do(Action.PRELIM_PASS, LEAD2)

    await asyncio.gather(*(to_posting(c) for c in drivers))
    await env.sleep(timedelta(days=8))  # 7 calendar days of 公示, then end of day

    async def to_closed(c: CaseDriver) -> None:
        assert await c.stage() is Stage.CLOSURE_APPLICATION
        await c.do(Action.APPLY_CLOSURE, RU)
        await c.do(Action.VERIFY_PASS, LEAD, criteria=criteria())
        await c.do(Action.RECORD_FILING, OFFICE)
        assert await c.stage() is Stage.CLOSED

    await asyncio.gather(*(to_closed(c) for c in drivers))
    return drivers


async def new_campaign(env: WorkflowEnvironment, client: Client, task_queue: str, programme_id: str,
                       days: int = 20, unannounced: bool = True) -> str:
    cid = f"LB-{uuid.uuid4().hex[:8]}"
    start = await today(env)
    spec = CampaignSpec(campaign_id=cid, name="第二轮督察整改回头看", basis="对已整改销号问题适时开展'回头看' (000:446)",
                        unannounced=unannounced, start=start, end=start + timedelta(days=days),
                        programme_id=programme_id)
    ok, why = await lc.create_campaign(client, spec, OFFICE, task_queue, office_unit=OFFICE.unit)
    assert ok, why
    return cid


def rid() -> str:
    return f"req-{uuid.uuid4().hex}"


async def select_all(client: Client, cid: str, pool: asyncpg.Pool, **crit: object) -> lc.CampaignResult:
    return await lc.select_cases(client, cid, SelectRequest(actor=OFFICE, request_id=rid(),
                                                            criteria=SelectionCriteria(**crit)), pool=pool)


async def find(client: Client, cid: str, pool: asyncpg.Pool, case_no: str, finding: CampaignFinding,
               actor: Actor = LEAD, **kw: object) -> lc.CampaignResult:
    req = FindingRequest(actor=actor, request_id=rid(), case_no=case_no, finding=finding,
                         evidence=kw.pop("evidence", "现场核查: 设施运行正常"), **kw)  # type: ignore[arg-type]
    return await lc.record_finding(client, cid, req, pool=pool)
