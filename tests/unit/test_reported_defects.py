"""Defects found by the unit-test pass, each pinned by the behaviour now expected."""

from __future__ import annotations

from datetime import date, datetime

import pytest

from domain.deadlines import compute_deadline
from domain.decide import decide
from domain.enums import Action, DeadlineKind, Stage
from domain.errors import (
    CaseError,
    InvalidTransitionError,
    MissingInputError,
)
from domain.lifecycle import allowed_actions
from domain.model import CaseAmendment, CriterionCheck, DeadlineRequest, DeadlineSpec
from domain.policy import CANONICAL_LADDER
from tests.unit.factories import (
    LEAD,
    NOW,
    OFFICE,
    RU,
    UTC,
    act,
    calendar,
    criteria,
    new_state,
    payload,
    request,
    state_in,
)


def test_amend_that_would_make_the_filing_invalid_is_refused_with_a_case_error():
    """AMEND(title="") should be a CaseError refusal, not a pydantic ValidationError."""
    s = new_state()

    with pytest.raises(CaseError):
        decide(s, request(Action.AMEND, OFFICE, amendment=CaseAmendment(title="")), NOW)


def test_amend_to_an_unknown_ladder_profile_is_refused():
    """AMEND(ladder_profile="nope") should be refused like new_case refuses it."""
    s = new_state()

    with pytest.raises(CaseError):
        decide(s, request(Action.AMEND, OFFICE, amendment=CaseAmendment(ladder_profile="nope")), NOW)


def test_amend_with_an_inconsistent_deadline_spec_is_refused():
    """AMEND(deadline=DATE without due_date) should be refused as validate_spec refuses it at intake."""
    s = new_state(__import__("tests.unit.factories", fromlist=["make_filing"]).make_filing(deadline=None))

    with pytest.raises(CaseError):
        decide(s, request(Action.AMEND, OFFICE, amendment=CaseAmendment(
            deadline=DeadlineSpec(kind=DeadlineKind.DATE))), NOW)


def test_verify_pass_with_measures_all_done_met_without_evidence_is_refused():
    """A measures_all_done criterion marked met with no evidence should be refused like the other three."""
    s, now = state_in(Stage.VERIFICATION)
    c = criteria()
    c.measures_all_done = CriterionCheck(met=True, evidence=[])

    with pytest.raises(MissingInputError, match="measures_all_done"):
        decide(s, request(Action.VERIFY_PASS, LEAD, criteria=c), now)


def test_resumed_suspension_records_its_excluded_days():
    """After RESUME, the closed Suspension record should carry the days excluded (10 here)."""
    s, now = state_in(Stage.RECTIFYING)
    s = act(s, Action.SUSPEND, OFFICE, now, reason="诉讼")

    after = act(s, Action.RESUME, OFFICE, datetime(2025, 3, 13, 2, 0, tzinfo=UTC))

    assert after.deadline.explanation.excluded_days == 10
    assert after.suspensions[-1].excluded_days == 10


def test_escalation_schedule_in_an_uncovered_year_is_reported_provisional():
    """A due date in 2026 whose ladder rungs are computed in 2027 (no holiday data) should be provisional."""
    req = DeadlineRequest(case_no="x", stage=Stage.RECTIFYING, start=date(2026, 12, 1),
                          fixed_date=date(2026, 12, 30), ladder=CANONICAL_LADDER.rungs)

    dl = compute_deadline(req, calendar())

    assert dl.escalation_schedule[-1].fire_date.year == 2027
    assert "provisional" in dl.explanation.calendar_version


def test_fixed_due_date_in_an_uncovered_year_is_reported_provisional():
    """A fixed 2027 due date with a ladder walked through 2027 should be marked provisional."""
    req = DeadlineRequest(case_no="x", stage=Stage.RECTIFYING, start=date(2026, 12, 1),
                          fixed_date=date(2027, 6, 30), ladder=CANONICAL_LADDER.rungs)

    dl = compute_deadline(req, calendar())

    assert "provisional" in dl.explanation.calendar_version


@pytest.mark.parametrize("stage", [Stage.RECTIFYING, Stage.PUBLIC_POSTING, Stage.REGISTERED])
def test_allowed_actions_only_offers_actions_whose_preconditions_hold(stage):
    """allowed_actions (the admin tool's buttons) should not offer RESUME/UPHOLD/APPROVE/ACCEPT... whose preconditions fail."""
    s, now = state_in(stage)
    offered = allowed_actions(s, OFFICE) + allowed_actions(s, LEAD) + allowed_actions(s, __import__("tests.unit.factories", fromlist=["DISCIPLINE"]).DISCIPLINE)
    bad = []
    for a in offered:
        actor = {**dict.fromkeys(allowed_actions(s, OFFICE), OFFICE), **dict.fromkeys(allowed_actions(s, LEAD), LEAD)}.get(a, __import__("tests.unit.factories", fromlist=["DISCIPLINE"]).DISCIPLINE)
        fields = payload(a)
        if a is Action.APPLY_RUNG:
            from domain.enums import Rung
            fields.update(rung=Rung.NOTICE_LETTER, reason="x")
        if a in (Action.ACCEPT_REFERRAL, Action.CONCLUDE_REFERRAL):
            fields["referral_id"] = "none"
        try:
            decide(s, request(a, actor, **fields), now)
        except (InvalidTransitionError, MissingInputError) as e:
            bad.append((a.value, str(e)))
    assert bad == []


def test_a_suspended_case_does_not_change_stage_until_resumed():
    """While suspended (中止) stage-changing actions are refused; after RESUME they are allowed again."""
    s, now = state_in(Stage.RECTIFYING)
    s = act(s, Action.SUSPEND, OFFICE, now, reason="诉讼")

    with pytest.raises(InvalidTransitionError, match="中止"):
        decide(s, request(Action.SUBMIT_COMPLETION, RU), datetime(2025, 3, 20, 2, tzinfo=UTC))
    assert Action.SUBMIT_COMPLETION not in allowed_actions(s, RU)
    s = act(s, Action.RESUME, OFFICE, datetime(2025, 3, 21, 2, tzinfo=UTC))
    assert act(s, Action.SUBMIT_COMPLETION, RU, datetime(2025, 3, 21, 3, tzinfo=UTC)).stage is Stage.PRELIM_REVIEW

