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
from domain.programme import ProgrammeAction, ProgrammePolicy
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
    write_as_a_failed_clock_task,
)
from tests.programme_harness import ProgrammeDriver, make_spec
from workflows import client as ops
from workflows.client import ActionRefusedError
from workflows.contracts import case_workflow_id
from workflows.programme_client import refresh_programme

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
    await _filed_to_recorded(env, c)


async def _filed_to_recorded(env: WorkflowEnvironment, c: CaseDriver) -> None:
    """The happy path after filing: 交办 … 备案."""
    await c.do(Action.TRANSFER, OFFICE)
    await c.do(Action.ACKNOWLEDGE, RU)
    await _rectifying_to_recorded(env, c)


async def _rectifying_to_recorded(env: WorkflowEnvironment, c: CaseDriver) -> None:
    """From 整改中: measures done, 初审, 公示 … 备案."""
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



async def reopen_archived(env: WorkflowEnvironment, c: CaseDriver) -> None:
    """Issue 14: archived (run 1, with its final state kept: patch reopen-archive-snapshot-1), then
    reopened by the office as a linked new run (run 2) where the unit reports progress."""
    from workflows.reopen import reopen_case

    await archived_after_lookback(env, c)
    due = local_date(datetime.now(UTC)) + timedelta(days=400)  # after today on either clock
    await reopen_case(c.client, c.pool, case_no=c.case_no, actor=OFFICE, new_due_date=due,
                      lookback_finding=LookbackFinding.REBOUND.value, reason="回头看发现问题反弹",
                      request_id="replay-reopen-archived")
    await c.do(Action.REPORT_PROGRESS, RU, reason="重新整改进展")


# ---------------------------------------------------------------- programmes (issue 13)

_SLOW = ProgrammePolicy(progress_check_hours=24 * 30)


async def programme_report_escalated(env: WorkflowEnvironment, p: ProgrammeDriver, pool: asyncpg.Pool) -> None:
    """Plan submitted with the creation; the six-month report reminded, then escalated; reported late."""
    await p.create(policy=_SLOW)
    await p.until(lambda s: s.report_timer is not None, "set its report timer")
    await env.fast_forward(p.handle, timedelta(days=215))
    await p.until(lambda s: s.report_timer.level() >= 2, "escalated", tries=300)
    await p.do(ProgrammeAction.SUBMIT_REPORT, reference="整改落实情况报告(逾期)")


async def programme_reported_in_time(env: WorkflowEnvironment, p: ProgrammeDriver, pool: asyncpg.Pool) -> None:
    """Created from the feedback; the plan submitted later; the six-month report in time."""
    await p.create(with_plan=False, policy=_SLOW)
    await p.until(lambda s: s.plan_timer is not None, "set its plan deadline")
    await p.do(ProgrammeAction.SUBMIT_PLAN, reference="x办发〔2026〕2号")
    await env.fast_forward(p.handle, timedelta(days=40))
    await p.do(ProgrammeAction.SUBMIT_REPORT, reference="整改落实情况报告")


async def programme_completed(env: WorkflowEnvironment, p: ProgrammeDriver, pool: asyncpg.Pool) -> None:
    """One case filed into the programme and closed: the programme completes."""
    await p.create()
    await p.until(lambda s: s.report_timer is not None, "set its report timer")
    today = local_date(datetime.now(UTC))
    f = make_filing(f"REPLAY-{p.pid}-case", due=today + timedelta(days=120)).model_copy(
        update={"programme_id": p.pid})
    c = CaseDriver(p.client, pool, p.task_queue, f)
    await happy_path(env, c)
    await refresh_programme(p.client, p.pid, "case closed")
    await asyncio.wait_for(p.handle.result(), timeout=60)


async def programme_continue_as_new(env: WorkflowEnvironment, p: ProgrammeDriver, pool: asyncpg.Pool) -> None:
    """Hourly counts checks and a small history limit: the run continues as new, twice."""
    await p.create(policy=ProgrammePolicy(progress_check_hours=1, max_history_events=60))
    await p.until(lambda s: s.report_timer is not None, "set its report timer")
    await env.fast_forward(p.handle, timedelta(hours=30))
    await p.until(lambda s: s.runs >= 3, "continued as new twice", tries=300)


async def programme_dispatch_scheduled(env: WorkflowEnvironment, p: ProgrammeDriver, pool: asyncpg.Pool) -> None:
    """Created under a policy with a dispatch day: its monthly dispatch Schedule is made (then removed)."""
    from workflows.dispatch_schedule import delete_dispatch_schedule, describe_dispatch_schedule

    await p.create(policy=ProgrammePolicy(progress_check_hours=24 * 30, dispatch_day_of_month=5))
    await p.until(lambda s: s.report_timer is not None, "set its report timer")
    for _ in range(100):
        if await describe_dispatch_schedule(p.client, p.pid) is not None:
            break
        await asyncio.sleep(0.2)
    await p.do(ProgrammeAction.SUBMIT_REPORT, reference="整改落实情况报告")
    await delete_dispatch_schedule(p.client, p.pid)


