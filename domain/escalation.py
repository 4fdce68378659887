"""Escalation: the ladder of measures (督办措施) on an overdue deadline, and who decides them.

The rule for each measure is found here (domain.md §4.6, §6; issue 9):

- A ladder profile (domain/policy.py) declares its own order; each rung has a mode.
  AUTOMATIC rungs take effect when due (the engine's SYSTEM actor). PROPOSED rungs, when due,
  become a proposal (拟采取措施) with the facts behind it, notified to the office and the
  supervision offices; the rung takes effect only when an authorised person confirms it with
  a reason (CONFIRM_ESCALATION), or is dismissed with a reason (DISMISS_ESCALATION). While a
  proposal from the ladder is pending, the ladder of that stage climbs no further.
- Each stage's ladder is the profile cut at the stage's ceiling (policy.stage_ladder_ceilings):
  整改 climbs the whole profile; 签收, 调查核实, 销号申请 and 答复 only the lower rungs.
- 移交问责 is never the timer's: the referral follows §4.6, path A (performance failure,
  a 追责建议报告 recorded and referred by the office, a supervision office or the lead
  supervising unit), path B (fake rectification: the lead drafts, the office verifies and
  refers), path C (a dossier from the inspection team). A referral never closes the case.
- After a re-set deadline (failed 验收, upheld objection, 初审退回, reopen) the ladder resumes
  by policy, by default at the rung already reached; only DE_ESCALATE (office, with a reason)
  lowers the rung in effect.

Cases whose workflow run began before these rules (`EscalationState.rules` not 2) keep the
old level-based ladder until they continue-as-new, so their histories replay unchanged; only
the automatic referral is gone from it (a proposal is recorded instead, same commands).

Functions take the decision builder of domain/decide.py (`b`: state, now, record()).
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from domain.calendar import local_date
from domain.enums import (
    RUNG_LABELS_ZH,
    RUNG_ORDER,
    STAGE_LABELS_ZH,
    Action,
    LadderResume,
    ProposalStatus,
    ReferralPath,
    ReferralStatus,
    Role,
    Rung,
    RungMode,
    Stage,
    rung_level,
)
from domain.errors import InvalidTransitionError, MissingInputError, NotAuthorizedError
from domain.lifecycle import rule_for
from domain.model import (
    SYSTEM_ACTOR,
    ActionRequest,
    Actor,
    CaseState,
    ComputedDeadline,
    DeadlineRequest,
    EscalationProposal,
    FiredRung,
    Referral,
    ScheduledRung,
)
from domain.policy import LadderRungSpec

if TYPE_CHECKING:  # the builder lives in domain.decide, which imports this module
    from domain.decide import _Builder

RULES = 2  # the escalation rules of issue 9 (EscalationState.rules)
_DEFAULT_NOTIFY = (Role.RESPONSIBLE_UNIT, Role.LEAD_SUPERVISOR, Role.RECTIFICATION_OFFICE)
PROPOSAL_NOTIFY = (Role.RECTIFICATION_OFFICE, Role.SUPERVISION_OFFICE)
REFERRAL_NOTIFY = (Role.DISCIPLINE_COMMISSION, Role.RECTIFICATION_OFFICE)
# Who may record and refer each path (000:431, 001:3 @3098).
PATH_ROLES: dict[ReferralPath, frozenset[Role]] = {
    ReferralPath.PERFORMANCE: frozenset({Role.RECTIFICATION_OFFICE, Role.SUPERVISION_OFFICE, Role.LEAD_SUPERVISOR}),
    ReferralPath.FAKE_RECTIFICATION: frozenset({Role.LEAD_SUPERVISOR}),  # drafts; the office verifies
    ReferralPath.INSPECTION_DOSSIER: frozenset({Role.RECTIFICATION_OFFICE}),
    ReferralPath.ESCALATION: frozenset(),  # legacy only
}


def current_rules(state: CaseState) -> bool:
    return state.escalation.rules == RULES


def adopt_rules(state: CaseState, patched: bool) -> CaseState:
    """Set the escalation rules a workflow run applies (in place).

    `patched` is the workflow's `workflow.patched(...)` answer: False while replaying (or
    continuing) a run begun before issue 9, which keeps the old ladder; True otherwise. A state
    carried over from old rules is migrated: the rung at its level becomes the rung in effect.
    """
    esc = state.escalation
    if not patched:
        esc.rules = 1
        return state
    if esc.rules == RULES:
        return state
    esc.rules = RULES
    if esc.level > 0:
        esc.current = RUNG_ORDER[min(esc.level, len(RUNG_ORDER)) - 1]
        esc.reached[state.stage] = esc.current
    esc.step = _position_after(_schedule_order(state), esc.current)
    return state


# ---------------------------------------------------------------- ladders


def stage_ladder(state: CaseState, stage: Stage) -> list[LadderRungSpec]:
    """The case's profile, in its own order, cut at the stage's ceiling."""
    pol = state.policy
    rungs = list(pol.ladder(state.filing.ladder_profile).rungs)
    ceiling = pol.stage_ladder_ceilings.get(stage)
    if ceiling is None:
        return rungs
    return [r for r in rungs if rung_level(r.rung) <= rung_level(ceiling)]


def _spec(state: CaseState, rung: Rung) -> LadderRungSpec | None:
    return next((r for r in state.policy.ladder(state.filing.ladder_profile).rungs if r.rung is rung), None)


def mode_of(state: CaseState, rung: Rung) -> RungMode:
    spec = _spec(state, rung)
    return spec.effective_mode if spec is not None else LadderRungSpec(rung=rung, delay_days=0).effective_mode


def _notify_roles(state: CaseState, rung: Rung) -> list[Role]:
    spec = _spec(state, rung)
    return list(spec.notify_roles) if spec and spec.notify_roles else list(_DEFAULT_NOTIFY)


def _schedule_order(state: CaseState) -> list[Rung]:
    return [r.rung for r in state.deadline.escalation_schedule] if state.deadline else []


def _position_after(order: list[Rung], rung: Rung | None) -> int:
    """Index of the first rung of `order` still to come once `rung` is in effect."""
    if rung is None:
        return 0
    if rung in order:
        return order.index(rung) + 1
    n = 0
    for i, r in enumerate(order):
        if rung_level(r) <= rung_level(rung):
            n = i + 1
    return n


def next_rung(state: CaseState) -> ScheduledRung | None:
    """The next rung of the current deadline's schedule still to come (None: nothing)."""
    s = state
    if s.deadline is None or not s.deadline.escalation_schedule:
        return None
    esc = s.escalation
    if not current_rules(s):
        for r in s.deadline.escalation_schedule:  # legacy: by severity level
            if rung_level(r.rung) > esc.level:
                return r
        return None
    if esc.held or any(p.facts.get("scheduled") and p.stage is s.stage and p.cycle == s.cycle
                       for p in esc.pending()):
        return None
    sched = s.deadline.escalation_schedule
    return sched[esc.step] if esc.step < len(sched) else None


