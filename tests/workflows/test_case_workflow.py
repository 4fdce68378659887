"""CaseWorkflow on the Java time-skipping test server, with real activities and PostgreSQL."""

from __future__ import annotations

from datetime import date, timedelta

import asyncpg
import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from domain.calendar import local_date
from domain.enums import (
    RUNG_ORDER,
    Action,
    CaseKind,
    Finding,
    LookbackFinding,
    ReferralPath,
    Rung,
    Stage,
    rung_level,
)
from domain.policy import Policy
from tests.harness import (
    AUDITOR,
    DISCIPLINE,
    LEAD,
    LEAD2,
    OFFICE,
    OTHER_RU,
    PUBLIC,
    RU,
    SUPERVISION,
    CaseDriver,
    case_worker,
    criteria,
    make_filing,
)
from workflows.client import ActionRefusedError


async def today(env: WorkflowEnvironment) -> date:
    return local_date(await env.get_current_time())


async def to_rectifying(c: CaseDriver) -> None:
    await c.do(Action.TRANSFER, OFFICE)
    await c.do(Action.ACKNOWLEDGE, RU)
    assert await c.stage() is Stage.RECTIFYING


async def open_case(
    env: WorkflowEnvironment, client: Client, pool: asyncpg.Pool, task_queue: str,
    days: int = 30, rectifying: bool = True, policy: Policy | None = None, **filing: object,
) -> CaseDriver:
    """File a case due in `days` (and take it to RECTIFYING unless told otherwise)."""
    due = await today(env) + timedelta(days=days)
    c = CaseDriver(client, pool, task_queue, make_filing(due=due, **filing))  # type: ignore[arg-type]
    assert (await c.file(policy=policy)).filed
    if rectifying:
        await to_rectifying(c)
    return c


async def through_posting(env: WorkflowEnvironment, c: CaseDriver) -> None:
    """From RECTIFYING through 初审 and an unopposed 公示 to CLOSURE_APPLICATION."""
    await c.complete_measures()  # 验收 needs every measure done with evidence (issue 13)
    await c.do(Action.SUBMIT_COMPLETION, RU, evidence=["doc:completion-report"])
    await c.do(Action.PRELIM_PASS, LEAD2)  # any lead supervising unit may do 初审
    assert await c.stage() is Stage.PUBLIC_POSTING
    await env.sleep(timedelta(days=8))  # 7 calendar days of posting, then end of day
    assert await c.stage() is Stage.CLOSURE_APPLICATION


async def test_feedback_problem_goes_from_filing_to_closure(
    ts_env: WorkflowEnvironment, ts_client: Client, pool: asyncpg.Pool, task_queue: str
) -> None:
    """A feedback problem is filed, transferred, rectified, posted, verified, filed and closed (销号)."""
    async with case_worker(ts_client, pool, task_queue):
        c = await open_case(ts_env, ts_client, pool, task_queue, days=90)
        state = await c.state()
        assert state.deadline is not None and state.deadline.due_date == c.filing.deadline.due_date
        await c.complete_measures()
        await through_posting(ts_env, c)
        await c.do(Action.APPLY_CLOSURE, RU)
        await c.do(Action.VERIFY_PASS, LEAD, criteria=criteria())
        await c.do(Action.RECORD_FILING, OFFICE)
        assert await c.stage() is Stage.CLOSED
        events = await c.events()
        assert events[0] == "FILED"
        for e in ("TRANSFER", "ACKNOWLEDGE", "SUBMIT_COMPLETION", "PRELIM_PASS", "POSTING_ENDED",
                  "APPLY_CLOSURE", "VERIFY_PASS", "RECORD_FILING"):
            assert e in events
        assert [r["seq"] for r in await c.ledger()] == list(range(1, len(events) + 1))
        proj = await c.projection()
        assert proj["stage"] == "CLOSED" and proj["last_seq"] == len(events)
        assert proj["closed_at"] is not None
        notices = await pool.fetch("SELECT recipient_unit FROM outbox WHERE case_no = $1", c.case_no)
        assert {n["recipient_unit"] for n in notices} >= {RU.unit, LEAD.unit, "整改办"}


