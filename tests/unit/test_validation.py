"""Refusals of malformed or ill-timed requests: missing input, incomplete cases, stale views, extensions."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest

from domain.deadlines import parse_deadline
from domain.decide import decide, missing_for_transfer, new_case, next_wakeup, validate
from domain.enums import Action, CaseKind, Rung, Stage
from domain.errors import (
    CaseError,
    DuplicateRequestError,
    IncompleteCaseError,
    InvalidDeadlineError,
    InvalidFilingError,
    InvalidTransitionError,
    MissingInputError,
    StaleStageError,
)
from domain.lifecycle import RULES
from domain.model import CaseAmendment, CriterionCheck, Measure
from domain.policy import Policy
from tests.unit.factories import (
    AUTHORISED,
    LEAD,
    LEAD2,
    NOW,
    OFFICE,
    PLAN_DUE,
    PUBLIC,
    RU,
    UTC,
    act,
    criteria,
    make_filing,
    new_state,
    payload,
    request,
    state_in,
    wake,
)

# ------------------------------------------------------------------ required fields

_NEEDS = [(rule, name) for rule in RULES for name in rule.needs]


@pytest.mark.parametrize(("rule", "field"), _NEEDS, ids=[f"{r.action.value}-{n}" for r, n in _NEEDS])
def test_each_required_field_is_enforced(rule, field):
    """Leaving out any field a rule needs raises MissingInputError naming that field."""
    stage = sorted(rule.from_stages & {Stage.REGISTERED, Stage.RECTIFYING, Stage.INVESTIGATING,
                                       Stage.PUBLIC_POSTING, Stage.PRELIM_REVIEW, Stage.VERIFICATION,
                                       Stage.REPLY, Stage.CLOSED})[0]
    s, now = state_in(stage)
    fields = {**payload(rule.action), "rung": Rung.NOTICE_LETTER, "referral_id": "R1"}
    fields = {k: v for k, v in fields.items() if k in rule.needs and k != field}
    actor = AUTHORISED[sorted(rule.roles)[0]]

    with pytest.raises(MissingInputError, match=field):
        decide(s, request(rule.action, actor, **fields), now)


@pytest.mark.parametrize("blank", ["", "   ", "\n"])
def test_a_blank_reason_counts_as_missing(blank: str):
    """A whitespace-only reason is no reason."""
    s, now = state_in(Stage.PRELIM_REVIEW)

    with pytest.raises(MissingInputError, match="reason"):
        decide(s, request(Action.PRELIM_REJECT, LEAD, reason=blank), now)


# ------------------------------------------------------------------ transfer completeness


def test_transfer_of_an_incomplete_case_names_the_missing_fields():
    """TRANSFER refuses a case lacking units, target, measures or deadline, naming each."""
    s = new_state(make_filing(responsible_units=[], target="", measures=[], deadline=None))

    with pytest.raises(IncompleteCaseError) as err:
        decide(s, request(Action.TRANSFER, OFFICE), NOW)

    for name in ("responsible_units", "target", "measures", "deadline"):
        assert name in str(err.value)
    assert "lead_supervising_units" not in str(err.value)
    assert s.case_no in str(err.value)


def test_transfer_of_a_petition_without_complaint_names_the_complaint():
    """A petition needs its complaint (or problem) text before transfer."""
    s = new_state(make_filing(CaseKind.PETITION, complaint="", problem=""))

    with pytest.raises(IncompleteCaseError, match="complaint"):
        decide(s, request(Action.TRANSFER, OFFICE), NOW)


def test_petition_does_not_need_target_measures_or_deadline():
    """The four-clear rule for petitions asks for units and the complaint only."""
    filing = make_filing(CaseKind.PETITION)

    assert missing_for_transfer(filing) == []


def test_amend_completes_a_case_so_that_it_can_be_transferred():
    """AMEND fills the missing fields and TRANSFER then succeeds."""
    s = new_state(make_filing(lead_supervising_units=[], deadline=None))
    amendment = CaseAmendment(lead_supervising_units=["市委办"], deadline=parse_deadline("2025年12月31日"))

    s = act(s, Action.AMEND, OFFICE, amendment=amendment)
    s = act(s, Action.TRANSFER, OFFICE)

    assert s.stage is Stage.TRANSFERRED
    assert s.filing.deadline is not None and s.filing.deadline.due_date == date(2025, 12, 31)
    assert s.timeline[-3].event == "AMEND"


def test_amend_that_changes_nothing_is_refused():
    """An empty amendment is refused as missing input."""
    s = new_state()

    with pytest.raises(MissingInputError, match="changes nothing"):
        decide(s, request(Action.AMEND, OFFICE, amendment=CaseAmendment()), NOW)


def test_new_case_with_an_unknown_ladder_profile_is_refused():
    """Filing refuses a ladder profile the policy does not define, naming the case."""
    filing = make_filing(ladder_profile="provincial")

    with pytest.raises(InvalidFilingError, match=filing.case_no):
        new_case(filing, Policy(), NOW, OFFICE)


# ------------------------------------------------------------------ request identity and staleness


def test_duplicate_request_id_is_refused():
    """A request id already processed for the case is refused, even for another action."""
    s, now = state_in(Stage.RECTIFYING)
    s = act(s, Action.REPORT_PROGRESS, RU, now, reason="一月", request_id="req-dup")

    with pytest.raises(DuplicateRequestError, match="req-dup"):
        decide(s, request(Action.REPORT_PROGRESS, RU, reason="二月", request_id="req-dup"), now)
    with pytest.raises(DuplicateRequestError):
        decide(s, request(Action.SUBMIT_COMPLETION, RU, request_id="req-dup"), now)


def test_request_ids_are_remembered_only_up_to_the_cap():
    """The remembered request ids are bounded (the oldest drop out)."""
    from domain.decide import MAX_REMEMBERED_REQUESTS

    s, now = state_in(Stage.RECTIFYING)
    for i in range(MAX_REMEMBERED_REQUESTS + 5):
        s = decide(s, request(Action.REPORT_PROGRESS, RU, reason="x", request_id=f"r{i}"), now).state

    assert len(s.recent_request_ids) == MAX_REMEMBERED_REQUESTS
    assert "r0" not in s.recent_request_ids and f"r{MAX_REMEMBERED_REQUESTS + 4}" in s.recent_request_ids


def test_expected_stage_mismatch_is_refused_as_stale():
    """A handler acting on an out-of-date view gets StaleStageError."""
    s, now = state_in(Stage.PRELIM_REVIEW)

    with pytest.raises(StaleStageError, match="PRELIM_REVIEW"):
        decide(s, request(Action.PRELIM_PASS, LEAD, expected_stage=Stage.RECTIFYING), now)


def test_matching_expected_stage_is_accepted():
    """expected_stage equal to the current stage passes."""
    s, now = state_in(Stage.PRELIM_REVIEW)

    after = act(s, Action.PRELIM_PASS, LEAD, now, expected_stage=Stage.PRELIM_REVIEW)

    assert after.stage is Stage.PUBLIC_POSTING


def test_refused_request_is_not_remembered():
    """A refused request leaves no trace, so it can be retried with the same id."""
    s, now = state_in(Stage.PRELIM_REVIEW)
    with pytest.raises(StaleStageError):
        decide(s, request(Action.PRELIM_PASS, LEAD, expected_stage=Stage.RECTIFYING, request_id="retry"), now)

    after = act(s, Action.PRELIM_PASS, LEAD, now, request_id="retry")

    assert after.stage is Stage.PUBLIC_POSTING


def test_every_domain_error_is_a_case_error():
    """All refusals share the CaseError base (they cross Temporal by class name)."""
    for cls in (DuplicateRequestError, IncompleteCaseError, InvalidDeadlineError, InvalidFilingError,
                InvalidTransitionError, MissingInputError, StaleStageError):
        assert issubclass(cls, CaseError)


# ------------------------------------------------------------------ verification criteria


@pytest.mark.parametrize("unmet", ["eco_restored", "pollution_eliminated", "public_satisfied"])
def test_verify_pass_with_a_criterion_unmet_is_refused(unmet: str):
    """VERIFY_PASS needs 生态修复、污染消除、群众满意 all met."""
    s, now = state_in(Stage.VERIFICATION)
    c = criteria()
    setattr(c, unmet, CriterionCheck(met=False, evidence=["x.pdf"]))

    with pytest.raises(MissingInputError, match="VERIFY_FAIL"):
        decide(s, request(Action.VERIFY_PASS, LEAD, criteria=c), now)


def test_verify_pass_with_measures_not_all_done_is_refused():
    """A measures_all_done criterion that is unmet also blocks the pass."""
    s, now = state_in(Stage.VERIFICATION)
    c = criteria()
    c.measures_all_done = CriterionCheck(met=False, evidence=["ledger.xlsx"])

    with pytest.raises(MissingInputError):
        decide(s, request(Action.VERIFY_PASS, LEAD, criteria=c), now)


@pytest.mark.parametrize("bare", ["eco_restored", "pollution_eliminated", "public_satisfied"])
def test_verify_pass_with_a_criterion_met_without_evidence_is_refused(bare: str):
    """A criterion marked met must cite evidence; the refusal names it."""
    s, now = state_in(Stage.VERIFICATION)
    c = criteria()
    setattr(c, bare, CriterionCheck(met=True, evidence=[]))

    with pytest.raises(MissingInputError, match=bare):
        decide(s, request(Action.VERIFY_PASS, LEAD, criteria=c), now)


def test_verify_fail_accepts_unmet_criteria():
    """VERIFY_FAIL records the unmet criteria with the failed verification."""
    s, now = state_in(Stage.VERIFICATION)

    after = act(s, Action.VERIFY_FAIL, LEAD, now, reason="群众不满意", criteria=criteria(met=False, evidence=False))

    assert after.verifications[-1].criteria is not None
    assert not after.verifications[-1].criteria.all_met()


# ------------------------------------------------------------------ other payload checks


def test_complete_measure_of_an_unknown_measure_is_refused():
    """COMPLETE_MEASURE names a measure of the case."""
    s, now = state_in(Stage.RECTIFYING)

    with pytest.raises(MissingInputError, match="no measure 9"):
        decide(s, request(Action.COMPLETE_MEASURE, RU, measure_seq=9), now)


def test_completing_a_measure_twice_is_refused():
    """A measure is completed once."""
    s, now = state_in(Stage.RECTIFYING)
    s = act(s, Action.COMPLETE_MEASURE, RU, now, measure_seq=2, evidence=["doc:1"])

    with pytest.raises(InvalidTransitionError, match="already done"):
        decide(s, request(Action.COMPLETE_MEASURE, RU, measure_seq=2, evidence=["doc:1"]), now)
    assert s.measures_done == [2]


def test_ruling_without_an_open_objection_is_refused():
    """UPHOLD/DISMISS need an open objection."""
    s, now = state_in(Stage.PUBLIC_POSTING)

    for action in (Action.UPHOLD_OBJECTION, Action.DISMISS_OBJECTION):
        with pytest.raises(InvalidTransitionError, match="no open objection"):
            decide(s, request(action, OFFICE, reason="x"), now)


def test_ruling_on_an_already_ruled_objection_is_refused():
    """An objection is ruled once."""
    s, now = state_in(Stage.PUBLIC_POSTING)
    s = act(s, Action.OBJECT, PUBLIC, now, reason="异议")
    s = act(s, Action.DISMISS_OBJECTION, OFFICE, now, reason="不成立", objection_id="O1")

    with pytest.raises(InvalidTransitionError):
        decide(s, request(Action.UPHOLD_OBJECTION, OFFICE, reason="x", objection_id="O1"), now)


@pytest.mark.parametrize("action", [Action.PRELIM_REJECT])
def test_send_back_with_a_new_due_date_not_after_today_is_refused(action: Action):
    """A send-back's explicit new due date must lie after today."""
    s, now = state_in(Stage.PRELIM_REVIEW)

    with pytest.raises(InvalidDeadlineError, match="not after today"):
        decide(s, request(action, LEAD, reason="x", new_due_date=date(2025, 3, 3)), now)


