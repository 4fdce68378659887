"""Validation of a handler action: every check it must pass before anything is recorded.

Split out of domain/decide.py (which re-exports `validate` and `check_filing`); pure, no I/O.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

from pydantic import ValidationError

from domain import closure_levels as levels
from domain import escalation as esc
from domain import milestones as ms
from domain.calendar import local_date
from domain.deadlines import validate_spec
from domain.enums import Action, ReferralStatus
from domain.errors import (
    CaseError,
    DuplicateRequestError,
    InvalidDeadlineError,
    InvalidFilingError,
    InvalidTransitionError,
    MissingInputError,
    StaleStageError,
)
from domain.lifecycle import Rule, authorize, check_preconditions, check_stage, rule_for
from domain.model import ActionRequest, CaseFiling, CaseState
from domain.policy import Policy


def _today(now: datetime) -> date:
    return local_date(now)


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
              | Action.DE_ESCALATE | Action.REFER_ACCOUNTABILITY | Action.VERIFY_REFERRAL
              | Action.RETURN_REFERRAL):
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