async def test_petition_found_untrue_is_replied_disclosed_and_closed(
    ts_env: WorkflowEnvironment, ts_client: Client, pool: asyncpg.Pool, task_queue: str
) -> None:
    """A petition found 不属实 skips rectification: reply (办结答复), disclosure (公开), closure."""
    async with case_worker(ts_client, pool, task_queue):
        c = CaseDriver(ts_client, pool, task_queue, make_filing(kind=CaseKind.PETITION))
        await c.file()
        await c.do(Action.TRANSFER, OFFICE)
        await c.do(Action.ACKNOWLEDGE, RU)
        assert await c.stage() is Stage.INVESTIGATING
        await c.do(Action.RECORD_FINDING, RU, finding=Finding.UNSUBSTANTIATED, reason="现场核查未发现偷排")
        assert await c.stage() is Stage.REPLY
        await c.do(Action.REPLY, RU, reason="经调查核实,举报问题不属实,已答复举报人")
        await c.do(Action.DISCLOSE, OFFICE)
        state = await c.state()
        assert state.stage is Stage.CLOSED
        assert state.finding is Finding.UNSUBSTANTIATED
        assert "RECTIFYING" not in [e.to_stage for e in state.timeline]


async def test_prelim_review_rejected_sends_the_case_back_with_a_new_deadline(
    ts_env: WorkflowEnvironment, ts_client: Client, pool: asyncpg.Pool, task_queue: str
) -> None:
    """初审 rejected returns the case to rectification, with a re-set deadline and cycle 2."""
    async with case_worker(ts_client, pool, task_queue):
        c = await open_case(ts_env, ts_client, pool, task_queue, days=30)
        await c.do(Action.SUBMIT_COMPLETION, RU)
        new_due = await today(ts_env) + timedelta(days=60)
        await c.do(Action.PRELIM_REJECT, LEAD, reason="佐证材料不全", new_due_date=new_due)
        state = await c.state()
        assert state.stage is Stage.RECTIFYING and state.cycle == 2
        assert state.deadline is not None and state.deadline.due_date == new_due


async def test_objection_upheld_during_posting_returns_the_case_to_rectifying(
    ts_env: WorkflowEnvironment, ts_client: Client, pool: asyncpg.Pool, task_queue: str
) -> None:
    """An objection pauses 公示; dismissed it resumes, upheld it sends the case back."""
    async with case_worker(ts_client, pool, task_queue):
        c = await open_case(ts_env, ts_client, pool, task_queue, days=30)
        await c.do(Action.SUBMIT_COMPLETION, RU)
        await c.do(Action.PRELIM_PASS, LEAD)
        await ts_env.sleep(timedelta(days=2))
        await c.do(Action.OBJECT, PUBLIC, reason="河道仍有异味")
        paused = (await c.state()).posting
        assert paused is not None and paused.ends_at is None and paused.remaining_seconds
        await ts_env.sleep(timedelta(days=30))  # the paused posting does not end
        assert await c.stage() is Stage.PUBLIC_POSTING
        await c.do(Action.DISMISS_OBJECTION, OFFICE, reason="经复核异味来自上游,与本案无关")
        assert (await c.state()).posting.ends_at is not None
        await c.do(Action.OBJECT, PUBLIC, reason="夜间仍有偷排")
        await c.do(Action.UPHOLD_OBJECTION, OFFICE, reason="核实存在夜间偷排")
        state = await c.state()
        assert state.stage is Stage.RECTIFYING and state.cycle == 2
        assert [o.ruling for o in state.postings[-1].objections] == ["DISMISSED", "UPHELD"]
        events = await c.events()
        assert events.count("OBJECT") == 2 and "UPHOLD_OBJECTION" in events


async def test_failed_verification_then_passed_closes_the_case(
    ts_env: WorkflowEnvironment, ts_client: Client, pool: asyncpg.Pool, task_queue: str
) -> None:
    """验收 failed goes back to rectifying; a second round passes and closes into 长期坚持."""
    async with case_worker(ts_client, pool, task_queue):
        c = await open_case(ts_env, ts_client, pool, task_queue, days=40, long_term=True)
        await through_posting(ts_env, c)
        await c.do(Action.APPLY_CLOSURE, RU)
        with pytest.raises(ActionRefusedError) as refused:
            await c.do(Action.VERIFY_FAIL, LEAD2, reason="not the organiser")
        assert refused.value.error_type == "NotAuthorizedError"
        await c.do(Action.VERIFY_FAIL, LEAD, reason="污染未消除", criteria=criteria(all_met=False))
        state = await c.state()
        assert state.stage is Stage.RECTIFYING and state.cycle == 2
        assert state.verifications[-1].passed is False
        await through_posting(ts_env, c)
        await c.do(Action.APPLY_CLOSURE, RU)
        await c.do(Action.VERIFY_PASS, LEAD, criteria=criteria())
        await c.do(Action.RECORD_FILING, OFFICE)
        state = await c.state()
        assert state.stage is Stage.LONG_TERM_MAINTENANCE
        assert [v.passed for v in state.verifications] == [False, True]