def test_reopen_with_a_past_due_date_is_refused():
    """REOPEN's explicit new due date must lie after today."""
    from domain.enums import LookbackFinding

    s, now = state_in(Stage.CLOSED)

    with pytest.raises(InvalidDeadlineError):
        decide(s, request(Action.REOPEN, OFFICE, lookback_finding=LookbackFinding.REBOUND, reason="x",
                          new_due_date=date(2025, 1, 1)), now)


def test_suspending_twice_is_refused():
    """A suspended case cannot be suspended again."""
    s, now = state_in(Stage.RECTIFYING)
    s = act(s, Action.SUSPEND, OFFICE, now, reason="诉讼")

    with pytest.raises(InvalidTransitionError, match="suspended"):
        decide(s, request(Action.SUSPEND, OFFICE, reason="again"), now)


def test_resuming_a_case_that_is_not_suspended_is_refused():
    """RESUME needs a suspension."""
    s, now = state_in(Stage.RECTIFYING)

    with pytest.raises(InvalidTransitionError, match="not suspended"):
        decide(s, request(Action.RESUME, OFFICE), now)


def test_concluding_a_referral_before_it_is_accepted_is_refused():
    """A referral is accepted before it is concluded, and accepted once."""
    from domain.enums import ReferralPath
    from tests.unit.factories import DISCIPLINE

    s, now = state_in(Stage.RECTIFYING)
    s = act(s, Action.REFER_ACCOUNTABILITY, OFFICE, now, referral_path=ReferralPath.PERFORMANCE, reason="x", report_ref="追责建议报告-1")
    rid = s.referrals[0].referral_id

    with pytest.raises(InvalidTransitionError, match="no accepted referral"):
        decide(s, request(Action.CONCLUDE_REFERRAL, DISCIPLINE, referral_id=rid, reason="x"), now)
    s = act(s, Action.ACCEPT_REFERRAL, DISCIPLINE, now, referral_id=rid)
    with pytest.raises(InvalidTransitionError):
        decide(s, request(Action.ACCEPT_REFERRAL, DISCIPLINE, referral_id=rid), now)


