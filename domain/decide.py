"""The decision core: given a case state, a request (or the clock), what happens.

Functions here are pure: they take `now` and return a new state plus the ledger
entries and notices to record, and at most one deadline for the calendar
activity to compute. The workflow performs; this module decides.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from domain import escalation as esc
from domain import followup as fu
from domain import milestones as ms
from domain import reporting as rp
from domain.calendar import local_date
from domain.deadlines import long_term_after_closure

# `Decision`, its builder and the projection row live in domain/decision.py and
# domain/projection.py; re-exported here so `decide.Decision`, `decide.projection`, ... keep working.
from domain.decision import (  # noqa: F401
    _APPEND_ONLY_LISTS,
    _SHARED_FIELDS,
    Decision,
    LedgerEntry,
    Notice,
    _body,
    _Builder,
    _subject,
    _working_copy,
    recipients,
)
from domain.enums import (
    STAGE_LABELS_ZH,
    Action,
    CaseKind,
    DayCount,
    DeadlineKind,
    Finding,
    PetitionClosure,
    ReferralStatus,
    Role,
    Stage,
)
from domain.lifecycle import (
    find_objection,
    missing_for_transfer,
    rule_for,
)
from domain.model import (
    SYSTEM_ACTOR,
    ActionRequest,
    Actor,
    CaseFiling,
    CaseState,
    ComputedDeadline,
    DeadlineRequest,
    ExtensionRequest,
    Objection,
    PostingState,
    Suspension,
    VerificationRecord,
)
from domain.policy import Policy, StageLimit
from domain.projection import FILING_EVENTS, CaseProjection, projection  # noqa: F401

# Validation lives in domain/validation.py; re-exported so `decide.validate`, `decide.check_filing` keep working.
from domain.validation import _amended, _check_extension, _check_payload, _need, check_filing, validate  # noqa: F401

MAX_REMEMBERED_REQUESTS = 200


def _today(now: datetime) -> date:
    return local_date(now)


# ---------------------------------------------------------------- filing


def new_case(filing: CaseFiling, policy: Policy, now: datetime, actor: Actor) -> Decision:
    """The state of a freshly filed case and its FILED ledger entry."""
    check_filing(filing, policy)
    state = CaseState(filing=filing, stage_entered_at=now, filed_at=now, policy=policy)
    state.escalation.rules = esc.RULES
    fu.adopt(state, True, now)  # issue 13: the workflow drops it again on an unpatched run
    b = _Builder(state, now)
    b.record(
        "FILED",
        actor,
        to_stage=Stage.REGISTERED,
        policy_version=policy.version,
        missing_for_transfer=missing_for_transfer(filing),
    )
    return b.decision()


# ---------------------------------------------------------------- stage entry


def _stage_limit(state: CaseState, stage: Stage) -> StageLimit | None:
    return state.policy.stage_limits.get(stage)


def _ladder(state: CaseState, stage: Stage | None = None) -> list:
    """The escalation ladder of a stage (the profile cut at the stage's ceiling)."""
    return esc.stage_ladder(state, stage or state.stage)


def _rectifying_request(state: CaseState, today: date, new_due: date | None, rework: bool) -> DeadlineRequest | None:
    pol = state.policy
    base = {
        "case_no": state.case_no,
        "stage": Stage.RECTIFYING,
        "start": today,
        "ladder": _ladder(state, Stage.RECTIFYING),
        "rebase_overdue_ladder": pol.rebase_overdue_ladder,
    }
    if new_due is not None:
        return DeadlineRequest(**base, fixed_date=new_due)
    if rework:
        lim = pol.rework_limit
        return DeadlineRequest(**base, days=lim.days, count=lim.count)
    spec = state.filing.deadline
    if spec is not None and spec.due_date is not None:
        return DeadlineRequest(**base, fixed_date=spec.due_date)
    if spec is not None and spec.kind in (DeadlineKind.IMMEDIATE_AND_ONGOING, DeadlineKind.IMMEDIATE_AND_LONG_TERM):
        lim = pol.immediate_limit
        return DeadlineRequest(**base, days=lim.days, count=lim.count) if lim else None
    if spec is not None and spec.kind is DeadlineKind.ONGOING:
        return None  # judged by dispatch, escalated by hand (domain.md §8)
    if state.filing.kind is CaseKind.PETITION:
        lim = pol.petition_rectification_limit
        return DeadlineRequest(**base, days=lim.days, count=lim.count)
    return None


def _enter(b: _Builder, stage: Stage, *, new_due: date | None = None, rework: bool = False) -> None:
    """Move to `stage`: stop the old deadline and its escalation, ask for the new one."""
    s = b.state
    esc.on_stage_left(b)
    s.stage = stage
    s.stage_entered_at = b.now
    s.deadline = None
    s.deadline_source = None
    s.pending_deadline = None
    s.overdue_reminded = False
    s.extension_request = None
    today = _today(b.now)
    req: DeadlineRequest | None = None
    if stage is Stage.RECTIFYING:
        req = _rectifying_request(s, today, new_due, rework)
    elif stage is Stage.PUBLIC_POSTING:
        if s.posting is not None:
            s.postings.append(s.posting)
        s.posting = PostingState(started_at=b.now, ends_at=None)
        req = DeadlineRequest(
            case_no=s.case_no,
            purpose="POSTING",
            stage=stage,
            start=today,
            days=s.policy.posting_days,
            count=s.policy.posting_count,
        )
    elif stage is Stage.CLOSED:
        s.closed_at = b.now
        s.archive_at = b.now + timedelta(days=s.policy.lookback_window_days)
    elif (lim := _stage_limit(s, stage)) is not None:
        ladder = _ladder(s, stage) if lim.on_overdue == "ESCALATE" else []
        req = DeadlineRequest(
            case_no=s.case_no, stage=stage, start=today, days=lim.days, count=lim.count, ladder=ladder
        )
    if stage is not Stage.PUBLIC_POSTING and s.posting is not None:
        s.postings.append(s.posting)
        s.posting = None
    s.pending_deadline = req
    b.deadline_request = req
    esc.on_stage_entered(b, stage)


def attach_deadline(notices: list[Notice], computed: ComputedDeadline) -> list[Notice]:
    """Add the newly computed due date to notices written before it was known (e.g. 交办)."""
    label = "公示截止 Posting ends" if computed.purpose == "POSTING" else "期限 Due"
    line = f"{label}: {computed.due_date} 24:00 (Asia/Shanghai); {computed.explanation.rule}"
    return [
        n if "Due:" in n.body or "Posting ends:" in n.body else n.model_copy(update={"body": f"{n.body}\n{line}"})
        for n in notices
    ]


def apply_deadline(state: CaseState, computed: ComputedDeadline, now: datetime) -> Decision:
    """Record a deadline computed by the calendar activity."""
    b = _Builder(state, now)
    s = b.state
    source, s.pending_deadline = s.pending_deadline, None
    posting = computed.purpose == "POSTING"
    if posting:
        if s.posting is not None:
            s.posting.ends_at = computed.due_at
        reason = f"公示期至 {computed.due_date}"
    else:
        s.deadline = computed
        s.deadline_source = source
        if source is not None and source.base_due_date is not None and s.suspensions:
            s.suspensions[-1].excluded_days = computed.explanation.excluded_days
        reason = f"{STAGE_LABELS_ZH[computed.stage]} 期限 {computed.due_date}"
        esc.on_deadline_applied(s, computed)
    b.record(
        "DEADLINE_SET",
        SYSTEM_ACTOR,
        reason=reason,
        purpose=computed.purpose,
        stage=computed.stage,
        due_date=computed.due_date.isoformat(),
        due_at=computed.due_at.isoformat(),
        explanation=computed.explanation.model_dump(mode="json"),
        escalation_schedule=[r.model_dump(mode="json") for r in computed.escalation_schedule],
    )
    return b.decision()


# ---------------------------------------------------------------- requests


def decide(state: CaseState, req: ActionRequest, now: datetime) -> Decision:
    """Apply a handler action: validate it, then compute its effects.

    Raises:
        CaseError: the action is refused; nothing is changed.
    """
    rule = validate(state, req, now)
    b = _Builder(state, now)
    s = b.state
    s.recent_request_ids.append(req.request_id)
    del s.recent_request_ids[:-MAX_REMEMBERED_REQUESTS]
    before = s.stage
    a = req.action
    actor = req.actor
    common = {"reason": req.reason, "request_id": req.request_id, "notify": rule.notify}

    def transition(to: Stage, **data: Any) -> None:
        b.record(a.value, actor, from_stage=before, to_stage=to, **common, **data)

    match a:
        case Action.AMEND:
            s.filing = _amended(s.filing, req, s.policy)
            b.record(
                a.value,
                actor,
                fields=sorted(req.amendment.model_dump(exclude_none=True)) if req.amendment else [],
                missing_for_transfer=missing_for_transfer(s.filing),
                **common,
            )
        case Action.TRANSFER:
            _enter(b, Stage.TRANSFERRED)
            transition(Stage.TRANSFERRED)
        case Action.ACKNOWLEDGE:
            to = Stage.INVESTIGATING if s.filing.kind is CaseKind.PETITION else Stage.RECTIFYING
            _enter(b, to)
            transition(to)
        case Action.RECORD_FINDING:
            s.finding = req.finding
            to = Stage.REPLY if req.finding is Finding.UNSUBSTANTIATED else Stage.RECTIFYING
            _enter(b, to)
            transition(to, finding=req.finding)
        case Action.REPORT_PROGRESS | Action.HELP_VISIT:
            more = rp.on_report(b, req) if a is Action.REPORT_PROGRESS else {}
            b.record(a.value, actor, evidence=req.evidence, **more, **common)
        case Action.COMPLETE_MEASURE:
            if req.measure_seq not in s.measures_done:
                s.measures_done.append(req.measure_seq)  # type: ignore[arg-type]
            more = ms.on_measure_done(b, req)
            b.record(a.value, actor, measure_seq=req.measure_seq, evidence=req.evidence, **more, **common)
        case Action.SUBMIT_COMPLETION:
            simple = s.filing.kind is CaseKind.PETITION and s.policy.petition_closure is PetitionClosure.SIMPLE
            to = Stage.REPLY if simple else Stage.PRELIM_REVIEW
            _enter(b, to)
            transition(to, evidence=req.evidence)
        case Action.PRELIM_PASS | Action.APPLY_CLOSURE | Action.REPLY:
            _enter(b, rule.to_stage)  # type: ignore[arg-type]
            if a is Action.REPLY:
                s.reply = req.reason
            transition(rule.to_stage, evidence=req.evidence)  # type: ignore[arg-type]
        case Action.PRELIM_REJECT | Action.VERIFY_FAIL:
            if a is Action.VERIFY_FAIL:
                s.verifications.append(_verification(b, req, passed=False))
            s.cycle += 1
            _enter(b, Stage.RECTIFYING, new_due=req.new_due_date, rework=True)
            transition(Stage.RECTIFYING, cycle=s.cycle)
        case Action.VERIFY_PASS:
            s.verifications.append(_verification(b, req, passed=True))
            _enter(b, Stage.FILING)
            transition(Stage.FILING, criteria=req.criteria.model_dump(mode="json") if req.criteria else None)
        case Action.RECORD_FILING | Action.DISCLOSE:
            to = Stage.LONG_TERM_MAINTENANCE if long_term_after_closure(s.filing.deadline) else Stage.CLOSED
            if s.filing.kind is CaseKind.PETITION:
                to = Stage.CLOSED
            _enter(b, to)
            if to is Stage.LONG_TERM_MAINTENANCE:
                s.closed_at = now
            transition(to)
        case Action.OBJECT:
            _object(b, req)
        case Action.UPHOLD_OBJECTION:
            obj = find_objection(s, req.objection_id)
            assert obj is not None
            obj.ruling, obj.ruled_at = "UPHELD", now
            s.cycle += 1
            _enter(b, Stage.RECTIFYING, new_due=req.new_due_date, rework=True)
            transition(Stage.RECTIFYING, objection_id=obj.objection_id, cycle=s.cycle)
        case Action.DISMISS_OBJECTION:
            obj = find_objection(s, req.objection_id)
            assert obj is not None and s.posting is not None
            obj.ruling, obj.ruled_at = "DISMISSED", now
            if s.posting.open_objection() is None and s.posting.remaining_seconds is not None:
                s.posting.ends_at = now + timedelta(seconds=s.posting.remaining_seconds)
                s.posting.remaining_seconds = None
            b.record(
                a.value,
                actor,
                objection_id=obj.objection_id,
                posting_ends_at=s.posting.ends_at.isoformat() if s.posting.ends_at else None,
                **common,
            )
        case Action.REQUEST_EXTENSION:
            assert req.new_due_date is not None
            s.extension_request = ExtensionRequest(
                requested_due_date=req.new_due_date, reason=req.reason, by=actor.user_id, at=now
            )
            b.record(a.value, actor, requested_due_date=req.new_due_date.isoformat(), **common)
        case Action.APPROVE_EXTENSION:
            assert s.extension_request is not None and s.deadline is not None
            new_due = req.new_due_date or s.extension_request.requested_due_date
            s.extension_request = None
            b.record(
                a.value, actor, old_due_date=s.deadline.due_date.isoformat(),
                new_due_date=new_due.isoformat(), **common,
            )
            req_dl = DeadlineRequest(
                case_no=s.case_no, stage=s.stage, start=_today(now), fixed_date=new_due,
                ladder=_ladder(s) if s.deadline.escalation_schedule else [],
            )
            s.pending_deadline = req_dl
            b.deadline_request = req_dl
        case Action.REJECT_EXTENSION:
            s.extension_request = None
            b.record(a.value, actor, **common)
        case Action.SUSPEND:
            s.suspension = Suspension(start=now, reason=req.reason)
            b.record(a.value, actor, **common)
        case Action.RESUME:
            _resume(b, req)
        case Action.APPLY_RUNG:
            esc.apply_rung(b, req)
        case Action.PROPOSE_RUNG:
            esc.propose(b, req)
        case Action.CONFIRM_ESCALATION:
            esc.confirm(b, req)
        case Action.DISMISS_ESCALATION:
            esc.dismiss(b, req)
        case Action.DE_ESCALATE:
            if (req_dl := esc.de_escalate(b, req)) is not None:
                s.pending_deadline = req_dl
                b.deadline_request = req_dl
        case Action.VERIFY_REFERRAL:
            esc.verify_referral(b, req)
        case Action.RETURN_REFERRAL:
            esc.return_referral(b, req)
        case Action.SPOT_CHECK:
            from domain.fanout import record_spot_check  # issue 13; fanout imports this module

            record_spot_check(b, req)
        case Action.RECALCULATE_DEADLINE:
            assert s.deadline is not None
            b.record(a.value, actor, old_due_date=s.deadline.due_date.isoformat(),
                     old_calendar=s.deadline.explanation.calendar_version, **common)
            s.pending_deadline = s.deadline_source
            b.deadline_request = s.deadline_source
        case Action.REFER_ACCOUNTABILITY:
            esc.refer(b, req)
        case Action.ACCEPT_REFERRAL | Action.CONCLUDE_REFERRAL:
            ref = next(r for r in s.referrals if r.referral_id == req.referral_id)
            if a is Action.ACCEPT_REFERRAL:
                ref.status = ReferralStatus.ACCEPTED
            else:
                ref.status, ref.outcome, ref.concluded_at = ReferralStatus.CONCLUDED, req.reason, now
            b.record(a.value, actor, referral_id=ref.referral_id, status=ref.status, **common)
        case Action.REOPEN:
            s.reopen_count += 1
            s.cycle += 1
            s.closed_at = None
            s.archive_at = None
            _enter(b, Stage.RECTIFYING, new_due=req.new_due_date, rework=True)
            transition(Stage.RECTIFYING, lookback_finding=req.lookback_finding, cycle=s.cycle)
        case _:  # pragma: no cover - every action has a branch
            raise AssertionError(f"no branch for {a}")
    return b.decision()


def _verification(b: _Builder, req: ActionRequest, passed: bool) -> VerificationRecord:
    return VerificationRecord(
        at=b.now, by=req.actor.user_id, unit=req.actor.unit, passed=passed,
        criteria=req.criteria, reason=req.reason, cycle=b.state.cycle,
    )


def _object(b: _Builder, req: ActionRequest) -> None:
    s = b.state
    assert s.posting is not None
    oid = f"O{len(s.posting.objections) + 1}"
    s.posting.objections.append(Objection(objection_id=oid, at=b.now, by=req.actor.user_id, text=req.reason))
    if s.posting.ends_at is not None:
        # The clock stops while an objection awaits the office's ruling.
        s.posting.remaining_seconds = max((s.posting.ends_at - b.now).total_seconds(), 0.0)
        s.posting.ends_at = None
    b.record(
        req.action.value, req.actor, reason=req.reason, request_id=req.request_id,
        notify=rule_for(req.action).notify, objection_id=oid,
    )


def _resume(b: _Builder, req: ActionRequest) -> None:
    s = b.state
    assert s.suspension is not None
    susp = s.suspension
    susp.end = b.now
    s.suspension = None
    start_d, end_d = _today(susp.start), _today(b.now)
    b.record(
        req.action.value, req.actor, reason=req.reason, request_id=req.request_id,
        notify=rule_for(req.action).notify, suspended_from=susp.start.isoformat(),
    )
    if s.deadline is not None:
        count = s.deadline.count or DayCount.CALENDAR
        dl = DeadlineRequest(
            case_no=s.case_no, stage=s.stage, start=end_d, base_due_date=s.deadline.due_date,
            exclude_from=start_d, exclude_until=end_d, count=count,
            ladder=_ladder(s) if s.deadline.escalation_schedule else [],
        )
        s.pending_deadline = dl
        b.deadline_request = dl
    s.suspensions.append(susp)


# ---------------------------------------------------------------- the clock


def next_wakeup(state: CaseState) -> datetime | None:
    """When the clock next needs the case (None: only a handler action can move it)."""
    s = state
    if s.stage is Stage.ARCHIVED or s.pending_deadline is not None:
        return None
    if s.stage is Stage.CLOSED:
        return s.archive_at
    if s.suspension is not None:
        return None
    candidates: list[datetime] = []
    if s.posting is not None and s.posting.ends_at is not None:
        candidates.append(s.posting.ends_at)
    if s.deadline is not None:
        if s.deadline.escalation_schedule:
            if (r := esc.next_rung(s)) is not None:
                candidates.append(r.fire_at)
        elif not s.overdue_reminded:
            candidates.append(s.deadline.due_at)
    candidates += fu.wakeups(s)  # issue 13: milestones, monthly report
    return min(candidates) if candidates else None


def on_wakeup(state: CaseState, now: datetime) -> Decision | None:
    """Everything the clock makes happen at `now`; None if nothing is due."""
    s = state
    due = next_wakeup(s)
    if due is None or due > now:
        return None
    b = _Builder(s, now)
    s = b.state
    if s.stage is Stage.CLOSED and s.archive_at is not None and s.archive_at <= now:
        s.stage = Stage.ARCHIVED
        b.record("ARCHIVED", SYSTEM_ACTOR, from_stage=Stage.CLOSED, to_stage=Stage.ARCHIVED,
                 reason="look-back window over (回头看期满)")
        b.finished = True
        return b.decision()
    if s.suspension is None and fu.on_wakeup(b):  # issue 13; the stage's own timers on the next wake
        return b.decision()
    if s.posting is not None and s.posting.ends_at is not None and s.posting.ends_at <= now:
        before = s.stage
        _enter(b, Stage.CLOSURE_APPLICATION)
        b.record("POSTING_ENDED", SYSTEM_ACTOR, from_stage=before, to_stage=Stage.CLOSURE_APPLICATION,
                 reason="公示期满无异议", notify=(Role.RESPONSIBLE_UNIT, Role.LEAD_SUPERVISOR))
        return b.decision()
    if s.deadline is not None and not s.deadline.escalation_schedule:
        if not s.overdue_reminded and s.deadline.due_at <= now:
            s.overdue_reminded = True
            b.record("OVERDUE_REMINDER", SYSTEM_ACTOR, reason=f"{STAGE_LABELS_ZH[s.stage]} 已逾期",
                     notify=_overdue_roles(s.stage), due_date=s.deadline.due_date.isoformat())
        return b.decision()
    esc.climb(b)
    return b.decision()


def apply_followup_schedule(state: CaseState, result: Any, now: datetime) -> Decision:
    """Record follow-up timers dated by the calendar activity (issue 13, domain/followup.py)."""
    b = _Builder(state, now)
    fu.apply_schedule(b, result)
    return b.decision()


def _overdue_roles(stage: Stage) -> tuple[Role, ...]:
    if stage in (Stage.PRELIM_REVIEW, Stage.VERIFICATION):
        return (Role.LEAD_SUPERVISOR, Role.RECTIFICATION_OFFICE)
    return (Role.RECTIFICATION_OFFICE,)


