"""Shared pieces of the scenarios: actors, filings, percentiles, bounded concurrency."""

from __future__ import annotations

import asyncio
import math
import uuid
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from domain.calendar import local_date
from domain.enums import Action, CaseKind, DeadlineKind, Role
from domain.model import ActionRequest, Actor, CaseFiling, DeadlineSpec, Measure
from workflows import client as ops
from workflows.contracts import ActionResult

T = TypeVar("T")

OFFICE = Actor(user_id="office-bench", role=Role.RECTIFICATION_OFFICE, unit="整改办")
RU = Actor(user_id="ru-bench", role=Role.RESPONSIBLE_UNIT, unit="蓝山县人民政府")
LEAD = Actor(user_id="lead-bench", role=Role.LEAD_SUPERVISOR, unit="市生态环境局")
LEAD2_UNIT = "市水利局"


def filing(case_no: str, plan_days: int = 120) -> CaseFiling:
    """A complete feedback-problem case with a plan date `plan_days` ahead (transferable at once)."""
    due = local_date(datetime.now(UTC)) + timedelta(days=plan_days)
    return CaseFiling(
        case_no=case_no,
        kind=CaseKind.FEEDBACK_PROBLEM,
        title="湘江源头尾矿库污染治理不到位",
        problem="尾矿库渗滤液直排",
        target="完成尾矿库污染治理设施建设改造",
        measures=[Measure(seq=1, text="建设渗滤液收集处理设施"), Measure(seq=2, text="开展生态修复")],
        responsible_units=[RU.unit],
        lead_supervising_units=[LEAD.unit, LEAD2_UNIT],
        deadline=DeadlineSpec(kind=DeadlineKind.DATE, due_date=due, raw_zh=f"{due:%Y年%m月%d日}"),
        inspection_round="第二轮中央生态环境保护督察",
    )


def parse_settings(spec: str) -> dict[str, str]:
    """'A=1+B=2' -> {'A': '1', 'B': '2'}: environment settings for a bench worker (bench.cost's
    systems, bench.run's escalation rounds). A part that is not NAME=value is refused, named."""
    env: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in spec.split("+"))):
        name, eq, value = part.partition("=")
        if not eq or not name.isidentifier() or name != name.upper():
            raise ValueError(f"worker setting {part!r}: expected NAME=value (e.g. WORKER_WORKFLOW_SANDBOX=false)")
        env[name] = value
    return env


def new_prefix(tag: str) -> str:
    return f"B{tag}-{uuid.uuid4().hex[:6]}"


def criteria() -> dict[str, Any]:
    ok = {"met": True, "evidence": ["doc:bench-site-check"]}
    return {"eco_restored": ok, "pollution_eliminated": ok, "public_satisfied": ok}


async def act(client, case_no: str, action: Action, actor: Actor, pool=None, **fields: Any) -> ActionResult:
    req = ActionRequest(action=action, actor=actor, request_id=f"bench-{uuid.uuid4().hex}", **fields)
    return await ops.act(client, case_no, req, pool=pool)


async def bounded(items: Iterable[T], concurrency: int, fn: Callable[[T], Awaitable[Any]]) -> list[Any]:
    """Run `fn` over `items`, at most `concurrency` at a time; results in input order."""
    sem = asyncio.Semaphore(concurrency)

    async def one(x: T) -> Any:
        async with sem:
            return await fn(x)

    return list(await asyncio.gather(*(one(x) for x in items)))


def pct(values: list[float], p: float) -> float | None:
    """Nearest-rank percentile (p in 0..100); None for no values."""
    if not values:
        return None
    s = sorted(values)
    k = max(0, min(len(s) - 1, math.ceil(p / 100 * len(s)) - 1))
    return s[k]


def dist(values: list[float]) -> dict[str, Any]:
    return {
        "n": len(values),
        "p50": pct(values, 50),
        "p95": pct(values, 95),
        "p99": pct(values, 99),
        "max": max(values) if values else None,
    }


def ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or b == 0:
        return None
    return a / b
