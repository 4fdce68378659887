"""The decision core: given a case state, a request (or the clock), what happens.

Functions here are pure: they take `now` and return a new state plus the ledger
entries and notices to record, and at most one deadline for the calendar
activity to compute. The workflow performs; this module decides.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from pydantic import ValidationError

from domain import closure_levels as levels
from domain import escalation as esc
from domain import followup as fu
from domain import milestones as ms
from domain import reporting as rp
from domain.calendar import local_date
from domain.deadlines import long_term_after_closure, validate_spec

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
from domain.errors import (
    CaseError,
    DuplicateRequestError,
    InvalidDeadlineError,
    InvalidFilingError,
    InvalidTransitionError,
    MissingInputError,
    StaleStageError,
)
from domain.lifecycle import (
    Rule,
    authorize,
    check_preconditions,
    check_stage,
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


def _need(req: ActionRequest, rule: Rule) -> None:
    missing = []
    for name in rule.needs:
        value = getattr(req, name)
        if value is None or (isinstance(value, str) and not value.strip()):
            missing.append(name)
    if missing:
        raise MissingInputError(f"{rule.action} needs: {', '.join(missing)}")


def validate(state: CaseState, req: ActionRequest, now: datetime) -> Rule:
    """Every check an action must pass before anything is recorded.

    Raises:
        CaseError: a leaf error naming what is wrong.
    """
    rule = levels.effective_rule(state, rule_for(req.action))
    if req.request_id in state.recent_request_ids:
        raise DuplicateRequestError(f"request {req.request_id} was already processed")
    authorize(state, req.actor, rule)
    if req.expected_stage is not None and req.expected_stage != state.stage:
        raise StaleStageError(
            f"case {state.case_no} is in stage {state.stage}, not {req.expected_stage}"
        )
    check_stage(state, rule)
    _need(req, rule)
    check_preconditions(state, rule, req.objection_id)
    _check_payload(state, req, now)
    ms.check_action(state, req)  # issue 13: evidence of a measure, measures done before 验收
    return rule


def _check_payload(state: CaseState, req: ActionRequest, now: datetime) -> None:
    today = _today(now)
    match req.action:
        case Action.AMEND:
            _amended(state.filing, req, state.policy)  # raises on an invalid amendment
        case Action.COMPLETE_MEASURE:
            seqs = {m.seq for m in state.filing.measures}
            if req.measure_seq not in seqs:
                raise MissingInputError(f"case {state.case_no} has no measure {req.measure_seq}")
            if req.measure_seq in state.measures_done and (state.followup is None or ms.already_done(
                    state, req.measure_seq)):
                raise InvalidTransitionError(f"measure {req.measure_seq} is already done")
        case Action.VERIFY_PASS:
            assert req.criteria is not None
            if not req.criteria.all_met():
                raise MissingInputError(
                    "verification passes only when 生态修复、污染消除、群众满意 are all met; "
                    "use VERIFY_FAIL otherwise"
                )
            if bare := req.criteria.unmet_without_evidence():
                raise MissingInputError(f"criteria without evidence references: {', '.join(bare)}")
        case Action.REQUEST_EXTENSION:
            assert state.deadline is not None and req.new_due_date is not None
            _check_extension(state, req.new_due_date, today)
        case Action.APPROVE_EXTENSION:
            assert state.extension_request is not None
            _check_extension(state, req.new_due_date or state.extension_request.requested_due_date, today)
        case Action.RECALCULATE_DEADLINE:
            if state.deadline_source is None:
                raise InvalidTransitionError("the current deadline has no recorded rule to recompute")
        case (Action.APPLY_RUNG | Action.PROPOSE_RUNG | Action.CONFIRM_ESCALATION | Action.DISMISS_ESCALATION
              | Action.DE_ESCALATE | Action.REFER_ACCOUNTABILITY | Action.VERIFY_REFERRAL):
            esc.check_payload(state, req)
        case Action.SPOT_CHECK:
            levels.check_spot_check(state, req.child_case_no, req.criteria.all_met() if req.criteria else None)
        case Action.ACCEPT_REFERRAL | Action.CONCLUDE_REFERRAL:
            ref = next((r for r in state.referrals if r.referral_id == req.referral_id), None)
            if ref is None:
                raise MissingInputError(f"case {state.case_no} has no referral {req.referral_id}")
            wanted = ReferralStatus.OPEN if req.action is Action.ACCEPT_REFERRAL else ReferralStatus.ACCEPTED
            if ref.status is not wanted:
                raise InvalidTransitionError(f"referral {ref.referral_id} is {ref.status}, not {wanted}")
        case _:
            pass
    if req.new_due_date is not None and req.action in (
        Action.PRELIM_REJECT, Action.VERIFY_FAIL, Action.UPHOLD_OBJECTION, Action.REOPEN, Action.DE_ESCALATE
    ) and req.new_due_date <= today:
        raise InvalidDeadlineError(f"new due date {req.new_due_date} is not after today ({today})")


def _check_extension(state: CaseState, new_due: date, today: date) -> None:
    assert state.deadline is not None
    current = state.deadline.due_date
    if new_due <= current:
        raise InvalidDeadlineError(f"extension to {new_due} is not later than the due date {current}")
    if new_due < today:
        raise InvalidDeadlineError(f"extension to {new_due} is already in the past (today {today})")
    limit = current + timedelta(days=state.policy.max_extension_days)
    if new_due > limit:
        raise InvalidDeadlineError(
            f"extension to {new_due} exceeds the policy limit of "
            f"{state.policy.max_extension_days} days ({limit})"
        )


def _amended(f: CaseFiling, req: ActionRequest, policy: Policy) -> CaseFiling:
    assert req.amendment is not None
    changes = req.amendment.model_dump(exclude_none=True)
    if not changes:
        raise MissingInputError("the amendment changes nothing")
    data = f.model_dump()
    data.update({k: getattr(req.amendment, k) for k in changes})
    try:
        filing = CaseFiling.model_validate(data)
    except ValidationError as e:
        fields = "; ".join(f"{'.'.join(map(str, err['loc']))}: {err['msg']}" for err in e.errors())
        raise InvalidFilingError(f"the amendment makes the case invalid: {fields}") from None
    check_filing(filing, policy)
    return filing


def check_filing(filing: CaseFiling, policy: Policy) -> None:
    """Consistency a filing needs beyond its field types (ladder profile, deadline spec).

    Raises:
        InvalidFilingError: naming the case and the problem.
    """
    try:
        policy.ladder(filing.ladder_profile)
        if filing.deadline is not None:
            validate_spec(filing.deadline)
        if filing.parent_case_no and not filing.case_no.startswith(f"{filing.parent_case_no}."):
            raise InvalidFilingError(
                f"a child case's number starts with its parent's ({filing.parent_case_no}.<n>)"
            )
    except KeyError as e:
        raise InvalidFilingError(f"case {filing.case_no}: {e.args[0]}") from None
    except CaseError as e:
        raise InvalidFilingError(f"case {filing.case_no}: {e}") from None


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


