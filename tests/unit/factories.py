"""Tiny factories for the pure-domain unit tests: actors, filings, states, requests.

`act` runs one handler action through `domain.decide.decide` and, when the decision
asks for a deadline, plays the calendar activity (`compute_deadline`) and records
it with `apply_deadline`, the way the workflow does. `drive_to` walks a fresh case
through real actions to any reachable stage.
"""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, timedelta
from functools import cache, lru_cache
from typing import Any

from activities.calendar_source import load_calendar
from domain.calendar import WorkingCalendar
from domain.deadlines import compute_deadline
from domain.decide import Decision, apply_deadline, decide, new_case, on_wakeup
from domain.enums import (
    Action,
    CaseKind,
    DeadlineKind,
    Finding,
    LookbackFinding,
    PetitionClosure,
    Role,
    Stage,
)
from domain.model import (
    ActionRequest,
    Actor,
    CaseFiling,
    CaseState,
    CriterionCheck,
    DeadlineSpec,
    Measure,
    VerificationCriteria,
)
from domain.policy import Policy

UTC = UTC
# Monday 2025-03-03, 10:00 in Asia/Shanghai: a plain working day, far from holidays.
NOW = datetime(2025, 3, 3, 2, 0, tzinfo=UTC)
TODAY = date(2025, 3, 3)
PLAN_DUE = date(2025, 6, 30)  # the plan's 整改时限 of the default feedback filing

OFFICE_UNIT = "整改办"
DISCIPLINE_UNIT = "纪委监委"
RU_UNIT = "市生态环境局"
RU2_UNIT = "市水利局"
OTHER_RU_UNIT = "市住建局"
LEAD_UNIT = "市委办"
LEAD2_UNIT = "市政府办"
ASSIST_UNIT = "市发改委"

OFFICE = Actor(user_id="office-1", role=Role.RECTIFICATION_OFFICE, unit=OFFICE_UNIT)
RU = Actor(user_id="ru-1", role=Role.RESPONSIBLE_UNIT, unit=RU_UNIT)
RU2 = Actor(user_id="ru-2", role=Role.RESPONSIBLE_UNIT, unit=RU2_UNIT)
OTHER_RU = Actor(user_id="ru-x", role=Role.RESPONSIBLE_UNIT, unit=OTHER_RU_UNIT)
LEAD = Actor(user_id="lead-1", role=Role.LEAD_SUPERVISOR, unit=LEAD_UNIT)
LEAD2 = Actor(user_id="lead-2", role=Role.LEAD_SUPERVISOR, unit=LEAD2_UNIT)
ASSIST = Actor(user_id="assist-1", role=Role.ASSIST_SUPERVISOR, unit=ASSIST_UNIT)
DISCIPLINE = Actor(user_id="disc-1", role=Role.DISCIPLINE_COMMISSION, unit=DISCIPLINE_UNIT)
SUPERVISION = Actor(user_id="dcs-1", role=Role.SUPERVISION_OFFICE, unit="市委督查室")
PUBLIC = Actor(user_id="citizen-1", role=Role.PUBLIC, unit="")
AUDITOR = Actor(user_id="audit-1", role=Role.AUDITOR, unit="审计局")
SYSTEM = Actor(user_id="system", role=Role.SYSTEM, unit="engine")

# An authorised actor for each role that appears in the lifecycle table.
AUTHORISED: dict[Role, Actor] = {
    Role.RECTIFICATION_OFFICE: OFFICE,
    Role.RESPONSIBLE_UNIT: RU,
    Role.LEAD_SUPERVISOR: LEAD,
    Role.ASSIST_SUPERVISOR: ASSIST,
    Role.DISCIPLINE_COMMISSION: DISCIPLINE,
    Role.SUPERVISION_OFFICE: SUPERVISION,
    Role.PUBLIC: PUBLIC,
}

_ids = itertools.count(1)


