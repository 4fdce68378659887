"""The lifecycle as data: which action, in which stage, by which role, to where.

`RULES` is the single table the workflow, the admin tool and the tests read.
Targets that depend on the case (its kind, a finding, the petition policy, a
long-term deadline) are resolved in `domain.decide`, named in `to_note`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from domain import closure_levels as levels
from domain.enums import RUNG_ORDER, Action, CaseKind, ProposalStatus, ReferralStatus, Role, Stage
from domain.errors import (
    CaseError,
    IncompleteCaseError,
    InvalidTransitionError,
    NotAuthorizedError,
)
from domain.model import Actor, CaseFiling, CaseState, Objection

ALL_KINDS = frozenset(CaseKind)
# Stages in which the case is "live" after transfer: escalation and accountability apply.
ACTIVE_STAGES = frozenset(
    {
        Stage.TRANSFERRED,
        Stage.INVESTIGATING,
        Stage.RECTIFYING,
        Stage.PRELIM_REVIEW,
        Stage.PUBLIC_POSTING,
        Stage.CLOSURE_APPLICATION,
        Stage.VERIFICATION,
        Stage.FILING,
        Stage.REPLY,
        Stage.DISCLOSURE,
    }
)
# Stages whose deadline belongs to the responsible unit (extension may be asked).
UNIT_DEADLINE_STAGES = frozenset(
    {Stage.INVESTIGATING, Stage.RECTIFYING, Stage.REPLY, Stage.CLOSURE_APPLICATION}
)
AFTER_CLOSURE = frozenset({Stage.CLOSED, Stage.LONG_TERM_MAINTENANCE})
# Whose move each stage is: the role expected to take the stage's next step (the admin
# tool's 我的待办). VERIFICATION is the first-listed lead's move (see authorize); a posting
# (公示) is nobody's move unless an objection awaits the office's ruling.
WAITING_ON: dict[Stage, Role] = {
    Stage.REGISTERED: Role.RECTIFICATION_OFFICE,
    Stage.TRANSFERRED: Role.RESPONSIBLE_UNIT,
    Stage.INVESTIGATING: Role.RESPONSIBLE_UNIT,
    Stage.RECTIFYING: Role.RESPONSIBLE_UNIT,
    Stage.PRELIM_REVIEW: Role.LEAD_SUPERVISOR,
    Stage.CLOSURE_APPLICATION: Role.RESPONSIBLE_UNIT,
    Stage.VERIFICATION: Role.LEAD_SUPERVISOR,
    Stage.FILING: Role.RECTIFICATION_OFFICE,
    Stage.REPLY: Role.RESPONSIBLE_UNIT,
    Stage.DISCLOSURE: Role.RECTIFICATION_OFFICE,
}


def stages_waiting_on(role: Role) -> tuple[Stage, ...]:
    """The stages in which the case waits for this role (in lifecycle order)."""
    return tuple(s for s in Stage if WAITING_ON.get(s) is role)

NOT_ARCHIVED = frozenset(set(Stage) - {Stage.ARCHIVED})

_RU = frozenset({Role.RESPONSIBLE_UNIT})
_LEAD = frozenset({Role.LEAD_SUPERVISOR})
_OFFICE = frozenset({Role.RECTIFICATION_OFFICE})
_DISC = frozenset({Role.DISCIPLINE_COMMISSION})
# Who imposes escalation measures: 市委督查室、市政府督查室、市整改办 (000:427).
_ESC_DECIDERS = frozenset({Role.RECTIFICATION_OFFICE, Role.SUPERVISION_OFFICE})

_N_UNIT = (Role.RESPONSIBLE_UNIT,)
_N_SUP = (Role.LEAD_SUPERVISOR,)
_N_OFFICE = (Role.RECTIFICATION_OFFICE,)


@dataclass(frozen=True)
class Rule:
    """One row of the lifecycle table."""

    action: Action
    from_stages: frozenset[Stage]
    roles: frozenset[Role]
    to_stage: Stage | None  # None: the stage does not change
    kinds: frozenset[CaseKind] = ALL_KINDS
    needs: tuple[str, ...] = ()  # request fields that must be present
    first_lead_only: bool = False  # only the first-listed lead supervising unit
    notify: tuple[Role, ...] = ()
    to_note: str = ""
    requires: tuple[str, ...] = field(default=())  # named preconditions checked in decide


RULES: tuple[Rule, ...] = (
    Rule(Action.AMEND, frozenset({Stage.REGISTERED}), _OFFICE, None, needs=("amendment",)),
    Rule(
        Action.TRANSFER,
        frozenset({Stage.REGISTERED}),
        _OFFICE,
        Stage.TRANSFERRED,
        notify=(Role.RESPONSIBLE_UNIT, Role.LEAD_SUPERVISOR, Role.ASSIST_SUPERVISOR),
        requires=("complete",),
    ),
    Rule(
        Action.ACKNOWLEDGE,
        frozenset({Stage.TRANSFERRED}),
        _RU,
        Stage.RECTIFYING,
        notify=_N_SUP,
        to_note="petitions go to INVESTIGATING",
    ),
    Rule(
        Action.RECORD_FINDING,
        frozenset({Stage.INVESTIGATING}),
        _RU,
        Stage.RECTIFYING,
        kinds=frozenset({CaseKind.PETITION}),
        needs=("finding", "reason"),
        notify=(Role.LEAD_SUPERVISOR, Role.RECTIFICATION_OFFICE),
        to_note="UNSUBSTANTIATED goes to REPLY",
    ),
    Rule(
        Action.REPORT_PROGRESS,
        frozenset({Stage.RECTIFYING, Stage.LONG_TERM_MAINTENANCE}),
        _RU,
        None,
        needs=("reason",),
    ),
    Rule(
        Action.COMPLETE_MEASURE,
        frozenset({Stage.RECTIFYING}),
        _RU,
        None,
        needs=("measure_seq",),
        requires=("measure_pending",),
    ),
    Rule(
        Action.SUBMIT_COMPLETION,
        frozenset({Stage.RECTIFYING}),
        _RU,
        Stage.PRELIM_REVIEW,
        notify=_N_SUP,
        to_note="petitions under the SIMPLE policy go to REPLY",
    ),
    Rule(
        Action.PRELIM_PASS,
        frozenset({Stage.PRELIM_REVIEW}),
        _LEAD,
        Stage.PUBLIC_POSTING,
        notify=(Role.RESPONSIBLE_UNIT, Role.RECTIFICATION_OFFICE),
    ),
    Rule(
        Action.PRELIM_REJECT,
        frozenset({Stage.PRELIM_REVIEW}),
        _LEAD,
        Stage.RECTIFYING,
        needs=("reason",),
        notify=_N_UNIT,
    ),
    Rule(
        Action.OBJECT,
        frozenset({Stage.PUBLIC_POSTING}),
        frozenset({Role.PUBLIC}),
        None,
        needs=("reason",),
        notify=(Role.RECTIFICATION_OFFICE, Role.RESPONSIBLE_UNIT),
    ),
    Rule(
        Action.UPHOLD_OBJECTION,
        frozenset({Stage.PUBLIC_POSTING}),
        _OFFICE,
        Stage.RECTIFYING,
        needs=("reason",),
        notify=(Role.RESPONSIBLE_UNIT, Role.LEAD_SUPERVISOR),
        requires=("open_objection",),
    ),
    Rule(
        Action.DISMISS_OBJECTION,
        frozenset({Stage.PUBLIC_POSTING}),
        _OFFICE,
        None,
        needs=("reason",),
        notify=_N_UNIT,
        requires=("open_objection",),
    ),
    Rule(
        Action.APPLY_CLOSURE,
        frozenset({Stage.CLOSURE_APPLICATION}),
        _RU,
        Stage.VERIFICATION,
        notify=_N_SUP,
    ),
    Rule(
        Action.VERIFY_PASS,
        frozenset({Stage.VERIFICATION}),
        _LEAD,
        Stage.FILING,
        needs=("criteria",),
        first_lead_only=True,
        notify=(Role.RESPONSIBLE_UNIT, Role.RECTIFICATION_OFFICE),
    ),
    Rule(
        Action.VERIFY_FAIL,
        frozenset({Stage.VERIFICATION}),
        _LEAD,
        Stage.RECTIFYING,
        needs=("reason",),
        first_lead_only=True,
        notify=(Role.RESPONSIBLE_UNIT, Role.RECTIFICATION_OFFICE),
    ),
    Rule(
        Action.RECORD_FILING,
        frozenset({Stage.FILING}),
        _OFFICE,
        Stage.CLOSED,
        notify=(Role.RESPONSIBLE_UNIT, Role.LEAD_SUPERVISOR),
        to_note="long-term deadlines go to LONG_TERM_MAINTENANCE",
    ),
    Rule(
        Action.REPLY,
        frozenset({Stage.REPLY}),
        _RU,
        Stage.DISCLOSURE,
        kinds=frozenset({CaseKind.PETITION}),
        needs=("reason",),
        notify=_N_OFFICE,
    ),
    Rule(
        Action.DISCLOSE,
        frozenset({Stage.DISCLOSURE}),
        _OFFICE,
        Stage.CLOSED,
        kinds=frozenset({CaseKind.PETITION}),
        notify=_N_UNIT,
    ),
    Rule(
        Action.REQUEST_EXTENSION,
        UNIT_DEADLINE_STAGES,
        _RU,
        None,
        needs=("new_due_date", "reason"),
        notify=_N_SUP,
        requires=("deadline", "no_pending_extension", "not_suspended"),
    ),
    Rule(
        Action.APPROVE_EXTENSION,
        UNIT_DEADLINE_STAGES,
        _LEAD,
        None,
        notify=(Role.RESPONSIBLE_UNIT, Role.RECTIFICATION_OFFICE),
        requires=("pending_extension", "not_suspended"),
    ),
    Rule(
        Action.REJECT_EXTENSION,
        UNIT_DEADLINE_STAGES,
        _LEAD,
        None,
        needs=("reason",),
        notify=_N_UNIT,
        requires=("pending_extension",),
    ),
    Rule(
        Action.SUSPEND,
        ACTIVE_STAGES - {Stage.PUBLIC_POSTING},
        _OFFICE,
        None,
        needs=("reason",),
        notify=(Role.RESPONSIBLE_UNIT, Role.LEAD_SUPERVISOR),
        requires=("not_suspended",),
    ),
    Rule(
        Action.RESUME,
        ACTIVE_STAGES - {Stage.PUBLIC_POSTING},
        _OFFICE,
        None,
        notify=(Role.RESPONSIBLE_UNIT, Role.LEAD_SUPERVISOR),
        requires=("suspended",),
    ),
    Rule(
        Action.APPLY_RUNG,
        ACTIVE_STAGES,
        _ESC_DECIDERS,
        None,
        needs=("rung", "reason"),
        requires=("higher_rung",),
        to_note="移交问责 also needs report_ref and refers on path A",
    ),
    Rule(
        Action.PROPOSE_RUNG,
        ACTIVE_STAGES,
        _ESC_DECIDERS | _LEAD,
        None,
        needs=("rung", "reason"),
        requires=("higher_rung",),
    ),
    Rule(
        Action.CONFIRM_ESCALATION,
        NOT_ARCHIVED,
        _ESC_DECIDERS,
        None,
        needs=("proposal_id", "reason"),
        requires=("pending_proposal",),
        to_note="移交问责 also needs report_ref and refers on path A",
    ),
    Rule(
        Action.DISMISS_ESCALATION,
        NOT_ARCHIVED,
        _ESC_DECIDERS,
        None,
        needs=("proposal_id", "reason"),
        requires=("pending_proposal",),
    ),
    Rule(
        Action.DE_ESCALATE,
        ACTIVE_STAGES,
        _OFFICE,
        None,
        needs=("reason",),
        requires=("escalated",),
        to_note="rung: the lower rung kept (none: no rung); new_due_date: a new deadline for the stage",
    ),
    Rule(
        Action.REFER_ACCOUNTABILITY,
        NOT_ARCHIVED - {Stage.REGISTERED},
        _ESC_DECIDERS | _LEAD,
        None,
        needs=("referral_path", "reason"),
        notify=(Role.DISCIPLINE_COMMISSION, Role.RESPONSIBLE_UNIT),
        to_note="path A: office, supervision office, lead; B: lead drafts, office verifies; C: office",
    ),
    Rule(
        Action.VERIFY_REFERRAL,
        NOT_ARCHIVED,
        _OFFICE,
        None,
        needs=("referral_id", "reason"),
        requires=("draft_referral",),
    ),
    Rule(
        Action.RETURN_REFERRAL,
        NOT_ARCHIVED,
        _OFFICE,
        None,
        needs=("referral_id", "reason"),
        notify=(Role.LEAD_SUPERVISOR,),
        requires=("draft_referral",),
        to_note="the draft is not referred; the lead may draft again (REFER_ACCOUNTABILITY, path B)",
    ),
    Rule(
        Action.ACCEPT_REFERRAL,
        NOT_ARCHIVED,
        _DISC,
        None,
        needs=("referral_id",),
        notify=_N_OFFICE,
        requires=("open_referral",),
    ),
    Rule(
        Action.CONCLUDE_REFERRAL,
        NOT_ARCHIVED,
        _DISC,
        None,
        needs=("referral_id", "reason"),
        notify=_N_OFFICE,
        requires=("accepted_referral",),
    ),
    Rule(
        Action.REOPEN,
        AFTER_CLOSURE,
        _OFFICE,
        Stage.RECTIFYING,
        needs=("lookback_finding", "reason"),
        notify=(Role.RESPONSIBLE_UNIT, Role.LEAD_SUPERVISOR),
    ),
    Rule(
        Action.RECALCULATE_DEADLINE,
        ACTIVE_STAGES - {Stage.PUBLIC_POSTING},
        _OFFICE,
        None,
        needs=("reason",),
        notify=(Role.RESPONSIBLE_UNIT,),
        requires=("deadline", "not_suspended"),
    ),
    Rule(
        Action.HELP_VISIT,
        frozenset({Stage.INVESTIGATING, Stage.RECTIFYING, Stage.LONG_TERM_MAINTENANCE}),
        frozenset({Role.LEAD_SUPERVISOR, Role.ASSIST_SUPERVISOR}),
        None,
        needs=("reason",),
        notify=_N_UNIT,
    ),
    # Issue 13: the province's spot-check result of a sampled child of a fanned-out item, recorded
    # by the office (INFERRED: no provincial role); criteria all met = passed (domain/closure_levels.py).
    Rule(
        Action.SPOT_CHECK,
        frozenset({Stage.VERIFICATION}),
        _OFFICE,
        None,
        needs=("child_case_no", "criteria"),
        notify=(Role.LEAD_SUPERVISOR,),
        requires=("spot_check_pending",),
    ),
)

RULES_BY_ACTION: dict[Action, Rule] = {r.action: r for r in RULES}
assert len(RULES_BY_ACTION) == len(RULES), "one rule per action"


def rule_for(action: Action) -> Rule:
    return RULES_BY_ACTION[action]


def authorize(state: CaseState, actor: Actor, rule: Rule) -> None:
    """Decide whether `actor` may take `rule.action` on this case.

    A responsible unit acts only on its own cases; only the first-listed lead
    supervising unit organises verification; the discipline commission acts
    only on referrals; auditors only read; the engine's own SYSTEM actor
    never acts through a handler.

    Raises:
        NotAuthorizedError: with a reason naming the role, unit and action.
    """
    f = state.filing
    pol = state.policy
    if actor.role not in rule.roles:
        allowed = ", ".join(sorted(r.value for r in rule.roles))
        raise NotAuthorizedError(
            f"role {actor.role} may not {rule.action} (allowed: {allowed})"
        )
    levels.check_actor(state, actor)  # a fanned-out parent: each unit acts on its own child only
    match actor.role:
        case Role.RESPONSIBLE_UNIT:
            if actor.unit not in f.responsible_units:
                raise NotAuthorizedError(
                    f"unit {actor.unit!r} is not a responsible unit of case {f.case_no}"
                )
        case Role.LEAD_SUPERVISOR:
            if actor.unit not in f.lead_supervising_units:
                raise NotAuthorizedError(
                    f"unit {actor.unit!r} is not a lead supervising unit of case {f.case_no}"
                )
            if rule.first_lead_only and actor.unit != f.lead_supervising_units[0]:
                raise NotAuthorizedError(
                    f"only the first-listed lead supervising unit "
                    f"({f.lead_supervising_units[0]!r}) organises verification"
                )
        case Role.ASSIST_SUPERVISOR:
            if actor.unit not in f.assisting_units:
                raise NotAuthorizedError(
                    f"unit {actor.unit!r} is not an assisting unit of case {f.case_no}"
                )
        case Role.RECTIFICATION_OFFICE:
            if pol.office_unit and actor.unit != pol.office_unit:
                raise NotAuthorizedError(
                    f"unit {actor.unit!r} is not the rectification office ({pol.office_unit!r})"
                )
        case Role.SUPERVISION_OFFICE:
            if actor.unit not in pol.supervision_units:
                raise NotAuthorizedError(
                    f"unit {actor.unit!r} is not a supervision office "
                    f"({', '.join(pol.supervision_units) or 'none configured'})"
                )
        case Role.DISCIPLINE_COMMISSION:
            if pol.discipline_unit and actor.unit != pol.discipline_unit:
                raise NotAuthorizedError(
                    f"unit {actor.unit!r} is not the discipline commission "
                    f"({pol.discipline_unit!r})"
                )
        case _:
            pass


def check_stage(state: CaseState, rule: Rule) -> None:
    """Raise InvalidTransitionError unless the action fits the case's kind and stage.

    A suspended case (中止) keeps its stage until it is resumed.
    """
    if state.filing.kind not in rule.kinds:
        raise InvalidTransitionError(
            f"{rule.action} does not apply to {state.filing.kind} cases"
        )
    if state.stage not in rule.from_stages:
        raise InvalidTransitionError(
            f"{rule.action} is not allowed in stage {state.stage} "
            f"(allowed in: {', '.join(sorted(s.value for s in rule.from_stages))})"
        )
    if state.suspension is not None and rule.to_stage is not None:
        raise InvalidTransitionError(
            f"case {state.case_no} is suspended (中止) since {state.suspension.start:%Y-%m-%d}; "
            "resume it first"
        )


def missing_for_transfer(f: CaseFiling) -> list[str]:
    """What a case lacks before it can be transferred (domain.md §2.1 four-clear rule)."""
    missing = []
    if not f.responsible_units:
        missing.append("responsible_units (主体责任单位)")
    if not f.lead_supervising_units:
        missing.append("lead_supervising_units (牵头督导单位)")
    if f.kind is CaseKind.PETITION:
        if not (f.complaint or f.problem):
            missing.append("complaint (举报内容)")
    else:
        if not f.target:
            missing.append("target (整改目标)")
        if not f.measures:
            missing.append("measures (整改措施)")
        if f.deadline is None:
            missing.append("deadline (整改时限)")
    return missing


def find_objection(state: CaseState, objection_id: str | None) -> Objection | None:
    """The open objection with this id (any open one when None)."""
    if state.posting is None:
        return None
    for o in state.posting.objections:
        if o.ruling is None and (objection_id is None or o.objection_id == objection_id):
            return o
    return None


def check_preconditions(state: CaseState, rule: Rule, objection_id: str | None = None) -> None:
    """Raise unless the case meets the rule's named preconditions (`Rule.requires`)."""
    for cond in rule.requires:
        match cond:
            case "complete":
                if missing := missing_for_transfer(state.filing):
                    raise IncompleteCaseError(
                        f"case {state.case_no} cannot be transferred; missing: {', '.join(missing)}"
                    )
            case "deadline":
                if state.deadline is None:
                    raise InvalidTransitionError(f"stage {state.stage} has no deadline")
            case "no_pending_extension":
                if state.extension_request is not None:
                    raise InvalidTransitionError("an extension request is already pending")
            case "pending_extension":
                if state.extension_request is None:
                    raise InvalidTransitionError("no extension request is pending")
            case "not_suspended":
                if state.suspension is not None:
                    raise InvalidTransitionError("the case is suspended")
            case "suspended":
                if state.suspension is None:
                    raise InvalidTransitionError("the case is not suspended")
            case "open_objection":
                if find_objection(state, objection_id) is None:
                    raise InvalidTransitionError(f"no open objection {objection_id or ''}".rstrip())
            case "open_referral" | "accepted_referral":
                wanted = ReferralStatus.OPEN if cond == "open_referral" else ReferralStatus.ACCEPTED
                if not any(r.status is wanted for r in state.referrals):
                    raise InvalidTransitionError(f"the case has no {wanted.value.lower()} referral")
            case "measure_pending":
                if {m.seq for m in state.filing.measures} <= set(state.measures_done):
                    raise InvalidTransitionError("every measure is already done")
            case "higher_rung":
                if state.escalation.level >= len(RUNG_ORDER):
                    raise InvalidTransitionError("the case is already at the last rung (移交问责)")
            case "pending_proposal":
                if not any(p.status is ProposalStatus.PENDING for p in state.escalation.proposals):
                    raise InvalidTransitionError("the case has no pending escalation proposal (拟采取措施)")
            case "escalated":
                if state.escalation.level == 0:
                    raise InvalidTransitionError("the case has no escalation rung in effect to lower")
            case "draft_referral":
                if not any(r.status is ReferralStatus.DRAFT for r in state.referrals):
                    raise InvalidTransitionError("the case has no drafted referral awaiting verification")
            case _:
                if not levels.check_precondition(state, cond):  # fan-out and closure levels (issue 13)
                    raise AssertionError(f"unknown precondition {cond}")


def allowed_actions(state: CaseState, actor: Actor) -> list[Action]:
    """The actions this actor may take on the case now (for the admin tool's buttons).

    Checks kind, stage, role, unit and preconditions; what remains is the
    payload (a reason, a date, criteria), which the form collects.
    """
    out = []
    for table_rule in RULES:
        rule = levels.effective_rule(state, table_rule)
        try:
            check_stage(state, rule)
            authorize(state, actor, rule)
            check_preconditions(state, rule)
        except CaseError:
            continue
        out.append(rule.action)
    return out
