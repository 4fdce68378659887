"""Records workflow histories of representative cases from the real dev server.

    .venv/bin/python -m tests.replay.record_histories [SCENARIO ...]   (default: all)

Writes tests/replay/histories/<scenario>.json (the JSON `temporal workflow show
--output json` writes). The replay test replays every file there against the
current code; keep old files when the workflow changes (behind workflow.patched),
add new ones.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
from temporalio.testing import WorkflowEnvironment

from activities.migrate import migrate
from domain.calendar import local_date
from domain.enums import Action, DeadlineKind, LookbackFinding, Rung
from domain.followup_model import TimerKind
from domain.model import DeadlineSpec, Measure, Milestone
from domain.policy import Policy
from embedded import EmbeddedPostgres, find_free_port
from tests.harness import (
    LEAD,
    OFFICE,
    PUBLIC,
    RU,
    SUPERVISION,
    CaseDriver,
    case_worker,
    criteria,
    make_filing,
    start_dev_env,
)
from workflows.client import ActionRefusedError
from workflows.contracts import case_workflow_id

OUT = Path(__file__).resolve().parent / "histories"


async def _posting(env: WorkflowEnvironment, c: CaseDriver) -> None:
    await c.do(Action.SUBMIT_COMPLETION, RU)
    await c.do(Action.PRELIM_PASS, LEAD)
    await env.fast_forward(c.client.get_workflow_handle(case_workflow_id(c.case_no)), timedelta(days=8))
    await _until(c, "CLOSURE_APPLICATION")


async def _until(c: CaseDriver, stage: str) -> None:
    for _ in range(100):
        if (await c.stage()).value == stage:
            return
        await asyncio.sleep(0.1)
    raise RuntimeError(f"{c.case_no} never reached {stage}")


async def happy_path(env: WorkflowEnvironment, c: CaseDriver) -> None:
    await c.file()
    await c.do(Action.TRANSFER, OFFICE)
    await c.do(Action.ACKNOWLEDGE, RU)
    await c.complete_measures()
    await _posting(env, c)
    await c.do(Action.APPLY_CLOSURE, RU)
    await c.do(Action.VERIFY_PASS, LEAD, criteria=criteria())
    await c.do(Action.RECORD_FILING, OFFICE)


async def _pending(c: CaseDriver, proposal_id: str) -> None:
    for _ in range(100):
        if any(p.proposal_id == proposal_id for p in (await c.state()).escalation.pending()):
            return
        await asyncio.sleep(0.1)
    raise RuntimeError(f"{c.case_no}: proposal {proposal_id} never appeared")


async def escalation_to_last_rung(env: WorkflowEnvironment, c: CaseDriver) -> None:
    """Recorded before issue 9 (every rung automatic, referral by the timer): the stored file
    proves such runs replay; re-recorded today it confirms the three proposals instead."""
    await c.file()
    await c.do(Action.TRANSFER, OFFICE)
    await c.do(Action.ACKNOWLEDGE, RU)
    handle = c.client.get_workflow_handle(case_workflow_id(c.case_no))
    await env.fast_forward(handle, timedelta(days=150))
    for pid in ("P1", "P2", "P3"):
        await _pending(c, pid)
        extra = {"report_ref": "追责建议报告-1"} if pid == "P3" else {}
        await c.do(Action.CONFIRM_ESCALATION, OFFICE, proposal_id=pid, reason="同意", **extra)
    await c.do(Action.SUBMIT_COMPLETION, RU)


async def escalation_proposal_confirmed(env: WorkflowEnvironment, c: CaseDriver) -> None:
    """函告 … 挂牌督办 by the timer, 约谈 proposed and confirmed by a 督查室, then the unit completes."""
    await c.file()
    await c.do(Action.TRANSFER, OFFICE)
    await c.do(Action.ACKNOWLEDGE, RU)
    await env.fast_forward(c.client.get_workflow_handle(case_workflow_id(c.case_no)), timedelta(days=55))
    await _pending(c, "P1")
    await c.do(Action.CONFIRM_ESCALATION, SUPERVISION, proposal_id="P1", reason="约谈县政府主要负责人")
    await c.do(Action.SUBMIT_COMPLETION, RU)


async def escalation_proposal_dismissed(env: WorkflowEnvironment, c: CaseDriver) -> None:
    """约谈 proposed and dismissed with a reason; the ladder goes on to propose 区域限批."""
    await c.file()
    await c.do(Action.TRANSFER, OFFICE)
    await c.do(Action.ACKNOWLEDGE, RU)
    handle = c.client.get_workflow_handle(case_workflow_id(c.case_no))
    await env.fast_forward(handle, timedelta(days=55))
    await _pending(c, "P1")
    await c.do(Action.DISMISS_ESCALATION, OFFICE, proposal_id="P1", reason="已签订整改承诺")
    await env.fast_forward(handle, timedelta(days=30))
    await _pending(c, "P2")


async def escalation_de_escalated(env: WorkflowEnvironment, c: CaseDriver) -> None:
    """督办 reached; the office lowers it to 警示 with a new due date; 通报 follows that date."""
    await c.file()
    await c.do(Action.TRANSFER, OFFICE)
    await c.do(Action.ACKNOWLEDGE, RU)
    handle = c.client.get_workflow_handle(case_workflow_id(c.case_no))
    await env.fast_forward(handle, timedelta(days=25))
    for _ in range(100):
        if (await c.state()).escalation.level >= 4:
            break
        await asyncio.sleep(0.1)
    today_case = local_date((await c.state()).timeline[-1].at)
    await c.do(Action.DE_ESCALATE, OFFICE, rung=Rung.WARNING, reason="整改取得实质进展",
               new_due_date=today_case + timedelta(days=20))
    await env.fast_forward(handle, timedelta(days=40))
    for _ in range(100):
        if (await c.state()).escalation.fired[-1].rung is not Rung.SUPERVISION_ORDER:
            break
        await asyncio.sleep(0.1)


async def objection(env: WorkflowEnvironment, c: CaseDriver) -> None:
    await c.file()
    await c.do(Action.TRANSFER, OFFICE)
    await c.do(Action.ACKNOWLEDGE, RU)
    await c.do(Action.SUBMIT_COMPLETION, RU)
    await c.do(Action.PRELIM_PASS, LEAD)
    await c.do(Action.OBJECT, PUBLIC, reason="河道仍有异味")
    await c.do(Action.DISMISS_OBJECTION, OFFICE, reason="与本案无关")
    await c.do(Action.OBJECT, PUBLIC, reason="夜间偷排")
    await c.do(Action.UPHOLD_OBJECTION, OFFICE, reason="核实存在偷排")


async def reopen(env: WorkflowEnvironment, c: CaseDriver) -> None:
    await happy_path(env, c)
    await c.do(Action.REOPEN, OFFICE, lookback_finding=LookbackFinding.REBOUND, reason="回头看发现反弹")


async def continue_as_new(env: WorkflowEnvironment, c: CaseDriver) -> None:
    await c.file(policy=Policy(max_history_events=60))
    await c.do(Action.TRANSFER, OFFICE)
    await c.do(Action.ACKNOWLEDGE, RU)
    for i in range(12):
        await c.do(Action.REPORT_PROGRESS, RU, reason=f"第{i + 1}次调度")


async def archived_after_lookback(env: WorkflowEnvironment, c: CaseDriver) -> None:
    """Closed, then a year on its clock: the look-back window ends, ARCHIVED, the run completes."""
    await happy_path(env, c)
    handle = c.client.get_workflow_handle(case_workflow_id(c.case_no))
    await env.fast_forward(handle, timedelta(days=366))
    await asyncio.wait_for(handle.result(), timeout=60)


async def _event(c: CaseDriver, event: str) -> None:
    for _ in range(200):
        if any(t.event == event for t in (await c.state()).timeline):
            return
        await asyncio.sleep(0.1)
    raise RuntimeError(f"{c.case_no}: {event} never recorded")


async def milestones_missed_escalated(env: WorkflowEnvironment, c: CaseDriver) -> None:
    """Issue 13: a milestone reminded, missed and escalated; a done measure stops its milestone."""
    today = local_date(datetime.now(UTC))
    c.filing = c.filing.model_copy(update={"measures": [
        Measure(seq=1, text="建设渗滤液收集处理设施", milestones=[Milestone(due_date=today + timedelta(days=10))]),
        Measure(seq=2, text="开展生态修复", milestones=[Milestone(due_date=today + timedelta(days=30))]),
    ]})
    await c.file()
    await c.do(Action.TRANSFER, OFFICE)
    await c.do(Action.ACKNOWLEDGE, RU)
    await c.do(Action.COMPLETE_MEASURE, RU, measure_seq=2, evidence=["doc:复绿验收报告"])
    await env.fast_forward(c.client.get_workflow_handle(case_workflow_id(c.case_no)), timedelta(days=20))
    await _event(c, "MILESTONE_ESCALATED")
    await c.do(Action.COMPLETE_MEASURE, RU, measure_seq=1, evidence=["doc:设施竣工验收"])


async def milestones_verify_refused(env: WorkflowEnvironment, c: CaseDriver) -> None:
    """Issue 13: 验收 refused while measure 2 is open (nothing recorded), failed, then the measure done."""
    await c.file()
    await c.do(Action.TRANSFER, OFFICE)
    await c.do(Action.ACKNOWLEDGE, RU)
    await c.do(Action.COMPLETE_MEASURE, RU, measure_seq=1, evidence=["doc:设施竣工验收"])
    await _posting(env, c)
    await c.do(Action.APPLY_CLOSURE, RU)
    try:
        await c.do(Action.VERIFY_PASS, LEAD, criteria=criteria())
    except ActionRefusedError as e:
        assert "开展生态修复" in e.message
    else:
        raise RuntimeError("VERIFY_PASS with an open measure was accepted")
    await c.do(Action.VERIFY_FAIL, LEAD, reason="措施2未落实")
    await c.do(Action.COMPLETE_MEASURE, RU, measure_seq=2, evidence=["doc:生态修复验收"])


async def milestones_report_escalated(env: WorkflowEnvironment, c: CaseDriver) -> None:
    """Issue 13: a 持续推进 case's missing monthly report reminded, then escalated, then reported."""
    c.filing = c.filing.model_copy(update={"deadline": DeadlineSpec(kind=DeadlineKind.ONGOING, raw_zh="持续推进")})
    await c.file()
    await c.do(Action.TRANSFER, OFFICE)
    await c.do(Action.ACKNOWLEDGE, RU)
    timer = next(t for t in (await c.state()).followup.timers if t.kind is TimerKind.REPORT)
    days = (timer.due_date - local_date(datetime.now(UTC))).days + 10
    await env.fast_forward(c.client.get_workflow_handle(case_workflow_id(c.case_no)), timedelta(days=days))
    await _event(c, "REPORT_ESCALATED")
    await c.do(Action.REPORT_PROGRESS, RU, reason="本月完成排查整改")