def make_filing(kind: CaseKind = CaseKind.FEEDBACK_PROBLEM, **overrides: Any) -> CaseFiling:
    """A complete filing (transferable as is); keyword arguments override fields."""
    data: dict[str, Any] = {
        "case_no": f"T-{next(_ids)}",
        "kind": kind,
        "title": "城镇生活污水直排问题",
        "problem": "污水收集管网不配套,雨污分流不到位",
        "target": "生活污水收集率达到90%",
        "measures": [Measure(seq=1, text="建设管网"), Measure(seq=2, text="雨污分流改造")],
        "responsible_units": [RU_UNIT, RU2_UNIT],
        "lead_supervising_units": [LEAD_UNIT, LEAD2_UNIT],
        "assisting_units": [ASSIST_UNIT],
        "deadline": DeadlineSpec(kind=DeadlineKind.DATE, due_date=PLAN_DUE, raw_zh="2025年6月30日"),
    }
    if kind is CaseKind.PETITION:
        data.update(complaint="夜间偷排废水", deadline=None, target="", measures=[])
    data.update(overrides)
    return CaseFiling(**data)


def long_term_filing(**overrides: Any) -> CaseFiling:
    """A feedback filing whose deadline is 2025年6月30日(长期坚持、防止反弹)."""
    spec = DeadlineSpec(
        kind=DeadlineKind.DATE_THEN_LONG_TERM, due_date=PLAN_DUE, long_term=True,
        raw_zh="2025年6月30日(长期坚持、防止反弹)",
    )
    return make_filing(deadline=spec, **overrides)


def full_petition_policy() -> Policy:
    """A policy under which substantiated petitions take the full 5-step closure."""
    return Policy(petition_closure=PetitionClosure.FULL_5_STEP)


def new_state(
    filing: CaseFiling | None = None, policy: Policy | None = None, now: datetime = NOW
) -> CaseState:
    """A freshly filed case (stage REGISTERED)."""
    return new_case(filing or make_filing(), policy or Policy(), now, OFFICE).state


def request(action: Action, actor: Actor, **fields: Any) -> ActionRequest:
    """A handler request with a fresh request id."""
    fields.setdefault("request_id", f"req-{next(_ids)}")
    return ActionRequest(action=action, actor=actor, **fields)


def criteria(met: bool = True, evidence: bool = True) -> VerificationCriteria:
    """Closure criteria 生态修复、污染消除、群众满意, all met (with evidence) by default."""
    def check(name: str) -> CriterionCheck:
        return CriterionCheck(met=met, evidence=[f"evidence/{name}.pdf"] if evidence else [])

    return VerificationCriteria(
        eco_restored=check("eco"), pollution_eliminated=check("pollution"),
        public_satisfied=check("public"),
    )


@lru_cache(maxsize=1)
def calendar() -> WorkingCalendar:
    """The real calendar (chinese-calendar data, no override file)."""
    return load_calendar(None)


def settle(decision: Decision, now: datetime) -> CaseState:
    """Play the calendar activity for a decision's deadline request, if any."""
    if decision.deadline_request is None:
        return decision.state
    computed = compute_deadline(decision.deadline_request, calendar(), now)
    return apply_deadline(decision.state, computed, now).state


def act(state: CaseState, action: Action, actor: Actor, now: datetime = NOW, **fields: Any) -> CaseState:
    """Decide one action and settle its deadline; returns the new state."""
    return settle(decide(state, request(action, actor, **fields), now), now)


def wake(state: CaseState, now: datetime) -> CaseState:
    """Run the clock at `now` (which must be due) and settle any deadline it asks for."""
    decision = on_wakeup(state, now)
    assert decision is not None, f"nothing due at {now}"
    return settle(decision, now)


