"""Who may act: domain.lifecycle.authorize, decide's NotAuthorizedError and allowed_actions."""

from __future__ import annotations

import pytest

from domain.decide import decide
from domain.enums import Action, ReferralPath, Role, Stage
from domain.errors import InvalidTransitionError, MissingInputError, NotAuthorizedError
from domain.lifecycle import RULES, Rule, allowed_actions, authorize, rule_for
from domain.model import Actor
from domain.policy import Policy
from tests.unit.factories import (
    ASSIST,
    AUDITOR,
    DISCIPLINE,
    LEAD,
    LEAD2,
    OFFICE,
    OTHER_RU,
    PUBLIC,
    RU,
    RU2,
    SYSTEM,
    act,
    criteria,
    drive_to,
    new_state,
    payload,
    request,
    state_in,
)

_RULE_IDS = {"ids": lambda r: r.action.value}


def test_responsible_unit_cannot_act_on_another_units_case():
    """A responsible unit not listed on the case is refused, naming its unit."""
    s, now = state_in(Stage.TRANSFERRED)

    with pytest.raises(NotAuthorizedError, match=OTHER_RU.unit):
        decide(s, request(Action.ACKNOWLEDGE, OTHER_RU), now)


@pytest.mark.parametrize("action", [Action.REPORT_PROGRESS, Action.COMPLETE_MEASURE, Action.SUBMIT_COMPLETION,
                                    Action.REQUEST_EXTENSION])
def test_responsible_unit_of_another_unit_is_refused_every_rectifying_action(action: Action):
    """Every responsible-unit action in RECTIFYING refuses a unit not on the case."""
    s, now = state_in(Stage.RECTIFYING)

    with pytest.raises(NotAuthorizedError):
        decide(s, request(action, OTHER_RU, **payload(action)), now)


def test_every_listed_responsible_unit_is_authorised():
    """Both listed responsible units pass authorisation for SUBMIT_COMPLETION."""
    s, _ = state_in(Stage.RECTIFYING)

    for actor in (RU, RU2):
        authorize(s, actor, rule_for(Action.SUBMIT_COMPLETION))


@pytest.mark.parametrize("action", [Action.VERIFY_PASS, Action.VERIFY_FAIL])
def test_only_the_first_listed_lead_unit_may_decide_verification(action: Action):
    """The second-listed lead supervising unit may not VERIFY_PASS or VERIFY_FAIL."""
    s, now = state_in(Stage.VERIFICATION)

    with pytest.raises(NotAuthorizedError, match="first-listed lead supervising unit"):
        decide(s, request(action, LEAD2, **payload(action)), now)


@pytest.mark.parametrize("action", [Action.VERIFY_PASS, Action.VERIFY_FAIL])
def test_first_listed_lead_unit_may_decide_verification(action: Action):
    """The first-listed lead supervising unit is authorised for verification."""
    s, now = state_in(Stage.VERIFICATION)

    after = act(s, action, LEAD, now, **payload(action))

    assert after.stage is (Stage.FILING if action is Action.VERIFY_PASS else Stage.RECTIFYING)


@pytest.mark.parametrize("action", [Action.PRELIM_PASS, Action.PRELIM_REJECT])
def test_second_listed_lead_unit_may_take_preliminary_review_decisions(action: Action):
    """初审 is not first-lead-only: the second lead unit may pass or reject."""
    s, now = state_in(Stage.PRELIM_REVIEW)

    after = act(s, action, LEAD2, now, **payload(action))

    assert after.stage is rule_for(action).to_stage


def test_lead_unit_not_on_the_case_is_refused():
    """A lead supervisor of a unit not listed on the case is refused."""
    s, now = state_in(Stage.PRELIM_REVIEW)
    stranger = Actor(user_id="lead-x", role=Role.LEAD_SUPERVISOR, unit="省生态环境厅")

    with pytest.raises(NotAuthorizedError, match="not a lead supervising unit"):
        decide(s, request(Action.PRELIM_PASS, stranger), now)


def test_assisting_unit_may_help_but_only_if_listed():
    """HELP_VISIT by the listed assisting unit succeeds; another assisting unit is refused."""
    s, now = state_in(Stage.RECTIFYING)
    stranger = Actor(user_id="assist-x", role=Role.ASSIST_SUPERVISOR, unit="市交通局")

    assert act(s, Action.HELP_VISIT, ASSIST, now, reason="帮扶").stage is Stage.RECTIFYING
    with pytest.raises(NotAuthorizedError, match="not an assisting unit"):
        decide(s, request(Action.HELP_VISIT, stranger, reason="帮扶"), now)