SCENARIOS: dict[str, Callable[[WorkflowEnvironment, CaseDriver], Awaitable[None]]] = {
    "happy_path": happy_path,
    "archived_after_lookback": archived_after_lookback,
    "escalation_to_last_rung": escalation_to_last_rung,
    "escalation_proposal_confirmed": escalation_proposal_confirmed,
    "escalation_proposal_dismissed": escalation_proposal_dismissed,
    "escalation_de_escalated": escalation_de_escalated,
    "objection": objection,
    "reopen": reopen,
    "continue_as_new": continue_as_new,
    "milestones_missed_escalated": milestones_missed_escalated,
    "milestones_verify_refused": milestones_verify_refused,
    "milestones_report_escalated": milestones_report_escalated,
}


async def main(names: list[str]) -> int:
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown:
        print(f"unknown scenario(s): {', '.join(unknown)}; known: {', '.join(SCENARIOS)}", file=sys.stderr)
        return 2
    chosen = {n: SCENARIOS[n] for n in (names or SCENARIOS)}
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
            today = local_date(datetime.now(UTC))
            for name, scenario in chosen.items():
                tq = f"record-{name}"
                due = today + timedelta(days=3 if name.startswith("escalation") else 120)
                c = CaseDriver(env.client, pool, tq, make_filing(f"REPLAY-{name}", due=due))
                async with case_worker(env.client, pool, tq):
                    await scenario(env, c)
                    wid = case_workflow_id(c.case_no)
                    runs = [w async for w in env.client.list_workflows(f'WorkflowId = "{wid}"')]
                    for i, run in enumerate(sorted(runs, key=lambda r: r.start_time)):
                        handle = env.client.get_workflow_handle(wid, run_id=run.run_id)
                        hist = await handle.fetch_history()
                        for _ in range(50):  # a run just continued-as-new: let its first task finish
                            if len(hist.events) >= 3:
                                break
                            await asyncio.sleep(0.1)
                            hist = await handle.fetch_history()
                        suffix = "" if len(runs) == 1 else f"_run{i + 1}"
                        (OUT / f"{name}{suffix}.json").write_text(hist.to_json())
                        print(f"{name}{suffix}: {len(hist.events)} events")
            await pool.close()
        finally:
            await env.shutdown()
            await pg.stop()
    return 0


if __name__ == "__main__":
    status = asyncio.run(main(sys.argv[1:]))
    sys.stdout.flush()
    os._exit(status)