# Default payloads that satisfy each rule's `needs`.
PAYLOAD: dict[Action, dict[str, Any]] = {
    Action.RECORD_FINDING: {"finding": Finding.SUBSTANTIATED, "reason": "属实"},
    Action.REPORT_PROGRESS: {"reason": "本月进展"},
    Action.COMPLETE_MEASURE: {"measure_seq": 1, "evidence": ["doc:措施1完成报告"]},
    Action.PRELIM_REJECT: {"reason": "证据不足"},
    Action.OBJECT: {"reason": "仍有异味"},
    Action.UPHOLD_OBJECTION: {"reason": "异议成立"},
    Action.DISMISS_OBJECTION: {"reason": "异议不成立"},
    Action.VERIFY_PASS: {"criteria": None},  # filled by `payload`
    Action.VERIFY_FAIL: {"reason": "未通过整改验收"},
    Action.REPLY: {"reason": "已办结并答复举报人"},
    Action.REQUEST_EXTENSION: {"new_due_date": PLAN_DUE + timedelta(days=30), "reason": "工程量大"},
    Action.REJECT_EXTENSION: {"reason": "理由不充分"},
    Action.SUSPEND: {"reason": "司法程序"},
    Action.REFER_ACCOUNTABILITY: {"referral_path": None, "reason": "整改不力", "report_ref": "追责建议报告〔2025〕1号"},
    Action.PROPOSE_RUNG: {"rung": None, "reason": "进度明显滞后"},
    Action.CONFIRM_ESCALATION: {"proposal_id": "P1", "reason": "同意约谈"},
    Action.DISMISS_ESCALATION: {"proposal_id": "P1", "reason": "已有整改进展"},
    Action.DE_ESCALATE: {"reason": "整改取得实质进展"},
    Action.VERIFY_REFERRAL: {"referral_id": None, "reason": "核实属实"},
    Action.RETURN_REFERRAL: {"referral_id": None, "reason": "证据不足,请补充核查材料"},
    Action.CONCLUDE_REFERRAL: {"reason": "已给予处分"},
    Action.REOPEN: {"lookback_finding": LookbackFinding.REBOUND, "reason": "问题反弹"},
    Action.HELP_VISIT: {"reason": "现场帮扶"},
    Action.RECALCULATE_DEADLINE: {"reason": "节假日安排更新"},
    Action.SPOT_CHECK: {"child_case_no": "X.1", "criteria": None},  # filled by `payload`
}


def payload(action: Action) -> dict[str, Any]:
    """A payload that satisfies the action's required fields."""
    from domain.enums import ReferralPath

    out = dict(PAYLOAD.get(action, {}))
    if action in (Action.VERIFY_PASS, Action.SPOT_CHECK):
        out["criteria"] = criteria()
    if action is Action.REFER_ACCOUNTABILITY:
        out["referral_path"] = ReferralPath.PERFORMANCE
    if action is Action.PROPOSE_RUNG:
        from domain.enums import Rung

        out["rung"] = Rung.SUMMONS
    if action is Action.AMEND:
        from domain.model import CaseAmendment

        out["amendment"] = CaseAmendment(target="收集率达到95%")
    return out


# ------------------------------------------------------------------ driving


FEEDBACK_PATH: tuple[Stage, ...] = (
    Stage.REGISTERED, Stage.TRANSFERRED, Stage.RECTIFYING, Stage.PRELIM_REVIEW,
    Stage.PUBLIC_POSTING, Stage.CLOSURE_APPLICATION, Stage.VERIFICATION, Stage.FILING,
    Stage.CLOSED, Stage.ARCHIVED,
)
PETITION_SIMPLE_PATH: tuple[Stage, ...] = (
    Stage.REGISTERED, Stage.TRANSFERRED, Stage.INVESTIGATING, Stage.RECTIFYING,
    Stage.REPLY, Stage.DISCLOSURE, Stage.CLOSED, Stage.ARCHIVED,
)