PROGRAMME_SCENARIOS: dict[str, Callable[[WorkflowEnvironment, ProgrammeDriver, asyncpg.Pool], Awaitable[None]]] = {
    "programme_report_escalated": programme_report_escalated,
    "programme_reported_in_time": programme_reported_in_time,
    "programme_completed": programme_completed,
    "programme_continue_as_new": programme_continue_as_new,
    "programme_dispatch_scheduled": programme_dispatch_scheduled,
}


async def fanout_parent(env: WorkflowEnvironment, c: CaseDriver) -> None:
    """Issue 13: an item for "市城管执法局, 各县市区党委、政府" fanned out to three child cases; one
    county fails its self-check; all close; the spot-check sample is checked; the parent closes.
    Also writes the history of one child (fanout_child.json)."""
    import json as _json

    from domain.enums import Role, Stage
    from domain.fanout_types import FanoutPolicy, SpotCheckPolicy
    from domain.model import Actor

    counties = Path(tempfile.mkdtemp()) / "counties.json"
    counties.write_text(_json.dumps({"locality": "永州市", "counties": [RU.unit, "宁远县人民政府"]}, ensure_ascii=False))
    os.environ["COUNTIES_FILE"] = str(counties)
    city = Actor(user_id="cg-1", role=Role.RESPONSIBLE_UNIT, unit="市城管执法局")
    other = Actor(user_id="ru-wang", role=Role.RESPONSIBLE_UNIT, unit="宁远县人民政府")
    c.filing = c.filing.model_copy(update={"responsible_units": [city.unit, "各县市区党委、政府"]})
    await c.file(policy=Policy(fanout=FanoutPolicy(enabled=True, spot_check=SpotCheckPolicy(rate=0.5))))
    await c.do(Action.TRANSFER, OFFICE)
    kids = [CaseDriver(c.client, c.pool, c.task_queue, c.filing.model_copy(update={"case_no": f"{c.case_no}.{i}"}))
            for i in (1, 2, 3)]
    for k, ru in zip(kids, (city, RU, other), strict=True):
        await _until(k, "TRANSFERRED")
        await asyncio.sleep(0.5)
        await k.do(Action.ACKNOWLEDGE, ru)
        await k.complete_measures(ru)
        await k.do(Action.SUBMIT_COMPLETION, ru)
        if k is kids[1]:
            await k.do(Action.PRELIM_REJECT, ru, reason="自查未通过")
            await k.do(Action.SUBMIT_COMPLETION, ru)
        await k.do(Action.PRELIM_PASS, ru)
        await env.fast_forward(c.client.get_workflow_handle(case_workflow_id(k.case_no)), timedelta(days=8))
        await _until(k, "CLOSURE_APPLICATION")
        await k.do(Action.APPLY_CLOSURE, ru)
        await k.do(Action.VERIFY_PASS, LEAD, criteria=criteria())
        await k.do(Action.RECORD_FILING, OFFICE)
    await _until(c, "VERIFICATION")
    sample = None
    for _ in range(100):
        fo = (await c.state()).fanout
        if fo is not None and (sample := fo.current_sample()) is not None:
            break
        await asyncio.sleep(0.1)
    assert sample is not None
    for no in sample.sample:
        await c.do(Action.SPOT_CHECK, OFFICE, child_case_no=no, criteria=criteria(), reason="省级抽查合格")
    await c.do(Action.VERIFY_PASS, LEAD, criteria=criteria())
    await c.do(Action.RECORD_FILING, OFFICE)
    assert (await c.stage()) is Stage.CLOSED
    hist = await c.client.get_workflow_handle(case_workflow_id(kids[1].case_no)).fetch_history()
    (OUT / "fanout_child.json").write_text(hist.to_json())
    print(f"fanout_child: {len(hist.events)} events")
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


async def local_activities_lifecycle(env: WorkflowEnvironment, c: CaseDriver) -> None:
    """Issue 15 (patch local-calendar-activities-1): filed without a policy in the input, so the
    policy is loaded by a local activity, as are the deadlines and the follow-up schedule; then
    the whole happy path to 销号."""
    outcome = await ops.file_case(c.client, c.filing, OFFICE, c.task_queue)
    assert outcome.filed, outcome
    await _filed_to_recorded(env, c)


