"""Records histories of the look-back campaign workflow (回头看, issue 14) from the real dev server.

    .venv/bin/python -m tests.replay.record_lookback_histories

Writes tests/replay/histories/lookback/lookback_*.json (a subdirectory: the case-oriented suites read
only Case histories from histories/*.json); tests/replay/test_lookback_histories.py replays them.

- lookback_all_visited: two closed cases selected; a rebound reopens one (with a referral
  proposal), the other is in place; the campaign closes by itself.
- lookback_reminded_closed: a sample of one drawn with a seed, a refused second finding, the
  before-end and after-end reminders fire, the office closes with the case unvisited.
- lookback_continue_as_new: a campaign over six cases under max_history_events=50, continued as new.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
from temporalio.client import WorkflowExecutionStatus

from activities.migrate import migrate
from domain.calendar import local_date
from domain.enums import Action
from domain.lookback import (
    CampaignFinding,
    CampaignSpec,
    CloseRequest,
    FindingRequest,
    LookbackPolicy,
    SelectionCriteria,
    SelectRequest,
    lookback_workflow_id,
)
from embedded import EmbeddedPostgres, find_free_port
from tests.harness import LEAD, OFFICE, RU, CaseDriver, case_worker, criteria, make_filing, start_dev_env
from workflows import lookback_client as lc
from workflows.client import ActionRefusedError
from workflows.contracts import case_workflow_id

OUT = Path(__file__).resolve().parent / "histories" / "lookback"


async def _until(c: CaseDriver, stage: str) -> None:
    for _ in range(200):
        if (await c.stage()).value == stage:
            return
        await asyncio.sleep(0.1)
    raise RuntimeError(f"{c.case_no} never reached {stage}")


async def closed(env, pool, tq: str, prog: str, n: int) -> list[str]:  # type: ignore[no-untyped-def]
    today = local_date(datetime.now(UTC))
    out = []
    for i in range(n):
        f = make_filing(f"RL-{prog}-{i}", due=today + timedelta(days=90)).model_copy(update={"programme_id": prog})
        c = CaseDriver(env.client, pool, tq, f)
        await c.file()
        await c.do(Action.TRANSFER, OFFICE)
        await c.do(Action.ACKNOWLEDGE, RU)
        await c.complete_measures()
        await c.do(Action.SUBMIT_COMPLETION, RU)
        await c.do(Action.PRELIM_PASS, LEAD)
        await env.fast_forward(env.client.get_workflow_handle(case_workflow_id(c.case_no)), timedelta(days=8))
        await _until(c, "CLOSURE_APPLICATION")
        await c.do(Action.APPLY_CLOSURE, RU)
        await c.do(Action.VERIFY_PASS, LEAD, criteria=criteria())
        await c.do(Action.RECORD_FILING, OFFICE)
        out.append(c.case_no)
    return out


def rid() -> str:
    return f"rec-{uuid.uuid4().hex}"


async def campaign(env, tq: str, prog: str, days: int, policy: LookbackPolicy | None = None) -> str:  # type: ignore[no-untyped-def]
    cid = f"REPLAY-{prog}"
    start = local_date(datetime.now(UTC))
    spec = CampaignSpec(campaign_id=cid, name="回头看录制", basis="000:446", unannounced=True, start=start,
                        end=start + timedelta(days=days), programme_id=prog)
    ok, why = await lc.create_campaign(env.client, spec, OFFICE, tq, policy=policy)
    assert ok, why
    return cid


async def finding(env, cid: str, pool, case_no: str, f: CampaignFinding) -> None:  # type: ignore[no-untyped-def]
    await lc.record_finding(env.client, cid, FindingRequest(actor=OFFICE, request_id=rid(), case_no=case_no, finding=f,
                                                            evidence="现场核查"), pool=pool)


async def all_visited(env, pool, tq: str, prog: str) -> str:  # type: ignore[no-untyped-def]
    nos = await closed(env, pool, tq, prog, 2)
    cid = await campaign(env, tq, prog, 20)
    await lc.select_cases(env.client, cid, SelectRequest(actor=OFFICE, request_id=rid()), pool=pool)
    await finding(env, cid, pool, nos[0], CampaignFinding.REBOUND)
    await finding(env, cid, pool, nos[1], CampaignFinding.IN_PLACE)
    return cid


async def reminded_closed(env, pool, tq: str, prog: str) -> str:  # type: ignore[no-untyped-def]
    nos = await closed(env, pool, tq, prog, 2)
    cid = await campaign(env, tq, prog, 10)
    await lc.select_cases(env.client, cid, SelectRequest(actor=OFFICE, request_id=rid(),
                                                         criteria=SelectionCriteria(sample_size=1, seed=7)), pool=pool)
    state = await lc.campaign_state(env.client, cid)
    try:
        await lc.record_finding(env.client, cid, FindingRequest(actor=RU, request_id=rid(), case_no=state.items[0].case_no,
                                                                finding=CampaignFinding.IN_PLACE, evidence="x"), pool=pool)
    except ActionRefusedError:
        pass
    assert nos
    await env.fast_forward(env.client.get_workflow_handle(lookback_workflow_id(cid)), timedelta(days=12))
    for _ in range(100):
        if sum(1 for r in (await lc.campaign_state(env.client, cid)).reminders if r.done) == 2:
            break
        await asyncio.sleep(0.1)
    await lc.close_campaign(env.client, cid, CloseRequest(actor=OFFICE, request_id=rid(), reason="期满结束"), pool=pool)
    return cid


async def continue_as_new(env, pool, tq: str, prog: str) -> str:  # type: ignore[no-untyped-def]
    nos = await closed(env, pool, tq, prog, 6)
    cid = await campaign(env, tq, prog, 20, policy=LookbackPolicy(max_history_events=50))
    await lc.select_cases(env.client, cid, SelectRequest(actor=OFFICE, request_id=rid()), pool=pool)
    for n in nos:
        await finding(env, cid, pool, n, CampaignFinding.IN_PLACE)
    return cid


SCENARIOS = {"lookback_all_visited": all_visited, "lookback_reminded_closed": reminded_closed,
             "lookback_continue_as_new": continue_as_new}


async def _record(env, name: str, wid: str) -> None:  # type: ignore[no-untyped-def]
    for _ in range(200):
        runs = [w async for w in env.client.list_workflows(f'WorkflowId = "{wid}"')]
        if runs and all(r.status != WorkflowExecutionStatus.RUNNING for r in runs):
            break
        await asyncio.sleep(0.2)
    runs = sorted(runs, key=lambda r: r.start_time)
    for i, run in enumerate(runs):
        hist = await env.client.get_workflow_handle(wid, run_id=run.run_id).fetch_history()
        suffix = "" if len(runs) == 1 else f"_run{i + 1}"
        (OUT / f"{name}{suffix}.json").write_text(hist.to_json())
        print(f"{name}{suffix}: {len(hist.events)} events, {run.status.name if run.status else '?'}")


async def main(names: list[str]) -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        pg = EmbeddedPostgres(Path(tmp) / "pg", find_free_port(), fast=True)
        url = await pg.start()
        env = await start_dev_env()
        try:
            conn = await asyncpg.connect(url)
            await migrate(conn)
            await conn.close()
            pool = await asyncpg.create_pool(url)
            for name in names or SCENARIOS:
                tq = f"record-{name}"
                prog = uuid.uuid4().hex[:6]
                async with case_worker(env.client, pool, tq):
                    cid = await SCENARIOS[name](env, pool, tq, prog)
                    await _record(env, name, lookback_workflow_id(cid))
            await pool.close()
        finally:
            await env.shutdown()
            await pg.stop()
    return 0


if __name__ == "__main__":
    status = asyncio.run(main(sys.argv[1:]))
    sys.stdout.flush()
    os._exit(status)
