"""Every row of domain.lifecycle.RULES: allowed where it says, refused everywhere else."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pytest

from domain.decide import decide
from domain.enums import Action, CaseKind, Finding, ReferralPath, Role, Rung, Stage
from domain.errors import InvalidTransitionError
from domain.lifecycle import (
    ACTIVE_STAGES,
    RULES,
    RULES_BY_ACTION,
    Rule,
    check_stage,
    rule_for,
)
from domain.model import CaseState
from tests.unit.factories import (
    ASSIST,
    AUTHORISED,
    DISCIPLINE,
    LEAD,
    OFFICE,
    PUBLIC,
    REACHABLE,
    RU,
    act,
    payload,
    request,
    settle,
    state_in,
)

Setup = Callable[[CaseState, datetime], CaseState]


def _object(s: CaseState, now: datetime) -> CaseState:
    return act(s, Action.OBJECT, PUBLIC, now, reason="仍有异味")


def _request_extension(s: CaseState, now: datetime) -> CaseState:
    return act(s, Action.REQUEST_EXTENSION, RU, now, **payload(Action.REQUEST_EXTENSION))


def _suspend(s: CaseState, now: datetime) -> CaseState:
    return act(s, Action.SUSPEND, OFFICE, now, reason="司法程序")


def _refer(s: CaseState, now: datetime) -> CaseState:
    return act(s, Action.REFER_ACCOUNTABILITY, OFFICE, now, referral_path=ReferralPath.PERFORMANCE, reason="整改不力", report_ref="追责建议报告-1")


def _propose(s: CaseState, now: datetime) -> CaseState:
    return act(s, Action.PROPOSE_RUNG, LEAD, now, rung=Rung.SUMMONS, reason="进度明显滞后")


def _warn(s: CaseState, now: datetime) -> CaseState:
    return act(s, Action.APPLY_RUNG, OFFICE, now, rung=Rung.WARNING, reason="进度滞后")


def _draft_referral(s: CaseState, now: datetime) -> CaseState:
    return act(s, Action.REFER_ACCOUNTABILITY, LEAD, now, referral_path=ReferralPath.FAKE_RECTIFICATION,
               reason="虚假整改", report_ref="追责建议报告-2")


def _spot_check_sampled(s: CaseState, now: datetime) -> CaseState:
    """A fanned-out parent in city verification with child X.1 drawn for the provincial spot-check."""
    from domain.fanout_types import ChildLink, FanoutState, SpotCheckSample

    fo = FanoutState(children=[ChildLink(case_no="X.1", units=[RU.unit], stage=Stage.CLOSED, done=True)],
                     samples=[SpotCheckSample(cycle=1, seed=1, rate=1.0, minimum=1, population=["X.1"],
                                              sample=["X.1"], drawn_at=now)])
    return s.model_copy(update={"fanout": fo})


def _refer_and_accept(s: CaseState, now: datetime) -> CaseState:
    s = _refer(s, now)
    return act(s, Action.ACCEPT_REFERRAL, DISCIPLINE, now, referral_id=s.referrals[0].referral_id)


@dataclass(frozen=True)
class Scenario:
    """Where and how an action is exercised on its happy path."""

    stage: Stage
    actor: Any
    kind: CaseKind | None = None
    setup: Setup | None = None
    fields: dict[str, Any] = field(default_factory=dict)


SCENARIOS: dict[Action, Scenario] = {
    Action.AMEND: Scenario(Stage.REGISTERED, OFFICE),
    Action.TRANSFER: Scenario(Stage.REGISTERED, OFFICE),
    Action.ACKNOWLEDGE: Scenario(Stage.TRANSFERRED, RU),
    Action.RECORD_FINDING: Scenario(Stage.INVESTIGATING, RU, CaseKind.PETITION),
    Action.REPORT_PROGRESS: Scenario(Stage.RECTIFYING, RU),
    Action.COMPLETE_MEASURE: Scenario(Stage.RECTIFYING, RU),
    Action.SUBMIT_COMPLETION: Scenario(Stage.RECTIFYING, RU),
    Action.PRELIM_PASS: Scenario(Stage.PRELIM_REVIEW, LEAD),
    Action.PRELIM_REJECT: Scenario(Stage.PRELIM_REVIEW, LEAD),
    Action.OBJECT: Scenario(Stage.PUBLIC_POSTING, PUBLIC),
    Action.UPHOLD_OBJECTION: Scenario(Stage.PUBLIC_POSTING, OFFICE, setup=_object),
    Action.DISMISS_OBJECTION: Scenario(Stage.PUBLIC_POSTING, OFFICE, setup=_object),
    Action.APPLY_CLOSURE: Scenario(Stage.CLOSURE_APPLICATION, RU),
    Action.VERIFY_PASS: Scenario(Stage.VERIFICATION, LEAD),
    Action.VERIFY_FAIL: Scenario(Stage.VERIFICATION, LEAD),
    Action.RECORD_FILING: Scenario(Stage.FILING, OFFICE),
    Action.REPLY: Scenario(Stage.REPLY, RU, CaseKind.PETITION),
    Action.DISCLOSE: Scenario(Stage.DISCLOSURE, OFFICE, CaseKind.PETITION),
    Action.REQUEST_EXTENSION: Scenario(Stage.RECTIFYING, RU),
    Action.APPROVE_EXTENSION: Scenario(Stage.RECTIFYING, LEAD, setup=_request_extension),
    Action.REJECT_EXTENSION: Scenario(Stage.RECTIFYING, LEAD, setup=_request_extension),
    Action.SUSPEND: Scenario(Stage.RECTIFYING, OFFICE),
    Action.RESUME: Scenario(Stage.RECTIFYING, OFFICE, setup=_suspend),
    Action.APPLY_RUNG: Scenario(Stage.RECTIFYING, OFFICE, fields={"rung": Rung.NOTICE_LETTER, "reason": "进度滞后"}),
    Action.REFER_ACCOUNTABILITY: Scenario(Stage.RECTIFYING, OFFICE),
    Action.ACCEPT_REFERRAL: Scenario(Stage.RECTIFYING, DISCIPLINE, setup=_refer),
    Action.CONCLUDE_REFERRAL: Scenario(Stage.RECTIFYING, DISCIPLINE, setup=_refer_and_accept),
    Action.REOPEN: Scenario(Stage.CLOSED, OFFICE),
    Action.PROPOSE_RUNG: Scenario(Stage.RECTIFYING, LEAD, fields={"rung": Rung.SUMMONS}),
    Action.CONFIRM_ESCALATION: Scenario(Stage.RECTIFYING, OFFICE, setup=_propose),
    Action.DISMISS_ESCALATION: Scenario(Stage.RECTIFYING, OFFICE, setup=_propose),
    Action.DE_ESCALATE: Scenario(Stage.RECTIFYING, OFFICE, setup=_warn),
    Action.VERIFY_REFERRAL: Scenario(Stage.RECTIFYING, OFFICE, setup=_draft_referral),
    Action.RETURN_REFERRAL: Scenario(Stage.RECTIFYING, OFFICE, setup=_draft_referral),
    Action.HELP_VISIT: Scenario(Stage.RECTIFYING, ASSIST),
    Action.RECALCULATE_DEADLINE: Scenario(Stage.RECTIFYING, OFFICE),
    Action.SPOT_CHECK: Scenario(Stage.VERIFICATION, OFFICE, setup=_spot_check_sampled),
}


def _arrange(action: Action) -> tuple[CaseState, datetime, Scenario, dict[str, Any]]:
    sc = SCENARIOS[action]
    state, now = state_in(sc.stage, sc.kind)
    if sc.setup is not None:
        state = sc.setup(state, now)
    fields = {**payload(action), **sc.fields}
    if action in (Action.ACCEPT_REFERRAL, Action.CONCLUDE_REFERRAL, Action.VERIFY_REFERRAL,
                  Action.RETURN_REFERRAL):
        fields["referral_id"] = state.referrals[0].referral_id
    return state, now, sc, fields


def test_every_rule_has_a_happy_path_scenario():
    """The scenario table covers exactly the actions of the lifecycle table."""
    assert set(SCENARIOS) == {r.action for r in RULES}


def test_the_lifecycle_table_has_one_rule_per_action():
    """Each Action enum member has exactly one rule."""
    assert set(RULES_BY_ACTION) == set(Action)
    assert len(RULES) == len(Action)


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.action.value)
def test_each_scenario_stage_is_one_the_rule_allows(rule: Rule):
    """The scenario of each rule starts in one of that rule's from-stages, with an allowed role."""
    sc = SCENARIOS[rule.action]
    assert sc.stage in rule.from_stages
    assert sc.actor.role in rule.roles


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.action.value)
def test_each_action_succeeds_in_an_allowed_stage_and_reaches_its_target(rule: Rule):
    """An authorised actor with the required payload moves the case to the rule's target stage."""
    state, now, sc, fields = _arrange(rule.action)
    req = request(rule.action, sc.actor, **fields)

    decision = decide(state, req, now)
    after = settle(decision, now)

    expected = rule.to_stage if rule.to_stage is not None else sc.stage
    assert after.stage is expected
    recorded = [e for e in decision.entries if e.event == rule.action.value]
    assert len(recorded) == 1
    assert recorded[0].request_id == req.request_id
    if rule.to_stage is not None:
        assert (recorded[0].from_stage, recorded[0].to_stage) == (sc.stage, rule.to_stage)
    assert req.request_id in after.recent_request_ids


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.action.value)
def test_each_action_leaves_the_input_state_untouched(rule: Rule):
    """decide is pure: the state passed in is not mutated."""
    state, now, sc, fields = _arrange(rule.action)
    before = state.model_dump()

    decide(state, request(rule.action, sc.actor, **fields), now)

    assert state.model_dump() == before