def _step(state: CaseState, now: datetime) -> tuple[CaseState, datetime]:
    """Take the forward step out of the current stage along the happy path."""
    kind = state.filing.kind
    match state.stage:
        case Stage.REGISTERED:
            return act(state, Action.TRANSFER, OFFICE, now), now
        case Stage.TRANSFERRED:
            return act(state, Action.ACKNOWLEDGE, RU, now), now
        case Stage.INVESTIGATING:
            return act(state, Action.RECORD_FINDING, RU, now, **payload(Action.RECORD_FINDING)), now
        case Stage.RECTIFYING:
            return act(complete_measures(state, now), Action.SUBMIT_COMPLETION, RU, now), now
        case Stage.PRELIM_REVIEW:
            return act(state, Action.PRELIM_PASS, LEAD, now), now
        case Stage.PUBLIC_POSTING:
            assert state.posting is not None and state.posting.ends_at is not None
            end = state.posting.ends_at
            return wake(state, end), end
        case Stage.CLOSURE_APPLICATION:
            return act(state, Action.APPLY_CLOSURE, RU, now), now
        case Stage.VERIFICATION:
            return act(state, Action.VERIFY_PASS, LEAD, now, criteria=criteria()), now
        case Stage.FILING:
            return act(state, Action.RECORD_FILING, OFFICE, now), now
        case Stage.REPLY:
            return act(state, Action.REPLY, RU, now, **payload(Action.REPLY)), now
        case Stage.DISCLOSURE:
            return act(state, Action.DISCLOSE, OFFICE, now), now
        case Stage.CLOSED:
            assert state.archive_at is not None
            return wake(state, state.archive_at), state.archive_at
    raise AssertionError(f"no forward step from {state.stage} for {kind}")


def complete_measures(state: CaseState, now: datetime) -> CaseState:
    """Mark every open measure done with an evidence reference (验收 needs them, issue 13)."""
    from domain.milestones import open_measures

    for m in open_measures(state):
        state = act(state, Action.COMPLETE_MEASURE, RU, now, measure_seq=m.seq, evidence=[f"doc:措施{m.seq}佐证"])
    return state


def drive_to(
    stage: Stage,
    kind: CaseKind = CaseKind.FEEDBACK_PROBLEM,
    *,
    filing: CaseFiling | None = None,
    policy: Policy | None = None,
    now: datetime = NOW,
) -> tuple[CaseState, datetime]:
    """A new case walked through real actions to `stage`; returns it and the clock."""
    if stage is Stage.LONG_TERM_MAINTENANCE and filing is None:
        filing = long_term_filing()
    state = new_state(filing or make_filing(kind), policy, now)
    for _ in range(20):
        if state.stage is stage:
            return state, now
        state, now = _step(state, now)
    raise AssertionError(f"{stage} not reached (at {state.stage})")


PETITION_ONLY_STAGES = frozenset({Stage.INVESTIGATING, Stage.REPLY, Stage.DISCLOSURE})
FULL_CLOSURE_STAGES = frozenset(
    {Stage.PRELIM_REVIEW, Stage.PUBLIC_POSTING, Stage.CLOSURE_APPLICATION, Stage.VERIFICATION, Stage.FILING}
)
REACHABLE: dict[CaseKind, frozenset[Stage]] = {
    CaseKind.FEEDBACK_PROBLEM: frozenset(FEEDBACK_PATH) | {Stage.LONG_TERM_MAINTENANCE},
    CaseKind.PETITION: frozenset(PETITION_SIMPLE_PATH) | FULL_CLOSURE_STAGES,
}


@cache
def state_in(stage: Stage, kind: CaseKind | None = None) -> tuple[CaseState, datetime]:
    """A (cached, never mutated) case in `stage`: a petition for petition-only stages.

    Petitions in the 5-step closure stages run under the FULL_5_STEP policy.
    """
    if kind is None:
        kind = CaseKind.PETITION if stage in PETITION_ONLY_STAGES else CaseKind.FEEDBACK_PROBLEM
    if stage not in REACHABLE[kind]:
        raise ValueError(f"{stage} is not reachable for {kind}")
    policy = full_petition_policy() if kind is CaseKind.PETITION and stage in FULL_CLOSURE_STAGES else None
    return drive_to(stage, kind, policy=policy)