# ---------------------------------------------------------------- stage and deadline hooks


def on_stage_left(b: _Builder) -> None:
    """The stage's ladder stops (the unit acted); the rung reached is remembered for resume."""
    s = b.state
    esc = s.escalation
    if esc.level > 0:
        b.record(
            "ESCALATION_STOPPED",
            SYSTEM_ACTOR,
            reason=f"stage left at rung {esc.level}",
            level=esc.level,
        )
        esc.level = 0
    if current_rules(s):
        if esc.current is not None:
            esc.reached[s.stage] = esc.current
        esc.current, esc.step, esc.held = None, 0, False


def on_stage_entered(b: _Builder, stage: Stage) -> None:
    """Re-entering a stage with a rung reached earlier: resume there (policy.ladder_resume)."""
    s = b.state
    esc = s.escalation
    if not current_rules(s) or s.policy.ladder_resume is not LadderResume.REACHED:
        return
    reached = esc.reached.get(stage)
    if reached is None:
        return
    esc.current = reached
    esc.level = rung_level(reached)
    b.record(
        "ESCALATION_RESUMED",
        SYSTEM_ACTOR,
        reason=f"{STAGE_LABELS_ZH[stage]} 期限重新设定,督办从已达到的措施【{RUNG_LABELS_ZH[reached]}】继续",
        rung=reached,
        level=esc.level,
    )