def _refusal_cases() -> list[tuple[Rule, Stage, CaseKind]]:
    cases = []
    for rule in RULES:
        petition_only = rule.kinds == frozenset({CaseKind.PETITION})
        for stage in Stage:
            if stage in rule.from_stages:
                continue
            if petition_only:
                kind = CaseKind.PETITION
            elif stage in REACHABLE[CaseKind.FEEDBACK_PROBLEM]:
                kind = CaseKind.FEEDBACK_PROBLEM
            else:
                kind = CaseKind.PETITION
            if stage in REACHABLE[kind]:
                cases.append((rule, stage, kind))
    return cases


REFUSALS = _refusal_cases()


def test_every_action_has_at_least_one_refused_stage_under_test():
    """Each action is exercised in at least one stage it is not allowed in."""
    assert {r.action for r, _, _ in REFUSALS} == set(Action)


@pytest.mark.parametrize(
    ("rule", "stage", "kind"), REFUSALS, ids=[f"{r.action.value}-in-{s.value}" for r, s, _ in REFUSALS]
)
def test_each_action_is_refused_in_a_stage_it_is_not_allowed_in(rule: Rule, stage: Stage, kind: CaseKind):
    """An authorised actor gets InvalidTransitionError outside the rule's from-stages."""
    state, now = state_in(stage, kind)
    fields = payload(rule.action)
    if rule.action is Action.APPLY_RUNG:
        fields.update(rung=Rung.NOTICE_LETTER, reason="x")
    if rule.action in (Action.ACCEPT_REFERRAL, Action.CONCLUDE_REFERRAL, Action.VERIFY_REFERRAL,
                  Action.RETURN_REFERRAL):
        fields["referral_id"] = "none"
    actor = AUTHORISED[sorted(rule.roles)[0]]
    before = state.model_dump()

    with pytest.raises(InvalidTransitionError, match="not allowed in stage"):
        decide(state, request(rule.action, actor, **fields), now)

    assert state.model_dump() == before