async def test_missed_deadline_climbs_every_rung_and_stops_when_the_unit_acts(
    ts_env: WorkflowEnvironment, ts_client: Client, pool: asyncpg.Pool, task_queue: str
) -> None:
    """Overdue rectification climbs 函告 … 挂牌督办 by itself, then proposes 约谈 and waits: the
    proposal is confirmed by a 督查室, 区域限批 and 移交问责 likewise (the last with its 追责建议报告),
    which opens a path-A referral; nothing reached 纪委监委 before that. It stops once the unit completes."""
    async with case_worker(ts_client, pool, task_queue):
        c = await open_case(ts_env, ts_client, pool, task_queue, days=5)
        await ts_env.sleep(timedelta(days=150))  # > 60 working days after the due date
        state = await c.state()
        assert [f.rung for f in state.escalation.fired] == list(RUNG_ORDER[:5])
        assert all(f.automatic for f in state.escalation.fired)
        assert [(p.proposal_id, p.rung) for p in state.escalation.pending()] == [("P1", Rung.SUMMONS)]
        assert state.referrals == [] and state.escalation.level == 5
        disc = "SELECT * FROM outbox WHERE case_no = $1 AND recipient_unit = '纪委监委'"
        assert not await pool.fetch(disc, c.case_no), "nothing reaches the commission by the timer"
        assert await pool.fetch("SELECT * FROM outbox WHERE case_no = $1 AND recipient_unit = '市委督查室'",
                                c.case_no), "the proposal is notified to the supervision offices"

        await c.do(Action.CONFIRM_ESCALATION, SUPERVISION, proposal_id="P1", reason="约谈县政府主要负责人")
        for pid in ("P2", "P3"):  # 区域限批 and 移交问责 were due long ago: proposed one after the other
            for _ in range(100):
                state = await c.state()
                if any(p.proposal_id == pid for p in state.escalation.pending()):
                    break
                await ts_env.sleep(timedelta(seconds=1))
            extra = {"report_ref": "追责建议报告〔2026〕1号"} if pid == "P3" else {}
            await c.do(Action.CONFIRM_ESCALATION, OFFICE, proposal_id=pid, reason="同意", **extra)
        state = await c.state()
        assert [f.rung for f in state.escalation.fired] == list(RUNG_ORDER)
        assert [f.automatic for f in state.escalation.fired] == [True] * 5 + [False] * 3
        assert state.escalation.level == 8
        assert [(r.path, r.report_ref) for r in state.referrals] == [
            (ReferralPath.PERFORMANCE, "追责建议报告〔2026〕1号")]
        assert state.stage is Stage.RECTIFYING  # accountability never closes the case
        assert await pool.fetch(disc, c.case_no), "the commission is notified of the referral"
        rows = await pool.fetch("SELECT data FROM ledger WHERE case_no = $1 AND event = 'ESCALATED'", c.case_no)
        assert len(rows) == 5
        await c.do(Action.ACCEPT_REFERRAL, DISCIPLINE, referral_id=state.referrals[0].referral_id)
        await c.do(Action.SUBMIT_COMPLETION, RU)
        await ts_env.sleep(timedelta(days=60))
        state = await c.state()
        assert state.escalation.level == 0 and len(state.escalation.fired) == 8
        assert state.stage is Stage.PRELIM_REVIEW
        assert "ESCALATION_STOPPED" in await c.events()


async def test_a_proposal_dismissed_on_the_server_never_takes_effect(
    ts_env: WorkflowEnvironment, ts_client: Client, pool: asyncpg.Pool, task_queue: str
) -> None:
    """A county-profile case: 通报, 督办 by themselves; 约谈 proposed, dismissed with a reason."""
    async with case_worker(ts_client, pool, task_queue):
        c = await open_case(ts_env, ts_client, pool, task_queue, days=5, ladder="county")
        await ts_env.sleep(timedelta(days=60))
        state = await c.state()
        assert [f.rung for f in state.escalation.fired] == [Rung.CIRCULAR, Rung.SUPERVISION_ORDER]
        assert [p.rung for p in state.escalation.pending()] == [Rung.SUMMONS]
        await c.do(Action.DISMISS_ESCALATION, OFFICE, proposal_id="P1", reason="已约谈分管领导,暂不约谈主要负责人")
        state = await c.state()
        assert state.escalation.pending() == [] and state.escalation.level == rung_level(Rung.SUPERVISION_ORDER)
        assert "DISMISS_ESCALATION" in await c.events()