# ------------------------------------------------------------------ extensions


def _rectifying():
    return state_in(Stage.RECTIFYING)


def test_extension_must_be_later_than_the_current_due_date():
    """Asking for the current due date or an earlier one is refused."""
    s, now = _rectifying()

    for asked in (PLAN_DUE, PLAN_DUE - timedelta(days=1)):
        with pytest.raises(InvalidDeadlineError, match="not later than the due date"):
            decide(s, request(Action.REQUEST_EXTENSION, RU, new_due_date=asked, reason="x"), now)


def test_extension_within_the_policy_limit_is_accepted_at_the_limit():
    """Exactly max_extension_days past the due date is allowed; one more day is not."""
    s, now = _rectifying()
    limit = PLAN_DUE + timedelta(days=s.policy.max_extension_days)

    after = act(s, Action.REQUEST_EXTENSION, RU, now, new_due_date=limit, reason="工期长")
    assert after.extension_request is not None and after.extension_request.requested_due_date == limit
    with pytest.raises(InvalidDeadlineError, match="policy limit of 180 days"):
        decide(s, request(Action.REQUEST_EXTENSION, RU, new_due_date=limit + timedelta(days=1), reason="x"), now)


def test_extension_limit_follows_the_case_policy():
    """A policy with max_extension_days=30 refuses 31 days."""
    s = new_state(policy=Policy(max_extension_days=30))
    s = act(act(s, Action.TRANSFER, OFFICE), Action.ACKNOWLEDGE, RU)

    with pytest.raises(InvalidDeadlineError, match="30 days"):
        decide(s, request(Action.REQUEST_EXTENSION, RU, new_due_date=PLAN_DUE + timedelta(days=31), reason="x"), NOW)