def on_deadline_applied(state: CaseState, computed: ComputedDeadline) -> None:
    """A new stage deadline: its ladder continues after the rung in effect."""
    if not current_rules(state) or computed.purpose == "POSTING":
        return
    esc = state.escalation
    esc.step = _position_after([r.rung for r in computed.escalation_schedule], esc.current)
    esc.held = False


# ---------------------------------------------------------------- the clock


def climb(b: _Builder) -> None:
    """Fire (or propose) every rung due at `b.now`, in the profile's order."""
    s = b.state
    while (r := next_rung(s)) is not None and r.fire_at <= b.now:
        due = s.deadline.due_date if s.deadline else ""
        reason = f"逾期:期限 {due},{RUNG_LABELS_ZH[r.rung]}"
        if not current_rules(s):
            _legacy_fire(b, r.rung, reason)
            continue
        s.escalation.step += 1
        if mode_of(s, r.rung) is RungMode.AUTOMATIC:
            _take_effect(b, r.rung, automatic=True, actor=SYSTEM_ACTOR, reason=reason, event="ESCALATED")
        else:
            _propose(b, r.rung, SYSTEM_ACTOR, reason, scheduled=r)


def _legacy_fire(b: _Builder, rung: Rung, reason: str) -> None:
    """The pre-issue-9 automatic rung (level-based); a PROPOSED rung is only proposed."""
    s = b.state
    level = rung_level(rung)
    s.escalation.level = level
    s.escalation.max_level = max(s.escalation.max_level, level)
    if mode_of(s, rung) is RungMode.PROPOSED:
        _propose(b, rung, SYSTEM_ACTOR, reason, scheduled=None)
        return
    s.escalation.fired.append(FiredRung(rung=rung, at=b.now, stage=s.stage, automatic=True, reason=reason))
    b.record(
        "ESCALATED", SYSTEM_ACTOR, reason=reason, notify=_notify_roles(s, rung),
        subject=_subject(s, rung), rung=rung, level=level, automatic=True,
        due_date=s.deadline.due_date.isoformat() if s.deadline else None,
    )


def _subject(s: CaseState, rung: Rung) -> str:
    return f"【{RUNG_LABELS_ZH[rung]}】案件 {s.case_no} {STAGE_LABELS_ZH[s.stage]}"


def _facts(s: CaseState, now: datetime, scheduled: ScheduledRung | None) -> dict[str, Any]:
    """What a proposal rests on: deadline, lateness, measures, reports, rungs in effect."""
    today = local_date(now)
    progress = [t for t in s.timeline if t.event == Action.REPORT_PROGRESS.value]
    facts: dict[str, Any] = {
        "stage": s.stage.value,
        "cycle": s.cycle,
        "ladder_profile": s.filing.ladder_profile,
        "scheduled": scheduled is not None,
        "rungs_in_effect": [
            f.rung.value for f in s.escalation.fired if f.stage is s.stage and f.at >= s.stage_entered_at
        ],
        "measures_done": f"{len(s.measures_done)}/{len(s.filing.measures)}",
        "last_progress_report": progress[-1].at.date().isoformat() if progress else None,
        "extension_pending": s.extension_request is not None,
        "open_referrals": sum(1 for r in s.referrals if r.status is not ReferralStatus.CONCLUDED),
    }
    if s.deadline is not None:
        facts["due_date"] = s.deadline.due_date.isoformat()
        facts["days_overdue"] = max((today - s.deadline.due_date).days, 0)
    if scheduled is not None:
        facts["scheduled_for"] = scheduled.fire_date.isoformat()
    return facts


def _propose(
    b: _Builder, rung: Rung, actor: Actor, reason: str, *, scheduled: ScheduledRung | None,
    request_id: str | None = None,
) -> EscalationProposal:
    s = b.state
    esc = s.escalation
    pid = f"P{len(esc.proposals) + 1}"
    prop = EscalationProposal(
        proposal_id=pid, rung=rung, stage=s.stage, cycle=s.cycle, proposed_at=b.now,
        proposed_by=actor.user_id, proposed_role=actor.role, reason=reason,
        facts=_facts(s, b.now, scheduled),
    )
    esc.proposals.append(prop)
    b.record(
        "ESCALATION_PROPOSED" if request_id is None else Action.PROPOSE_RUNG.value,
        actor, reason=reason, request_id=request_id, notify=PROPOSAL_NOTIFY,
        subject=f"【拟采取措施:{RUNG_LABELS_ZH[rung]}】案件 {s.case_no} {STAGE_LABELS_ZH[s.stage]}(待确认)",
        proposal_id=pid, rung=rung, facts=prop.facts,
    )
    return prop