@pytest.mark.parametrize("rule", [r for r in RULES if r.action not in (Action.ACCEPT_REFERRAL,
                                                                        Action.CONCLUDE_REFERRAL)], **_RULE_IDS)
def test_discipline_commission_may_act_only_on_referrals(rule: Rule):
    """纪委监委 is refused every action other than accepting and concluding referrals."""
    s, _ = state_in(Stage.RECTIFYING)

    with pytest.raises(NotAuthorizedError):
        authorize(s, DISCIPLINE, rule)


def test_discipline_commission_cannot_accept_a_referral_that_does_not_exist():
    """ACCEPT_REFERRAL names an existing referral; an unknown id, or none at all, is refused."""
    s, now = state_in(Stage.RECTIFYING)
    with pytest.raises(InvalidTransitionError, match="no open referral"):
        decide(s, request(Action.ACCEPT_REFERRAL, DISCIPLINE, referral_id=f"{s.case_no}-R1"), now)
    s = act(s, Action.REFER_ACCOUNTABILITY, OFFICE, now, referral_path=ReferralPath.PERFORMANCE, reason="逾期", report_ref="追责建议报告-1")

    with pytest.raises(MissingInputError, match="no referral"):
        decide(s, request(Action.ACCEPT_REFERRAL, DISCIPLINE, referral_id=f"{s.case_no}-R9"), now)


def test_discipline_commission_of_another_unit_is_refused():
    """Only the policy's discipline unit may act as 纪委监委."""
    s, now = state_in(Stage.RECTIFYING)
    s = act(s, Action.REFER_ACCOUNTABILITY, OFFICE, now, referral_path=ReferralPath.PERFORMANCE, reason="逾期", report_ref="追责建议报告-1")
    other = Actor(user_id="disc-x", role=Role.DISCIPLINE_COMMISSION, unit="县纪委监委")

    with pytest.raises(NotAuthorizedError, match="not the discipline commission"):
        decide(s, request(Action.ACCEPT_REFERRAL, other, referral_id=s.referrals[0].referral_id), now)


@pytest.mark.parametrize("rule", RULES, **_RULE_IDS)
def test_auditor_is_refused_every_action(rule: Rule):
    """Auditors only read: every rule refuses them."""
    s, _ = state_in(Stage.RECTIFYING)

    with pytest.raises(NotAuthorizedError, match="AUDITOR"):
        authorize(s, AUDITOR, rule)


@pytest.mark.parametrize("rule", RULES, **_RULE_IDS)
def test_system_actor_never_acts_through_a_handler(rule: Rule):
    """The engine's own SYSTEM actor is refused every handler action."""
    s, _ = state_in(Stage.RECTIFYING)

    with pytest.raises(NotAuthorizedError):
        authorize(s, SYSTEM, rule)


@pytest.mark.parametrize("rule", [r for r in RULES if r.action is not Action.OBJECT], **_RULE_IDS)
def test_public_may_only_object(rule: Rule):
    """公众 is refused every action except OBJECT."""
    s, _ = state_in(Stage.PUBLIC_POSTING)

    with pytest.raises(NotAuthorizedError):
        authorize(s, PUBLIC, rule)


def test_public_may_object_during_posting():
    """OBJECT by the public is authorised whatever (or no) unit it names."""
    s, _ = state_in(Stage.PUBLIC_POSTING)

    authorize(s, PUBLIC, rule_for(Action.OBJECT))


def test_office_unit_must_match_the_policy_office_unit():
    """A 整改办 actor of another unit (e.g. a county office) is refused."""
    s = new_state()
    county = Actor(user_id="office-x", role=Role.RECTIFICATION_OFFICE, unit="县整改办")

    with pytest.raises(NotAuthorizedError, match="not the rectification office"):
        decide(s, request(Action.TRANSFER, county), s.filed_at)