def test_extension_to_a_date_already_past_is_refused():
    """On an overdue case, an extension later than the due date but before today is refused."""
    s, _ = _rectifying()
    late = datetime(2025, 8, 1, 2, 0, tzinfo=UTC)  # a month after the 2025-06-30 due date

    with pytest.raises(InvalidDeadlineError, match="in the past"):
        decide(s, request(Action.REQUEST_EXTENSION, RU, new_due_date=date(2025, 7, 15), reason="x"), late)


def test_second_extension_request_while_one_is_pending_is_refused():
    """Only one extension request may be pending."""
    s, now = _rectifying()
    s = act(s, Action.REQUEST_EXTENSION, RU, now, new_due_date=date(2025, 7, 31), reason="x")

    with pytest.raises(InvalidTransitionError, match="already pending"):
        decide(s, request(Action.REQUEST_EXTENSION, RU, new_due_date=date(2025, 8, 31), reason="y"), now)


def test_approving_without_a_pending_request_is_refused():
    """APPROVE_EXTENSION and REJECT_EXTENSION need a pending request."""
    s, now = _rectifying()

    for action, fields in ((Action.APPROVE_EXTENSION, {}), (Action.REJECT_EXTENSION, {"reason": "x"})):
        with pytest.raises(InvalidTransitionError, match="no extension request"):
            decide(s, request(action, LEAD, **fields), now)


