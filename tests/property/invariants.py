"""Random action sequences for a case and the invariants every step must keep (issue 11).

`Walk` applies random requests (random action, random actor, random payload) and random clock
jumps to one case through `domain.decide`, exactly as the workflow does (the calendar activity is
played by `compute_deadline`), and checks after every step:

* the ledger only grows, its sequence has no gap, and a refused request records nothing;
* no action by an actor the lifecycle does not authorise is ever recorded (checked here again,
  independently of `domain.lifecycle.authorize`);
* no closure without 初审, 公示, 申请, 核查 and 备案 in this order since the last rework, the
  last verification passed with 生态修复、污染消除、群众满意 all met and each with evidence (the
  simple petition path 办结答复 → 公开 is the only other way, for petitions it applies to);
* a due date is never before its start (a plan's fixed date that has already passed when the
  stage begins is the one documented exception: the case is then overdue at once);
* the escalation level never goes down without a recorded de-escalation;
* a suspended case never changes stage;
* the state survives a round trip through the pydantic data converter.

The same `Step`s drive the real workflow in test_workflow_properties.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from hypothesis import strategies as st
from temporalio.contrib.pydantic import pydantic_data_converter

from domain.deadlines import compute_deadline
from domain.decide import Decision, LedgerEntry, apply_deadline, decide, new_case, on_wakeup
from domain.enums import (
    Action,
    CaseKind,
    DeadlineKind,
    Finding,
    LookbackFinding,
    PetitionClosure,
    ReferralPath,
    Role,
    Rung,
    Stage,
)
from domain.errors import CaseError
from domain.lifecycle import allowed_actions, rule_for
from domain.model import (
    ActionRequest,
    Actor,
    CaseAmendment,
    CaseFiling,
    CaseState,
    CriterionCheck,
    DeadlineSpec,
    Measure,
    VerificationCriteria,
)
from domain.policy import Policy

# Events that may lower the escalation level (the stage was left, or a recorded de-escalation).
DEESCALATION_EVENTS = frozenset({"ESCALATION_STOPPED", Action.DE_ESCALATE.value})
FULL_CLOSURE = [Stage.PRELIM_REVIEW, Stage.PUBLIC_POSTING, Stage.CLOSURE_APPLICATION, Stage.VERIFICATION,
                Stage.FILING]
CLOSED_STAGES = frozenset({Stage.CLOSED, Stage.LONG_TERM_MAINTENANCE})
REWORK_STAGES = frozenset({Stage.RECTIFYING, Stage.INVESTIGATING, Stage.REGISTERED, Stage.TRANSFERRED})
FORWARD = frozenset({
    Action.TRANSFER, Action.ACKNOWLEDGE, Action.RECORD_FINDING, Action.SUBMIT_COMPLETION, Action.PRELIM_PASS,
    Action.APPLY_CLOSURE, Action.VERIFY_PASS, Action.RECORD_FILING, Action.REPLY, Action.DISCLOSE, Action.RESUME,
    Action.DISMISS_OBJECTION, Action.COMPLETE_MEASURE,
})
JUMPS = [0, 600, 3600, 86400, 3 * 86400, 10 * 86400, 40 * 86400, 120 * 86400, 400 * 86400]


UNITS = {"ru": ["市生态环境局", "市水利局"], "lead": ["市委办", "市政府办"], "assist": ["市发改委"]}


def make_filing(kind: CaseKind, long_term: bool, case_no: str, start: datetime, due_days: int) -> CaseFiling:
    """A complete filing with the UNITS; a plan due date `due_days` after `start` (not for petitions)."""
    deadline = None
    if kind is not CaseKind.PETITION:
        due = (start + timedelta(days=due_days)).date()
        deadline = DeadlineSpec(kind=DeadlineKind.DATE_THEN_LONG_TERM if long_term else DeadlineKind.DATE,
                                due_date=due, long_term=long_term, raw_zh=f"{due:%Y年%m月%d日}")
    return CaseFiling(
        case_no=case_no, kind=kind, title="城镇生活污水直排问题", problem="污水收集管网不配套",
        target="" if kind is CaseKind.PETITION else "生活污水收集率达到90%",
        measures=[] if kind is CaseKind.PETITION else [Measure(seq=1, text="建设管网"), Measure(seq=2, text="雨污分流")],
        responsible_units=UNITS["ru"], lead_supervising_units=UNITS["lead"], assisting_units=UNITS["assist"],
        deadline=deadline, complaint="夜间偷排废水" if kind is CaseKind.PETITION else "",
    )


def actors(filing_units: dict[str, list[str]], policy: Policy) -> list[Actor]:
    """Authorised and unauthorised actors of every role for a case with these units."""
    ru, leads, assist = filing_units["ru"], filing_units["lead"], filing_units["assist"]
    return [
        Actor(user_id="office", role=Role.RECTIFICATION_OFFICE, unit=policy.office_unit),
        Actor(user_id="fake-office", role=Role.RECTIFICATION_OFFICE, unit="某县整改办"),
        Actor(user_id="ru-1", role=Role.RESPONSIBLE_UNIT, unit=ru[0]),
        Actor(user_id="ru-2", role=Role.RESPONSIBLE_UNIT, unit=ru[-1]),
        Actor(user_id="ru-other", role=Role.RESPONSIBLE_UNIT, unit="无关单位"),
        Actor(user_id="lead-1", role=Role.LEAD_SUPERVISOR, unit=leads[0]),
        Actor(user_id="lead-2", role=Role.LEAD_SUPERVISOR, unit=leads[-1]),
        Actor(user_id="lead-other", role=Role.LEAD_SUPERVISOR, unit="无关督导单位"),
        Actor(user_id="assist-1", role=Role.ASSIST_SUPERVISOR, unit=assist[0]),
        Actor(user_id="disc", role=Role.DISCIPLINE_COMMISSION, unit=policy.discipline_unit),
        Actor(user_id="disc-other", role=Role.DISCIPLINE_COMMISSION, unit="某纪委"),
        Actor(user_id="citizen", role=Role.PUBLIC, unit=""),
        Actor(user_id="auditor", role=Role.AUDITOR, unit="审计组"),
        Actor(user_id="system", role=Role.SYSTEM, unit="engine"),
    ]


def independently_authorised(state: CaseState, actor: Actor, action: Action) -> bool:
    """Who may record `action` on this case, restated from domain.md §3 (not via authorize())."""
    rule = rule_for(action)
    f, pol = state.filing, state.policy
    if actor.role in (Role.AUDITOR, Role.SYSTEM) or actor.role not in rule.roles:
        return False
    match actor.role:
        case Role.RESPONSIBLE_UNIT:
            return actor.unit in f.responsible_units
        case Role.LEAD_SUPERVISOR:
            return actor.unit in f.lead_supervising_units and (
                not rule.first_lead_only or actor.unit == f.lead_supervising_units[0])
        case Role.ASSIST_SUPERVISOR:
            return actor.unit in f.assisting_units
        case Role.RECTIFICATION_OFFICE:
            return not pol.office_unit or actor.unit == pol.office_unit
        case Role.DISCIPLINE_COMMISSION:
            return not pol.discipline_unit or actor.unit == pol.discipline_unit
    return actor.role is Role.PUBLIC


@dataclass
class Step:
    """One random step: a request (action, actor, payload) or a clock jump."""

    jump_seconds: int = 0
    action: Action | None = None
    actor: Actor | None = None
    fields: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> str:
        if self.action is None:
            return f"clock +{self.jump_seconds}s"
        return f"{self.action} by {self.actor.user_id if self.actor else '?'} {self.fields}"


def _criteria(draw) -> VerificationCriteria:
    def check() -> CriterionCheck:
        met = draw(st.booleans() | st.just(True))
        return CriterionCheck(met=met, evidence=["evidence/site.pdf"] if draw(st.booleans() | st.just(True)) else [])

    return VerificationCriteria(eco_restored=check(), pollution_eliminated=check(), public_satisfied=check())


def draw_fields(draw, state: CaseState, action: Action, today: date) -> dict[str, Any]:
    """A payload for `action`: mostly valid, sometimes missing or wrong."""
    out: dict[str, Any] = {}
    if draw(st.integers(0, 9)) > 0:
        out["reason"] = draw(st.sampled_from(["理由说明", "整改不力", "证据不足", "问题反弹"]))
    base = state.deadline.due_date if state.deadline else today
    match action:
        case Action.VERIFY_PASS | Action.VERIFY_FAIL:
            out["criteria"] = _criteria(draw)
        case Action.REQUEST_EXTENSION | Action.APPROVE_EXTENSION:
            if action is Action.REQUEST_EXTENSION or draw(st.booleans()):
                out["new_due_date"] = base + timedelta(days=draw(st.integers(-10, 200)))
        case Action.PRELIM_REJECT | Action.UPHOLD_OBJECTION | Action.REOPEN:
            if draw(st.booleans()):
                out["new_due_date"] = today + timedelta(days=draw(st.integers(-5, 120)))
            if action is Action.REOPEN:
                out["lookback_finding"] = draw(st.sampled_from(list(LookbackFinding)))
        case Action.APPLY_RUNG:
            out["rung"] = draw(st.sampled_from(list(Rung)))
        case Action.ACCEPT_REFERRAL | Action.CONCLUDE_REFERRAL:
            ids = [r.referral_id for r in state.referrals] or ["none"]
            out["referral_id"] = draw(st.sampled_from([*ids, "bogus"]))
        case Action.REFER_ACCOUNTABILITY:
            out["referral_path"] = draw(st.sampled_from(list(ReferralPath)))
        case Action.COMPLETE_MEASURE:
            out["measure_seq"] = draw(st.integers(0, 3))
            if draw(st.integers(0, 4)) > 0:  # a measure is done only with its evidence (issue 13)
                out["evidence"] = ["doc:measure-report"]
        case Action.RECORD_FINDING:
            out["finding"] = draw(st.sampled_from(list(Finding)))
        case Action.DISMISS_OBJECTION | Action.UPHOLD_OBJECTION:
            out["objection_id"] = draw(st.sampled_from([None, "O1", "O2"]))
        case Action.AMEND:
            out["amendment"] = CaseAmendment(target=draw(st.sampled_from(["收集率达到95%", "全面完成治理"])))
        case Action.SUBMIT_COMPLETION | Action.REPORT_PROGRESS | Action.HELP_VISIT:
            if draw(st.booleans()):
                out["evidence"] = ["doc:report"]
    return out


def draw_step(draw, state: CaseState, cast: list[Actor], now: datetime) -> Step:
    """Mostly an action someone may take now (so cases move), sometimes anything, or the clock."""
    kind = draw(st.sampled_from(["forward", "forward", "forward", "allowed", "allowed", "any", "clock"]))
    if kind == "clock":
        return Step(jump_seconds=draw(st.sampled_from(JUMPS[1:])))
    today = (now + timedelta(hours=8)).date()
    if kind in ("forward", "allowed"):
        options = [(a, actor) for actor in cast for a in allowed_actions(state, actor)]
        if kind == "forward":  # actions that move the stage on: cases reach closure often enough
            options = [(a, actor) for a, actor in options if a in FORWARD] or options
        if options:
            action, actor = draw(st.sampled_from(options))
            return Step(action=action, actor=actor, fields=draw_fields(draw, state, action, today))
    action = draw(st.sampled_from(list(Action)))
    actor = draw(st.sampled_from(cast))
    return Step(action=action, actor=actor, fields=draw_fields(draw, state, action, today))


def draw_case(draw) -> tuple[CaseKind, Policy, bool]:
    kind = draw(st.sampled_from([CaseKind.FEEDBACK_PROBLEM, CaseKind.PETITION, CaseKind.WARNING_FILM]))
    closure = draw(st.sampled_from(list(PetitionClosure)))
    return kind, Policy(petition_closure=closure), draw(st.booleans())


class Walk:
    """One case driven through the pure domain, checking every invariant at every step."""

    def __init__(self, state: CaseState, entries: list[LedgerEntry], now: datetime, calendar) -> None:
        self.state, self.now, self.calendar = state, now, calendar
        self.ledger: list[LedgerEntry] = list(entries)
        self.stages: list[Stage] = [Stage.REGISTERED]  # every stage entered, in order
        self.accepted = 0
        self.refused = 0
        self.log: list[str] = []

    @classmethod
    def start(cls, filing, policy: Policy, now: datetime, actor: Actor, calendar) -> Walk:
        d = new_case(filing, policy, now, actor)
        walk = cls(d.state, d.entries, now, calendar)
        walk.check_ledger()
        return walk

    # ------------------------------------------------------------------ steps

    def apply(self, step: Step) -> None:
        self.log.append(step.describe())
        if step.action is None:
            self.tick(step.jump_seconds)
            return
        assert step.actor is not None
        req = ActionRequest(action=step.action, actor=step.actor, request_id=f"r{len(self.log)}", **step.fields)
        before = self.state
        try:
            decision = decide(before, req, self.now)
        except CaseError:
            self.refused += 1
            return  # nothing recorded: the state object is untouched
        self.accepted += 1
        recorded = [e for e in decision.entries if e.request_id == req.request_id]
        assert recorded, f"accepted {req.action} left no ledger row"
        for e in recorded:
            assert e.actor == req.actor, "the ledger names the acting user"
        assert independently_authorised(before, req.actor, req.action), (
            f"{req.actor} recorded {req.action} without authority: {self.log}")
        self.adopt(before, decision)

    def tick(self, seconds: int) -> None:
        self.now += timedelta(seconds=seconds)
        for _ in range(50):
            if self.state.stage is Stage.ARCHIVED:
                return
            before = self.state
            decision = on_wakeup(before, self.now)
            if decision is None or not decision.entries:
                return
            for e in decision.entries:
                assert e.request_id is None and e.actor.role is Role.SYSTEM, "only the clock acts on a wake-up"
            self.adopt(before, decision)
        raise AssertionError("the clock never settles")

    def adopt(self, before: CaseState, decision: Decision) -> None:
        """Take a decision the way the workflow does (deadline computed at once) and check it."""
        entries = list(decision.entries)
        state = decision.state
        if decision.deadline_request is not None:
            computed = compute_deadline(decision.deadline_request, self.calendar, self.now)
            applied = apply_deadline(state, computed, self.now)
            entries += applied.entries
            state = applied.state
            self.check_due_date(state, decision.deadline_request, computed)
        self.ledger += entries
        self.state = state
        for e in entries:
            if e.to_stage is not None:
                self.stages.append(e.to_stage)
        self.check_ledger()
        self.check_escalation(before, state, entries)
        if before.suspension is not None:
            assert state.stage is before.stage, f"suspended case moved {before.stage} -> {state.stage}: {self.log}"
        if state.stage in CLOSED_STAGES and before.stage not in CLOSED_STAGES:
            self.check_closure(state)

    # ------------------------------------------------------------------ invariants

    def check_ledger(self) -> None:
        seqs = [e.seq for e in self.ledger]
        assert seqs == list(range(1, len(seqs) + 1)), f"ledger sequence has a gap or a repeat: {seqs}"
        assert self.state.seq == len(seqs)
        assert all(e.case_no == self.state.case_no for e in self.ledger)

    def check_due_date(self, state: CaseState, request, computed) -> None:
        plan = state.filing.deadline.due_date if state.filing.deadline else None
        if computed.due_date < computed.explanation.start:
            assert request.fixed_date is not None and request.fixed_date == plan, (
                f"due date {computed.due_date} before its start {computed.explanation.start}: {self.log}")

    def check_escalation(self, before: CaseState, after: CaseState, entries: list[LedgerEntry]) -> None:
        if after.escalation.level < before.escalation.level:
            assert any(e.event in DEESCALATION_EVENTS for e in entries), (
                f"escalation {before.escalation.level} -> {after.escalation.level} unrecorded: {self.log}")

    def check_closure(self, state: CaseState) -> None:
        # The stages entered since the case last went back to (or started) rectification.
        last = max(i for i, s in enumerate(self.stages) if s in REWORK_STAGES)
        path = self.stages[last + 1:]
        if path[:-1] == FULL_CLOSURE:
            v = state.verifications[-1] if state.verifications else None
            assert v is not None and v.passed and v.criteria is not None, "closure without a passed verification"
            c = v.criteria
            for name in ("eco_restored", "pollution_eliminated", "public_satisfied"):
                check = getattr(c, name)
                assert check.met and check.evidence, f"closure with {name} unmet or without evidence"
            return
        simple = state.filing.kind is CaseKind.PETITION and (
            state.policy.petition_closure is PetitionClosure.SIMPLE or state.finding is Finding.UNSUBSTANTIATED)
        assert simple and path[-3:] == [Stage.REPLY, Stage.DISCLOSURE, Stage.CLOSED], (
            f"closed without 初审、公示、申请、核查、备案 in order (path {path}): {self.log}")

    def check_round_trip(self) -> None:
        payloads = pydantic_data_converter.payload_converter.to_payloads([self.state])
        back = pydantic_data_converter.payload_converter.from_payloads(payloads, [CaseState])[0]
        assert back == self.state, "state changed in a round trip through the data converter"