def _take_effect(
    b: _Builder, rung: Rung, *, automatic: bool, actor: Actor, reason: str, event: str,
    request_id: str | None = None, stage: Stage | None = None, **data: Any,
) -> None:
    s = b.state
    esc = s.escalation
    stage = stage or s.stage
    level = rung_level(rung)
    if stage is s.stage:
        esc.level = max(esc.level, level)
        esc.current = rung
    esc.reached[stage] = rung
    esc.max_level = max(esc.max_level, level)
    esc.fired.append(FiredRung(rung=rung, at=b.now, stage=stage, automatic=automatic, reason=reason, by=actor.user_id))
    b.record(
        event, actor, reason=reason, request_id=request_id, notify=_notify_roles(s, rung),
        subject=_subject(s, rung), rung=rung, level=level, automatic=automatic,
        due_date=s.deadline.due_date.isoformat() if s.deadline else None, **data,
    )


# ---------------------------------------------------------------- handler actions


def check_payload(state: CaseState, req: ActionRequest) -> None:
    """Escalation- and referral-specific checks before anything is recorded.

    Raises:
        CaseError: naming what is wrong.
    """
    s = state
    new = current_rules(s)
    match req.action:
        case Action.APPLY_RUNG | Action.PROPOSE_RUNG:
            assert req.rung is not None
            if rung_level(req.rung) <= s.escalation.level:
                raise InvalidTransitionError(
                    f"case is already at rung level {s.escalation.level}; {req.rung} would not raise it"
                )
            if new and req.action is Action.APPLY_RUNG and req.rung is Rung.ACCOUNTABILITY_TRANSFER:
                _need_report(req)
            if req.action is Action.PROPOSE_RUNG and any(p.rung is req.rung for p in s.escalation.pending()):
                raise InvalidTransitionError(f"{req.rung} is already proposed and pending")
        case Action.CONFIRM_ESCALATION | Action.DISMISS_ESCALATION:
            prop = _pending(s, req.proposal_id)
            if req.action is Action.CONFIRM_ESCALATION and prop.rung is Rung.ACCOUNTABILITY_TRANSFER:
                _need_report(req)
        case Action.DE_ESCALATE:
            if req.rung is not None and rung_level(req.rung) >= s.escalation.level:
                raise InvalidTransitionError(
                    f"de-escalation goes down: {req.rung} (level {rung_level(req.rung)}) is not below "
                    f"the level in effect ({s.escalation.level})"
                )
        case Action.REFER_ACCOUNTABILITY if new:
            assert req.referral_path is not None
            path = req.referral_path
            if req.actor.role not in PATH_ROLES[path]:
                who = ", ".join(sorted(r.value for r in PATH_ROLES[path])) or "nobody (legacy path)"
                raise NotAuthorizedError(
                    f"referral path {path.value} is recorded by {who} (domain.md §4.6, 000:431), "
                    f"not by {req.actor.role.value}"
                )
            _need_report(req)
        case Action.VERIFY_REFERRAL | Action.RETURN_REFERRAL:
            ref = next((r for r in s.referrals if r.referral_id == req.referral_id), None)
            if ref is None:
                raise MissingInputError(f"case {s.case_no} has no referral {req.referral_id}")
            if ref.status is not ReferralStatus.DRAFT:
                raise InvalidTransitionError(f"referral {ref.referral_id} is {ref.status}, not DRAFT")
        case _:
            pass


def _need_report(req: ActionRequest) -> None:
    if not (req.report_ref or "").strip():
        raise MissingInputError(
            "a referral to the discipline commission needs the reference of the 追责建议报告 "
            "(accountability recommendation report) or dossier: report_ref"
        )


def _pending(s: CaseState, proposal_id: str | None) -> EscalationProposal:
    for p in s.escalation.proposals:
        if p.proposal_id == proposal_id:
            if p.status is not ProposalStatus.PENDING:
                raise InvalidTransitionError(f"proposal {p.proposal_id} is already {p.status.value}")
            return p
    raise MissingInputError(f"case {s.case_no} has no escalation proposal {proposal_id}")


