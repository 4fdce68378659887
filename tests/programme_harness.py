"""Test harness for programmes: a spec, a driver acting on the real programme workflow."""

from __future__ import annotations

import asyncio
import uuid
from datetime import date
from typing import Any

import asyncpg
from temporalio.client import Client
from temporalio.service import RPCError

from domain.model import Actor
from domain.programme import (
    ProgrammeAction,
    ProgrammeActResult,
    ProgrammePolicy,
    ProgrammeRequest,
    ProgrammeSpec,
    ProgrammeState,
    programme_workflow_id,
)
from tests.harness import OFFICE
from workflows import programme_client as pc

ROUND = "第二轮中央生态环境保护督察"


def make_spec(programme_id: str | None = None, feedback: date | None = None, **kw: Any) -> ProgrammeSpec:
    base: dict[str, Any] = dict(
        programme_id=programme_id or f"P-{uuid.uuid4().hex[:8]}", name="xx市第二轮督察反馈问题整改方案",
        inspection_round=ROUND, locality="xx市", counties=["蓝山县", "宁远县", "祁阳市"],
        feedback_date=feedback or date(2026, 1, 5), plan_text="十七项反馈问题逐项整改")
    base.update(kw)
    return ProgrammeSpec(**base)


def plan_request(ref: str = "x办发〔2026〕1号") -> ProgrammeRequest:
    return ProgrammeRequest(action=ProgrammeAction.SUBMIT_PLAN, actor=OFFICE, request_id=f"plan-{uuid.uuid4().hex}",
                            reference=ref)


class ProgrammeDriver:
    def __init__(self, client: Client, pool: asyncpg.Pool, task_queue: str, spec: ProgrammeSpec) -> None:
        self.client, self.pool, self.task_queue, self.spec = client, pool, task_queue, spec

    @property
    def pid(self) -> str:
        return self.spec.programme_id

    @property
    def handle(self):  # type: ignore[no-untyped-def]
        return self.client.get_workflow_handle(programme_workflow_id(self.pid))

    async def create(self, with_plan: bool = True, policy: ProgrammePolicy | None = None) -> None:
        ok, why = await pc.create_programme(self.client, self.spec, OFFICE, self.task_queue,
                                            submit_plan=plan_request() if with_plan else None,
                                            policy=policy or ProgrammePolicy())
        assert ok, why

    async def do(self, action: ProgrammeAction, actor: Actor = OFFICE, reference: str = "ref-1",
                 **kw: Any) -> ProgrammeActResult:
        req = ProgrammeRequest(action=action, actor=actor, request_id=f"req-{uuid.uuid4().hex}",
                               reference=reference, **kw)
        return await pc.act_programme(self.client, self.pid, req)

    async def state(self) -> ProgrammeState:
        for _ in range(100):
            try:
                return await pc.programme_state(self.client, self.pid)
            except Exception:  # still being created
                await asyncio.sleep(0.1)
        return await pc.programme_state(self.client, self.pid)

    async def until(self, check: Any, what: str, tries: int = 150) -> ProgrammeState:
        for _ in range(tries):
            s = await self.state()
            if check(s):
                return s
            await asyncio.sleep(0.1)
        raise AssertionError(f"programme {self.pid}: never {what}")

    async def events(self) -> list[str]:
        rows = await self.pool.fetch("SELECT event FROM programme_ledger WHERE programme_id = $1 ORDER BY seq", self.pid)
        return [r["event"] for r in rows]

    async def end(self) -> None:
        try:
            await self.handle.terminate("test finished")
        except RPCError:
            pass