async def test_escalation_stops_climbing_after_the_unit_completes_mid_ladder(
    ts_env: WorkflowEnvironment, ts_client: Client, pool: asyncpg.Pool, task_queue: str
) -> None:
    """Once the unit submits completion at rung 2, no further rung fires."""
    async with case_worker(ts_client, pool, task_queue):
        c = await open_case(ts_env, ts_client, pool, task_queue, days=3)
        due = (await c.state()).deadline
        second = due.escalation_schedule[1].fire_at
        third = due.escalation_schedule[2].fire_at
        now = await ts_env.get_current_time()
        await ts_env.sleep(second - now + (third - second) / 2)
        assert [f.rung for f in (await c.state()).escalation.fired] == [Rung.NOTICE_LETTER, Rung.WARNING]
        await c.do(Action.SUBMIT_COMPLETION, RU)
        await ts_env.sleep(timedelta(days=200))
        state = await c.state()
        assert len(state.escalation.fired) == 2 and state.escalation.level == 0


async def test_extension_approved_mid_escalation_moves_the_deadline_and_pauses_the_ladder(
    ts_env: WorkflowEnvironment, ts_client: Client, pool: asyncpg.Pool, task_queue: str
) -> None:
    """An approved 延期 moves the due date; fired rungs stay, the next one waits for the new date."""
    async with case_worker(ts_client, pool, task_queue):
        c = await open_case(ts_env, ts_client, pool, task_queue, days=3)
        await ts_env.sleep(timedelta(days=6))
        assert (await c.state()).escalation.level == 1
        new_due = await today(ts_env) + timedelta(days=60)
        await c.do(Action.REQUEST_EXTENSION, RU, new_due_date=new_due, reason="汛期施工受限")
        with pytest.raises(ActionRefusedError) as refused:
            await c.do(Action.APPROVE_EXTENSION, OTHER_RU)
        assert refused.value.error_type == "NotAuthorizedError"
        await c.do(Action.APPROVE_EXTENSION, LEAD)
        state = await c.state()
        assert state.deadline.due_date == new_due
        await ts_env.sleep(timedelta(days=30))
        state = await c.state()
        assert len(state.escalation.fired) == 1 and state.escalation.level == 1
        nxt = [r for r in state.deadline.escalation_schedule if r.rung is Rung.WARNING][0]
        assert nxt.fire_date > new_due
        await ts_env.sleep(timedelta(days=45))  # past the new due date plus 5 working days
        assert [f.rung for f in (await c.state()).escalation.fired][:2] == [Rung.NOTICE_LETTER, Rung.WARNING]


async def test_closed_case_is_reopened_by_a_lookback_finding(
    ts_env: WorkflowEnvironment, ts_client: Client, pool: asyncpg.Pool, task_queue: str
) -> None:
    """A 回头看 finding of rebound reopens a closed case into a new rectification cycle."""
    async with case_worker(ts_client, pool, task_queue):
        c = await open_case(ts_env, ts_client, pool, task_queue, days=30)
        await through_posting(ts_env, c)
        await c.do(Action.APPLY_CLOSURE, RU)
        await c.do(Action.VERIFY_PASS, LEAD, criteria=criteria())
        await c.do(Action.RECORD_FILING, OFFICE)
        assert await c.stage() is Stage.CLOSED
        await ts_env.sleep(timedelta(days=100))
        await c.do(Action.REOPEN, OFFICE, lookback_finding=LookbackFinding.REBOUND, reason="回头看发现污染反弹")
        state = await c.state()
        assert state.stage is Stage.RECTIFYING and state.reopen_count == 1 and state.cycle == 2
        assert state.deadline is not None and state.closed_at is None