def apply_rung(b: _Builder, req: ActionRequest) -> None:
    """APPLY_RUNG: an authorised person applies a rung now (视情), with a reason."""
    s = b.state
    assert req.rung is not None
    if not current_rules(s):
        _legacy_apply(b, req)
        return
    _take_effect(b, req.rung, automatic=False, actor=req.actor, reason=req.reason,
                 event=Action.APPLY_RUNG.value, request_id=req.request_id)
    s.escalation.step = max(s.escalation.step, _position_after(_schedule_order(s), req.rung))
    for p in s.escalation.pending():
        if p.rung is req.rung:
            _decide(p, ProposalStatus.CONFIRMED, b.now, req, "applied directly (APPLY_RUNG)")
    if req.rung is Rung.ACCOUNTABILITY_TRANSFER:
        open_referral(b, ReferralPath.PERFORMANCE, req.reason, req.actor, report_ref=req.report_ref or "")


def _legacy_apply(b: _Builder, req: ActionRequest) -> None:
    s = b.state
    assert req.rung is not None
    level = rung_level(req.rung)
    s.escalation.level = level
    s.escalation.max_level = max(s.escalation.max_level, level)
    s.escalation.fired.append(FiredRung(rung=req.rung, at=b.now, stage=s.stage, automatic=False,
                                        reason=req.reason, by=req.actor.user_id))
    b.record(
        Action.APPLY_RUNG.value, req.actor, reason=req.reason, request_id=req.request_id,
        notify=_notify_roles(s, req.rung), subject=_subject(s, req.rung), rung=req.rung, level=level,
        automatic=False, due_date=s.deadline.due_date.isoformat() if s.deadline else None,
    )
    if req.rung is Rung.ACCOUNTABILITY_TRANSFER:
        open_referral(b, ReferralPath.PERFORMANCE, req.reason, req.actor, report_ref=req.report_ref or "")


def propose(b: _Builder, req: ActionRequest) -> None:
    """PROPOSE_RUNG: the lead supervising unit, a supervision office or the office proposes a rung."""
    assert req.rung is not None
    _propose(b, req.rung, req.actor, req.reason, scheduled=None, request_id=req.request_id)


def _decide(p: EscalationProposal, status: ProposalStatus, now: datetime, req: ActionRequest, reason: str) -> None:
    p.status, p.decided_at, p.decided_by, p.decision_reason = status, now, req.actor.user_id, reason
    p.report_ref = req.report_ref or ""


def confirm(b: _Builder, req: ActionRequest) -> None:
    """CONFIRM_ESCALATION: the proposed rung takes effect; 移交问责 refers on path A."""
    s = b.state
    p = _pending(s, req.proposal_id)
    _decide(p, ProposalStatus.CONFIRMED, b.now, req, req.reason)
    _take_effect(b, p.rung, automatic=False, actor=req.actor, reason=req.reason,
                 event=Action.CONFIRM_ESCALATION.value, request_id=req.request_id, stage=p.stage,
                 proposal_id=p.proposal_id)
    if p.rung is Rung.ACCOUNTABILITY_TRANSFER:
        open_referral(b, ReferralPath.PERFORMANCE, req.reason, req.actor, report_ref=req.report_ref or "")


def dismiss(b: _Builder, req: ActionRequest) -> None:
    """DISMISS_ESCALATION: the proposed rung is not taken; the ladder goes on when due."""
    s = b.state
    p = _pending(s, req.proposal_id)
    _decide(p, ProposalStatus.DISMISSED, b.now, req, req.reason)
    b.record(
        Action.DISMISS_ESCALATION.value, req.actor, reason=req.reason, request_id=req.request_id,
        notify=PROPOSAL_NOTIFY, proposal_id=p.proposal_id, rung=p.rung,
    )