def test_extension_on_a_stage_without_a_deadline_is_refused():
    """持续推进 items have no deadline to extend."""
    s = new_state(make_filing(deadline=parse_deadline("持续推进")))
    s = act(act(s, Action.TRANSFER, OFFICE), Action.ACKNOWLEDGE, RU)
    assert s.deadline is None

    with pytest.raises(InvalidTransitionError, match="no deadline"):
        decide(s, request(Action.REQUEST_EXTENSION, RU, new_due_date=date(2025, 7, 31), reason="x"), NOW)


def test_extension_request_while_suspended_is_refused():
    """A suspended case cannot ask for an extension."""
    s, now = _rectifying()
    s = act(s, Action.SUSPEND, OFFICE, now, reason="诉讼")

    with pytest.raises(InvalidTransitionError, match="suspended"):
        decide(s, request(Action.REQUEST_EXTENSION, RU, new_due_date=date(2025, 7, 31), reason="x"), now)


def test_approved_extension_moves_the_due_date_to_the_requested_date():
    """APPROVE_EXTENSION recomputes the deadline at the requested date, escalation schedule included."""
    s, now = _rectifying()
    s = act(s, Action.REQUEST_EXTENSION, RU, now, new_due_date=date(2025, 7, 31), reason="x")

    after = act(s, Action.APPROVE_EXTENSION, LEAD2, now)

    assert after.deadline is not None and after.deadline.due_date == date(2025, 7, 31)
    assert after.extension_request is None
    assert after.deadline.escalation_schedule[0].fire_date == date(2025, 7, 31)
    assert after.timeline[-2].event == "APPROVE_EXTENSION"