async def test_unauthorized_actor_is_refused_and_nothing_is_recorded(
    ts_env: WorkflowEnvironment, ts_client: Client, pool: asyncpg.Pool, task_queue: str
) -> None:
    """Another unit, an auditor and the public are refused; history and ledger stay unchanged."""
    async with case_worker(ts_client, pool, task_queue):
        c = await open_case(ts_env, ts_client, pool, task_queue, days=30, rectifying=False)
        await c.do(Action.TRANSFER, OFFICE)
        ledger_before = await c.events()
        history_before = len(await c.handle_history_events())
        for actor, action in ((OTHER_RU, Action.ACKNOWLEDGE), (AUDITOR, Action.ACKNOWLEDGE),
                              (PUBLIC, Action.TRANSFER), (DISCIPLINE, Action.APPLY_RUNG)):
            with pytest.raises(ActionRefusedError) as refused:
                await c.do(action, actor, rung=Rung.WARNING, reason="x")
            assert refused.value.error_type == "NotAuthorizedError"
        with pytest.raises(ActionRefusedError) as wrong_stage:
            await c.do(Action.VERIFY_PASS, LEAD, criteria=criteria())
        assert wrong_stage.value.error_type in ("InvalidTransitionError", "NotAuthorizedError")
        assert await c.events() == ledger_before
        history = await c.handle_history_events()
        # The Java test server persists the (empty) workflow tasks that ran the
        # validators; the real server drops them. Nothing else may be added.
        added = {EventType.Name(e.event_type) for e in history[history_before:]}
        assert added <= {"EVENT_TYPE_WORKFLOW_TASK_SCHEDULED", "EVENT_TYPE_WORKFLOW_TASK_STARTED",
                         "EVENT_TYPE_WORKFLOW_TASK_COMPLETED"}
        accepted = EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED
        assert sum(e.event_type == accepted for e in history) == 1  # only the TRANSFER
        refusals = await pool.fetch("SELECT * FROM refused_action WHERE case_no = $1 ORDER BY id", c.case_no)
        assert [r["actor_user"] for r in refusals] == [OTHER_RU.user_id, AUDITOR.user_id, PUBLIC.user_id,
                                                       DISCIPLINE.user_id, LEAD.user_id]
        assert "not a responsible unit" in refusals[0]["message"]


async def test_continue_as_new_keeps_the_case_state(
    ts_env: WorkflowEnvironment, ts_client: Client, pool: asyncpg.Pool, task_queue: str
) -> None:
    """A case whose history grows past the limit continues as new with its state intact."""
    async with case_worker(ts_client, pool, task_queue):
        c = await open_case(ts_env, ts_client, pool, task_queue, days=300, policy=Policy(max_history_events=60))
        first_run = (await ts_client.get_workflow_handle(f"case-{c.case_no}").describe()).run_id
        for i in range(12):
            await c.do(Action.REPORT_PROGRESS, RU, reason=f"第{i + 1}次调度:进度{(i + 1) * 8}%")
        state = await c.state()
        assert state.runs >= 2
        second_run = (await ts_client.get_workflow_handle(f"case-{c.case_no}").describe()).run_id
        assert second_run != first_run
        assert state.stage is Stage.RECTIFYING
        assert state.deadline is not None and state.deadline.due_date == c.filing.deadline.due_date
        assert len(await c.events()) == state.seq
        await c.do(Action.SUBMIT_COMPLETION, RU)
        final = await c.state()
        assert final.stage is Stage.PRELIM_REVIEW
        assert [r["seq"] for r in await c.ledger()] == list(range(1, final.seq + 1))


async def test_suspension_stops_the_clock_and_resume_moves_the_due_date(
    ts_env: WorkflowEnvironment, ts_client: Client, pool: asyncpg.Pool, task_queue: str
) -> None:
    """While suspended (中止) no rung fires; on resume the due date moves by the excluded days."""
    async with case_worker(ts_client, pool, task_queue):
        c = await open_case(ts_env, ts_client, pool, task_queue, days=10)
        old_due = (await c.state()).deadline.due_date
        await c.do(Action.SUSPEND, OFFICE, reason="涉诉,待法院判决")
        with pytest.raises(ActionRefusedError) as refused:
            await c.do(Action.SUBMIT_COMPLETION, RU)
        assert refused.value.error_type == "InvalidTransitionError"
        await ts_env.sleep(timedelta(days=40))
        assert (await c.state()).escalation.fired == []
        await c.do(Action.RESUME, OFFICE, reason="判决已生效")
        state = await c.state()
        assert state.suspension is None and state.suspensions[-1].excluded_days > 0
        assert state.deadline.due_date > old_due
        assert state.deadline.explanation.excluded_days == state.suspensions[-1].excluded_days
        proj = await c.projection()
        assert proj["due_date"] == state.deadline.due_date and proj["suspended"] is False