def de_escalate(b: _Builder, req: ActionRequest) -> DeadlineRequest | None:
    """DE_ESCALATE: the office lowers the rung in effect, with a reason, recorded.

    The current deadline's ladder then climbs no further; with a new due date the stage gets
    a new deadline whose ladder continues after the lowered rung.
    """
    s = b.state
    esc = s.escalation
    before = esc.level
    target = req.rung
    esc.level = rung_level(target) if target else 0
    esc.current = target
    if target is None:
        esc.reached.pop(s.stage, None)
    else:
        esc.reached[s.stage] = target
    esc.held = True
    b.record(
        Action.DE_ESCALATE.value, req.actor, reason=req.reason, request_id=req.request_id,
        notify=(Role.RESPONSIBLE_UNIT, Role.LEAD_SUPERVISOR, Role.SUPERVISION_OFFICE),
        from_level=before, to_level=esc.level, rung=target,
        new_due_date=req.new_due_date.isoformat() if req.new_due_date else None,
    )
    if req.new_due_date is None:
        return None
    return DeadlineRequest(
        case_no=s.case_no, stage=s.stage, start=local_date(b.now), fixed_date=req.new_due_date,
        ladder=stage_ladder(s, s.stage),
    )


def refer(b: _Builder, req: ActionRequest) -> None:
    """REFER_ACCOUNTABILITY on a path of §4.6; path B is a draft until the office verifies it."""
    assert req.referral_path is not None
    s = b.state
    if current_rules(s) and req.referral_path is ReferralPath.FAKE_RECTIFICATION:
        rid = f"{s.case_no}-R{len(s.referrals) + 1}"
        s.referrals.append(Referral(
            referral_id=rid, path=req.referral_path, opened_at=b.now, reason=req.reason,
            status=ReferralStatus.DRAFT, report_ref=req.report_ref or "", drafted_by=req.actor.user_id,
        ))
        b.record(
            Action.REFER_ACCOUNTABILITY.value, req.actor, reason=req.reason, request_id=req.request_id,
            notify=(Role.RECTIFICATION_OFFICE,), referral_id=rid, path=req.referral_path,
            status=ReferralStatus.DRAFT, report_ref=req.report_ref or "",
        )
        return
    open_referral(b, req.referral_path, req.reason, req.actor, request_id=req.request_id,
                  report_ref=req.report_ref or "")


def verify_referral(b: _Builder, req: ActionRequest) -> None:
    """VERIFY_REFERRAL: the office verifies a path-B draft and refers it (000:431)."""
    s = b.state
    ref = next(r for r in s.referrals if r.referral_id == req.referral_id)
    ref.status, ref.referred_by = ReferralStatus.OPEN, req.actor.user_id
    b.record(
        Action.VERIFY_REFERRAL.value, req.actor, reason=req.reason, request_id=req.request_id,
        notify=REFERRAL_NOTIFY, referral_id=ref.referral_id, path=ref.path, status=ref.status,
        report_ref=ref.report_ref,
    )


def return_referral(b: _Builder, req: ActionRequest) -> None:
    """RETURN_REFERRAL: the office sends a path-B draft back to the lead supervising unit with its
    reason (not verified: 000:431 guards against 简单化问责). The draft is kept, RETURNED, and never
    referred; the lead may draft again, which is a new referral with its own id."""
    s = b.state
    ref = next(r for r in s.referrals if r.referral_id == req.referral_id)
    ref.status = ReferralStatus.RETURNED
    b.record(
        Action.RETURN_REFERRAL.value, req.actor, reason=req.reason, request_id=req.request_id,
        notify=rule_for(Action.RETURN_REFERRAL).notify, referral_id=ref.referral_id, path=ref.path,
        status=ref.status, report_ref=ref.report_ref,
    )


def open_referral(
    b: _Builder, path: ReferralPath, reason: str, actor: Actor, request_id: str | None = None,
    report_ref: str = "",
) -> None:
    """A referral to the discipline commission; it never closes or moves the case."""
    s = b.state
    rid = f"{s.case_no}-R{len(s.referrals) + 1}"
    s.referrals.append(Referral(
        referral_id=rid, path=path, opened_at=b.now, reason=reason, report_ref=report_ref,
        referred_by=actor.user_id,
    ))
    b.record(
        "REFERRAL_OPENED" if request_id is None else Action.REFER_ACCOUNTABILITY.value,
        actor, reason=reason, request_id=request_id, notify=REFERRAL_NOTIFY,
        referral_id=rid, path=path, report_ref=report_ref,
    )