def test_office_unit_follows_the_policy_snapshot_of_the_case():
    """With policy.office_unit = 县整改办 that unit is the office and the default one is refused."""
    s = new_state(policy=Policy(office_unit="县整改办"))
    county = Actor(user_id="office-x", role=Role.RECTIFICATION_OFFICE, unit="县整改办")

    assert act(s, Action.TRANSFER, county, s.filed_at).stage is Stage.TRANSFERRED
    with pytest.raises(NotAuthorizedError):
        decide(s, request(Action.TRANSFER, OFFICE), s.filed_at)


def test_wrong_role_refusal_names_the_allowed_roles():
    """A role refusal says which roles may take the action."""
    s, now = state_in(Stage.REGISTERED)

    with pytest.raises(NotAuthorizedError, match="allowed: RECTIFICATION_OFFICE"):
        decide(s, request(Action.TRANSFER, RU), now)


# ------------------------------------------------------------------ allowed_actions


def test_allowed_actions_of_the_responsible_unit_while_rectifying():
    """In RECTIFYING the responsible unit sees its four rectification actions."""
    s, _ = state_in(Stage.RECTIFYING)

    assert set(allowed_actions(s, RU)) == {
        Action.REPORT_PROGRESS, Action.COMPLETE_MEASURE, Action.SUBMIT_COMPLETION, Action.REQUEST_EXTENSION,
    }


def test_allowed_actions_is_empty_for_a_unit_not_on_the_case():
    """A responsible unit of another case may take nothing."""
    s, _ = state_in(Stage.RECTIFYING)

    assert allowed_actions(s, OTHER_RU) == []


@pytest.mark.parametrize("stage", [Stage.REGISTERED, Stage.RECTIFYING, Stage.PUBLIC_POSTING, Stage.CLOSED])
def test_allowed_actions_is_empty_for_an_auditor(stage: Stage):
    """Auditors have no buttons in any stage."""
    s, _ = state_in(stage)

    assert allowed_actions(s, AUDITOR) == []


def test_allowed_actions_of_the_public_during_posting_is_only_object():
    """During 公示 the public may only object."""
    s, _ = state_in(Stage.PUBLIC_POSTING)

    assert allowed_actions(s, PUBLIC) == [Action.OBJECT]


def test_allowed_actions_of_the_public_outside_posting_is_empty():
    """Outside 公示 the public has nothing to do."""
    s, _ = state_in(Stage.RECTIFYING)

    assert allowed_actions(s, PUBLIC) == []


def test_allowed_actions_in_verification_depend_on_lead_unit_order():
    """The first lead unit sees VERIFY_PASS/VERIFY_FAIL; the second does not."""
    s, _ = state_in(Stage.VERIFICATION)

    first, second = set(allowed_actions(s, LEAD)), set(allowed_actions(s, LEAD2))

    assert {Action.VERIFY_PASS, Action.VERIFY_FAIL} <= first
    assert not {Action.VERIFY_PASS, Action.VERIFY_FAIL} & second


def test_allowed_actions_of_the_office_on_a_registered_case():
    """A REGISTERED case offers the office AMEND and TRANSFER, and no referral yet."""
    s, _ = state_in(Stage.REGISTERED)

    allowed = set(allowed_actions(s, OFFICE))

    assert {Action.AMEND, Action.TRANSFER} <= allowed
    assert Action.REFER_ACCOUNTABILITY not in allowed


def test_allowed_actions_agree_with_decide_for_the_responsible_unit():
    """Every action allowed_actions offers the unit in TRANSFERRED is accepted by decide."""
    s, now = state_in(Stage.TRANSFERRED)

    offered = allowed_actions(s, RU)

    assert offered == [Action.ACKNOWLEDGE]
    assert act(s, Action.ACKNOWLEDGE, RU, now).stage is Stage.RECTIFYING


def test_allowed_actions_of_the_discipline_commission_are_referral_actions_only():
    """纪委监委 is only ever offered ACCEPT_REFERRAL and CONCLUDE_REFERRAL."""
    s, _ = drive_to(Stage.RECTIFYING)

    assert set(allowed_actions(s, DISCIPLINE)) <= {Action.ACCEPT_REFERRAL, Action.CONCLUDE_REFERRAL}


def test_first_lead_verify_pass_records_the_verifying_unit():
    """The verification record names the first lead unit and its user."""
    s, now = state_in(Stage.VERIFICATION)

    after = act(s, Action.VERIFY_PASS, LEAD, now, criteria=criteria())

    assert (after.verifications[-1].unit, after.verifications[-1].by) == (LEAD.unit, LEAD.user_id)