@pytest.mark.parametrize("action", [Action.RECORD_FINDING, Action.REPLY, Action.DISCLOSE])
def test_petition_only_actions_do_not_apply_to_feedback_problems(action: Action):
    """Petition-only rules refuse a feedback-problem case whatever its stage."""
    state, _ = state_in(Stage.RECTIFYING, CaseKind.FEEDBACK_PROBLEM)

    with pytest.raises(InvalidTransitionError, match="does not apply to FEEDBACK_PROBLEM"):
        check_stage(state, rule_for(action))


_STAY_ACTIONS = {
    Action.REFER_ACCOUNTABILITY: (OFFICE, {}),
    Action.APPLY_RUNG: (OFFICE, {"rung": Rung.NOTICE_LETTER, "reason": "视情督办"}),
    Action.SUSPEND: (OFFICE, {}),
    Action.HELP_VISIT: (LEAD, {}),
    Action.REPORT_PROGRESS: (RU, {}),
}
_STAY_CASES = [
    (action, stage)
    for action in _STAY_ACTIONS
    for stage in sorted(rule_for(action).from_stages)
    if stage in REACHABLE[CaseKind.FEEDBACK_PROBLEM] | REACHABLE[CaseKind.PETITION]
]


@pytest.mark.parametrize(("action", "stage"), _STAY_CASES, ids=[f"{a.value}-in-{s.value}" for a, s in _STAY_CASES])
def test_stage_preserving_actions_succeed_in_every_allowed_stage_without_moving_it(action: Action, stage: Stage):
    """Referral, rung, suspension, help and progress report never change the stage, wherever allowed."""
    state, now = state_in(stage)
    actor, extra = _STAY_ACTIONS[action]

    decision = decide(state, request(action, actor, **{**payload(action), **extra}), now)

    assert decision.state.stage is stage
    assert all(e.to_stage is None for e in decision.entries)


def test_active_stages_exclude_registration_and_closure():
    """Escalation and accountability stages are the live ones after transfer."""
    assert Stage.REGISTERED not in ACTIVE_STAGES
    assert not ACTIVE_STAGES & {Stage.CLOSED, Stage.LONG_TERM_MAINTENANCE, Stage.ARCHIVED}


def test_record_finding_partly_substantiated_goes_to_rectifying():
    """A partly substantiated petition is rectified like a substantiated one."""
    state, now = state_in(Stage.INVESTIGATING)

    after = act(state, Action.RECORD_FINDING, RU, now, finding=Finding.PARTLY_SUBSTANTIATED, reason="部分属实")

    assert after.stage is Stage.RECTIFYING
    assert after.finding is Finding.PARTLY_SUBSTANTIATED


def test_whose_move_table_agrees_with_the_rules():
    """Every stage that waits on a role has a rule that role may take from that stage,
    and every non-final stage with a forward rule says whose move it is."""
    from domain.lifecycle import RULES, WAITING_ON, stages_waiting_on

    for stage, role in WAITING_ON.items():
        assert any(stage in r.from_stages and role in r.roles for r in RULES), (stage, role)
    assert stages_waiting_on(Role.RESPONSIBLE_UNIT)[0] is Stage.TRANSFERRED
    assert set(stages_waiting_on(Role.LEAD_SUPERVISOR)) == {Stage.PRELIM_REVIEW, Stage.VERIFICATION}