async def local_activities_continue_as_new(env: WorkflowEnvironment, c: CaseDriver) -> None:
    """Issue 15: continued runs under the patch (search attributes carried over, not upserted again)."""
    await continue_as_new(env, c)


async def local_activities_milestones(env: WorkflowEnvironment, c: CaseDriver) -> None:
    """Issue 15: a milestone missed and escalated under the patch (the follow-up schedule by a
    local activity; the older patches implied, not recorded)."""
    await milestones_missed_escalated(env, c)


async def escalation_clock_ledger(env: WorkflowEnvironment, c: CaseDriver) -> None:
    """Issue 9 (patch clock-ledger-local-1): the rungs, the proposal and the end of the posting
    (with the closure application's deadline, dated by local activity) are written inside their
    woken tasks; then the whole way to 备案."""
    outcome = await ops.file_case(c.client, c.filing, OFFICE, c.task_queue)
    assert outcome.filed, outcome
    await c.do(Action.TRANSFER, OFFICE)
    await c.do(Action.ACKNOWLEDGE, RU)
    await env.fast_forward(c.client.get_workflow_handle(case_workflow_id(c.case_no)), timedelta(days=55))
    await _pending(c, "P1")
    await c.do(Action.CONFIRM_ESCALATION, SUPERVISION, proposal_id="P1", reason="约谈县政府主要负责人")
    await _rectifying_to_recorded(env, c)


async def escalation_clock_ledger_redecided(env: WorkflowEnvironment, c: CaseDriver) -> None:
    """Issue 9: the first rung's task "failed" after its write (written beforehand at another
    time): the woken task is told that time by its local activity and decides again at it."""
    outcome = await ops.file_case(c.client, c.filing, OFFICE, c.task_queue)
    assert outcome.filed, outcome
    await c.do(Action.TRANSFER, OFFICE)
    await c.do(Action.ACKNOWLEDGE, RU)
    state = await c.state()
    assert state.deadline is not None
    fire_at = state.deadline.escalation_schedule[0].fire_at
    await write_as_a_failed_clock_task(c.pool, c.client, state, fire_at + timedelta(seconds=7))
    await env.fast_forward(c.client.get_workflow_handle(case_workflow_id(c.case_no)),
                           fire_at - datetime.now(UTC) + timedelta(minutes=1))
    await _event(c, "ESCALATED")
    await c.do(Action.SUBMIT_COMPLETION, RU)


async def clock_ledger_continue_as_new(env: WorkflowEnvironment, c: CaseDriver) -> None:
    """Issue 9: continued runs under clock-ledger-local-1 (each run records that marker only)."""
    await continue_as_new(env, c)


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
    "fanout_parent": fanout_parent,
    "milestones_missed_escalated": milestones_missed_escalated,
    "milestones_verify_refused": milestones_verify_refused,
    "milestones_report_escalated": milestones_report_escalated,
    "reopen_archived": reopen_archived,  # issue 14
    "local_activities_lifecycle": local_activities_lifecycle,  # issue 15
    "local_activities_continue_as_new": local_activities_continue_as_new,
    "local_activities_milestones": local_activities_milestones,
    "escalation_clock_ledger": escalation_clock_ledger,  # issue 9 (lag)
    "escalation_clock_ledger_redecided": escalation_clock_ledger_redecided,
    "clock_ledger_continue_as_new": clock_ledger_continue_as_new,
}


async def _record(env: WorkflowEnvironment, name: str, wid: str) -> None:
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


async def main(names: list[str]) -> int:
    unknown = [n for n in names if n not in SCENARIOS and n not in PROGRAMME_SCENARIOS]
    if unknown:
        print(f"unknown scenario(s): {', '.join(unknown)}; known: {', '.join([*SCENARIOS, *PROGRAMME_SCENARIOS])}",
              file=sys.stderr)
        return 2
    chosen = {n: SCENARIOS[n] for n in (names or SCENARIOS) if n in SCENARIOS}
    programmes = {n: PROGRAMME_SCENARIOS[n] for n in (names or PROGRAMME_SCENARIOS) if n in PROGRAMME_SCENARIOS}
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
                    await _record(env, name, case_workflow_id(c.case_no))
            for name, pscenario in programmes.items():
                tq = f"record-{name}"
                p = ProgrammeDriver(env.client, pool, tq, make_spec(f"REPLAY-{name}".replace("_", "-"), feedback=today))
                async with case_worker(env.client, pool, tq):
                    await pscenario(env, p, pool)
                    await _record(env, name, p.handle.id)
                    await p.end()
            await pool.close()
        finally:
            await env.shutdown()
            await pg.stop()
    return 0


if __name__ == "__main__":
    status = asyncio.run(main(sys.argv[1:]))
    sys.stdout.flush()
    os._exit(status)