def test_approver_may_grant_a_different_date_within_the_rules():
    """The approver may set its own new_due_date, which is validated too."""
    s, now = _rectifying()
    s = act(s, Action.REQUEST_EXTENSION, RU, now, new_due_date=date(2025, 9, 30), reason="x")

    after = act(s, Action.APPROVE_EXTENSION, LEAD, now, new_due_date=date(2025, 8, 15))
    assert after.deadline is not None and after.deadline.due_date == date(2025, 8, 15)
    with pytest.raises(InvalidDeadlineError):
        decide(s, request(Action.APPROVE_EXTENSION, LEAD, new_due_date=PLAN_DUE), now)


def test_rejected_extension_keeps_the_due_date():
    """REJECT_EXTENSION clears the request and leaves the deadline alone."""
    s, now = _rectifying()
    s = act(s, Action.REQUEST_EXTENSION, RU, now, new_due_date=date(2025, 7, 31), reason="x")

    after = act(s, Action.REJECT_EXTENSION, LEAD, now, reason="理由不充分")

    assert after.extension_request is None
    assert after.deadline == s.deadline


def test_validate_alone_changes_nothing():
    """validate() returns the rule without touching the state."""
    s, now = _rectifying()
    before = s.model_dump()

    rule = validate(s, request(Action.SUBMIT_COMPLETION, RU), now)

    assert rule.action is Action.SUBMIT_COMPLETION
    assert s.model_dump() == before


# ------------------------------------------------------------------ overdue reminders (REMIND stages)


def test_remind_stage_sends_one_overdue_reminder_and_then_sleeps():
    """PRELIM_REVIEW overdue: one OVERDUE_REMINDER to lead units and office, then no more wakeups."""
    s, _ = state_in(Stage.PRELIM_REVIEW)
    assert s.deadline is not None and s.deadline.escalation_schedule == []
    due = s.deadline.due_at
    assert next_wakeup(s) == due

    from domain.decide import on_wakeup

    decision = on_wakeup(s, due)

    assert decision is not None
    assert [e.event for e in decision.entries] == ["OVERDUE_REMINDER"]
    assert {n.recipient_unit for n in decision.notices} == {"市委办", "市政府办", "整改办"}
    assert decision.state.overdue_reminded
    assert next_wakeup(decision.state) is None
    assert decision.state.stage is Stage.PRELIM_REVIEW


def test_a_new_stage_rearms_the_overdue_reminder():
    """Leaving the reminded stage clears overdue_reminded."""
    s, _ = state_in(Stage.PRELIM_REVIEW)
    s = wake(s, s.deadline.due_at)  # type: ignore[union-attr]

    after = act(s, Action.PRELIM_REJECT, LEAD, s.deadline.due_at, reason="x")  # type: ignore[union-attr]

    assert not after.overdue_reminded


def test_measure_amendment_keeps_measures_addressable():
    """Measures added by AMEND can then be completed by sequence number."""
    s = new_state()
    s = act(s, Action.AMEND, OFFICE, amendment=CaseAmendment(measures=[Measure(seq=7, text="新措施")]))
    s = act(act(s, Action.TRANSFER, OFFICE), Action.ACKNOWLEDGE, RU)

    after = act(s, Action.COMPLETE_MEASURE, RU, measure_seq=7, evidence=["doc:验收材料"])

    assert after.measures_done == [7]


def test_recalculate_without_a_deadline_is_refused():
    """RECALCULATE_DEADLINE needs a current deadline."""
    s = new_state(make_filing(deadline=parse_deadline("持续推进")))
    s = act(act(s, Action.TRANSFER, OFFICE), Action.ACKNOWLEDGE, RU)

    with pytest.raises(InvalidTransitionError, match="no deadline"):
        decide(s, request(Action.RECALCULATE_DEADLINE, OFFICE, reason="x"), NOW)



def test_the_closure_standard_labels_name_every_criterion_in_order():
    from domain.model import CRITERIA_LABELS_ZH, VerificationCriteria, criterion_required

    assert list(CRITERIA_LABELS_ZH) == list(VerificationCriteria.model_fields)
    assert [k for k in CRITERIA_LABELS_ZH if not criterion_required(k)] == ["measures_all_done"]
