"""The rectification programme (整改方案): one inspection round's plan for one locality. Pure.

domain.md §4.1 P0–P6, §5.2, §7, §8 "InspectionProgrammeWorkflow". A programme is created from
the inspection team's feedback (反馈) with its plan (整改方案: name, round, locality, the
locality's counties, the plan text and reference). Two timers belong to it:

- the **plan-submission deadline** after feedback (P2→P3): INFERRED, from national rules and
  not from the seeds (domain.md §4.1), configurable (`ProgrammePolicy.plan_submission_working_days`);
- the **six-month report** (P4): "在上报整改方案6个月内报送问题整改落实情况" (000:427), started by
  the office's plan submission (SUBMIT_PLAN) and stopped by the six-month report (SUBMIT_REPORT).

Each timer reminds before its due date (calendar days, INFERRED) and escalates after it through
a programme-level ladder (rungs of `domain.enums.Rung`, delays in working days, INFERRED); every
reminder and rung is a ledger row and a notice to the office (整改办) and, for rungs, the
supervision offices (市委督查室 / 市政府督查室, 000:427). The programme knows its cases through
progress counts read from the case projection (`on_progress`) and completes (P5 done) once its
plan is submitted and every one of its cases is closed, archived or in long-term maintenance.

Everything here is deterministic; the workflow calls it with `workflow.now()` and the results
of its activities (policy, calendar).
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from pydantic import BaseModel, Field

from domain import enums
from domain.calendar import local_date
from domain.enums import RUNG_LABELS_ZH, Role, rung_level
from domain.errors import InvalidTransitionError, MissingInputError, NotAuthorizedError
from domain.model import Actor

# The timers and the error type live in domain/programme_timers.py (re-exported here).
from domain.programme_timers import (  # noqa: F401
    TIMER_LABELS_ZH,
    ProgrammeError,
    ProgrammeRungSpec,
    ProgrammeTimer,
    TimerKind,
    TimerRequest,
    TimerStep,
    _default_ladder,
    add_months,
    compute_timer,
)
from domain.text import LongText, Name, Names, Reason, Ref, Refs, Title

PROGRAMME_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"
PROGRAMME_WORKFLOW_NAME = "InspectionProgramme"


def programme_workflow_id(programme_id: str) -> str:
    """The one workflow id of a programme: creating the same id twice is refused."""
    return f"programme-{programme_id}"


class ProgrammeStage(StrEnum):
    FEEDBACK_RECEIVED = "FEEDBACK_RECEIVED"  # P1/P2 反馈已收到, 方案制定中
    PLAN_SUBMITTED = "PLAN_SUBMITTED"  # P3 方案已上报: six-month report timer running
    REPORTED = "REPORTED"  # P4 done: 已报送整改落实情况; P5 dispatch goes on
    COMPLETED = "COMPLETED"  # P5 done: every case closed or in long-term maintenance


PROGRAMME_STAGE_LABELS_ZH: dict[ProgrammeStage, str] = {
    ProgrammeStage.FEEDBACK_RECEIVED: "反馈已收到·方案制定中",
    ProgrammeStage.PLAN_SUBMITTED: "方案已上报·整改推进中",
    ProgrammeStage.REPORTED: "已报送整改落实情况",
    ProgrammeStage.COMPLETED: "整改全部完成",
}


class ProgrammeAction(StrEnum):
    SUBMIT_PLAN = "SUBMIT_PLAN"  # 上报整改方案
    SUBMIT_REPORT = "SUBMIT_REPORT"  # 报送问题整改落实情况 (six-month report)


PROGRAMME_ACTION_LABELS_ZH: dict[ProgrammeAction, str] = {
    ProgrammeAction.SUBMIT_PLAN: "上报整改方案",
    ProgrammeAction.SUBMIT_REPORT: "报送整改落实情况",
}


# Cases in these stages count as done for the programme (P5: closed or long-term maintenance).
DONE_STAGES = frozenset(s.value for s in enums.DONE_STAGES)  # as projection strings


class ProgrammeSpec(BaseModel):
    """What the office creates the programme from: the feedback and its plan."""

    programme_id: str = Field(min_length=1, max_length=64, pattern=PROGRAMME_ID_PATTERN)
    name: Title = Field(min_length=1)  # e.g. xx市贯彻落实第二轮中央生态环境保护督察报告整改方案
    inspection_round: Title = Field(min_length=1)
    locality: Title = Field(min_length=1)  # e.g. xx市
    counties: Names = Field(default_factory=list)  # the locality's counties (县市区), configuration
    feedback_date: date  # 正式反馈督察意见 (P1), e.g. 2021-07-16 (000:382)
    plan_text: LongText = ""
    plan_ref: Title = ""  # the plan's document reference, once known


class ProgrammePolicy(BaseModel):
    """The programme's configurable rules (POLICY_FILE key "programme"); INFERRED defaults."""

    version: str = "2026.12-programme-1"
    plan_submission_working_days: int = Field(default=30, ge=1)  # INFERRED (national rule, not in seeds)
    report_months: int = Field(default=6, ge=1)  # 000:427
    reminder_days_before: list[int] = Field(default_factory=lambda: [30, 7])  # calendar days, INFERRED
    ladder: list[ProgrammeRungSpec] = Field(default_factory=_default_ladder)  # INFERRED
    progress_check_hours: int = Field(default=24, ge=1)  # how often the case counts are read
    # 一月一调度 (000:427): the day of the month the dispatch Schedule runs (09:00 Asia/Shanghai);
    # 0: no Schedule for programmes created under this policy. The day is INFERRED.
    dispatch_day_of_month: int = Field(default=5, ge=0, le=28)
    office_unit: str = "整改办"
    supervision_units: list[str] = Field(default_factory=lambda: ["市委督查室", "市政府督查室"])
    max_history_events: int = Field(default=2000, ge=50)

    def checked(self) -> ProgrammePolicy:
        delays = [r.delay_days for r in self.ladder]
        if delays != sorted(delays) or len({r.rung for r in self.ladder}) != len(self.ladder):
            raise ProgrammeError("programme ladder: rungs must be distinct and their delays must not shrink")
        if any(d < 1 for d in self.reminder_days_before):
            raise ProgrammeError("programme reminder_days_before: each must be at least 1 day")
        return self


class ProgressCounts(BaseModel):
    """The programme's cases by stage, read from the case projection."""

    total: int = 0
    done: int = 0  # closed, archived or in long-term maintenance
    by_stage: dict[str, int] = Field(default_factory=dict)

    @classmethod
    def of(cls, by_stage: dict[str, int]) -> ProgressCounts:
        clean = {k: int(v) for k, v in sorted(by_stage.items()) if v}
        return cls(total=sum(clean.values()), done=sum(v for k, v in clean.items() if k in DONE_STAGES),
                   by_stage=clean)

    @property
    def open(self) -> int:
        return self.total - self.done


class ProgrammeRequest(BaseModel):
    """An action on a programme (the office's plan submission or six-month report)."""

    action: ProgrammeAction
    actor: Actor
    request_id: Ref = Field(min_length=1)
    reference: Title = ""  # the plan's or the report's document reference (文号)
    evidence: Refs = Field(default_factory=list)
    note: Reason = ""


class ProgrammeEntry(BaseModel):
    """One row of the programme ledger (append-only, hash-chained by the record activity)."""

    programme_id: str
    seq: int
    event: str
    actor: Actor
    at: datetime
    reason: str = ""
    request_id: str | None = None
    data: dict = Field(default_factory=dict)


class ProgrammeNotice(BaseModel):
    key: str
    programme_id: str
    seq: int
    recipient_unit: Name
    recipient_role: Role
    subject: str
    body: str


class ProgrammeState(BaseModel):
    spec: ProgrammeSpec
    policy: ProgrammePolicy
    stage: ProgrammeStage = ProgrammeStage.FEEDBACK_RECEIVED
    seq: int = 0
    created_at: datetime
    created_by: Actor
    plan_submitted_at: datetime | None = None
    plan_ref: str = ""
    report_submitted_at: datetime | None = None
    report_ref: str = ""
    report_evidence: list[str] = Field(default_factory=list)
    plan_timer: ProgrammeTimer | None = None
    report_timer: ProgrammeTimer | None = None
    pending_timer: TimerKind | None = None  # asked of the calendar activity, not yet set
    counts: ProgressCounts = Field(default_factory=ProgressCounts)
    counts_at: datetime | None = None
    completed_at: datetime | None = None
    runs: int = 1
    request_ids: list[str] = Field(default_factory=list)  # the last 200 accepted request ids

    @property
    def programme_id(self) -> str:
        return self.spec.programme_id

    def active_timer(self) -> ProgrammeTimer | None:
        for t in (self.report_timer, self.plan_timer):
            if t is not None and t.stopped_at is None:
                return t
        return None


class ProgrammeDecision(BaseModel):
    state: ProgrammeState
    entries: list[ProgrammeEntry] = Field(default_factory=list)
    notices: list[ProgrammeNotice] = Field(default_factory=list)
    timer_request: TimerRequest | None = None


SYSTEM = Actor(user_id="system", role=Role.SYSTEM, unit="engine")


# ---------------------------------------------------------------- building decisions


class _Builder:
    def __init__(self, state: ProgrammeState, now: datetime) -> None:
        self.state = state.model_copy(deep=True)
        self.now = now
        self.entries: list[ProgrammeEntry] = []
        self.notices: list[ProgrammeNotice] = []
        self.timer_request: TimerRequest | None = None

    def entry(self, event: str, actor: Actor, reason: str = "", request_id: str | None = None,
              **data: object) -> int:
        self.state.seq += 1
        self.entries.append(ProgrammeEntry(programme_id=self.state.programme_id, seq=self.state.seq, event=event,
                                           actor=actor, at=self.now, reason=reason, request_id=request_id,
                                           data=data))
        return self.state.seq

    def notify(self, seq: int, subject: str, body: str, supervision: bool) -> None:
        p = self.state.policy
        targets = [(p.office_unit, Role.RECTIFICATION_OFFICE)]
        if supervision:
            targets += [(u, Role.SUPERVISION_OFFICE) for u in p.supervision_units]
        pid = self.state.programme_id
        for unit, role in targets:
            self.notices.append(ProgrammeNotice(key=f"programme:{pid}:{seq}:{unit}", programme_id=pid, seq=seq,
                                                recipient_unit=unit, recipient_role=role,
                                                subject=f"[{self.state.spec.name}] {subject}", body=body))

    def ask_timer(self, kind: TimerKind, start: date) -> None:
        p = self.state.policy
        self.state.pending_timer = kind
        self.timer_request = TimerRequest(
            programme_id=self.state.programme_id, kind=kind, start=start,
            months=p.report_months if kind is TimerKind.REPORT else None,
            working_days=p.plan_submission_working_days if kind is TimerKind.PLAN else None,
            reminder_days_before=list(p.reminder_days_before), ladder=list(p.ladder), today=local_date(self.now))

    def done(self) -> ProgrammeDecision:
        return ProgrammeDecision(state=self.state, entries=self.entries, notices=self.notices,
                                 timer_request=self.timer_request)


def new_programme(spec: ProgrammeSpec, policy: ProgrammePolicy, now: datetime, created_by: Actor) -> ProgrammeDecision:
    """PROGRAMME_CREATED, and the plan-submission deadline asked of the calendar."""
    authorize_create(created_by, policy)
    policy.checked()
    state = ProgrammeState(spec=spec, policy=policy, created_at=now, created_by=created_by)
    b = _Builder(state, now)
    b.entry("PROGRAMME_CREATED", created_by, data={
        "name": spec.name, "inspection_round": spec.inspection_round, "locality": spec.locality,
        "counties": list(spec.counties), "feedback_date": spec.feedback_date.isoformat(), "plan_ref": spec.plan_ref,
        "policy_version": policy.version})
    b.ask_timer(TimerKind.PLAN, spec.feedback_date)
    return b.done()


def apply_timer(state: ProgrammeState, timer: ProgrammeTimer, now: datetime) -> ProgrammeDecision:
    """Adopt a computed timer: DEADLINE_SET (with its explanation); reminders already past are skipped."""
    b = _Builder(state, now)
    steps = []
    for s in timer.steps:
        steps.append(s.model_copy(update={"skipped": True}) if s.rung is None and s.fire_at <= now else s)
    timer = timer.model_copy(update={"steps": steps})
    if timer.kind is TimerKind.PLAN:
        b.state.plan_timer = timer
    else:
        b.state.report_timer = timer
    b.state.pending_timer = None
    b.entry("DEADLINE_SET", SYSTEM, timer=timer.kind.value, due_date=timer.due_date.isoformat(),
            explanation=timer.explanation, calendar_version=timer.calendar_version,
            schedule=[{"key": s.key, "fire_date": s.fire_date.isoformat(), "skipped": s.skipped} for s in steps])
    return b.done()


# ---------------------------------------------------------------- who may act


def authorize_create(actor: Actor, policy: ProgrammePolicy) -> None:
    if actor.role is not Role.RECTIFICATION_OFFICE or actor.unit != policy.office_unit:
        raise NotAuthorizedError(f"only the rectification office ({policy.office_unit}) creates a programme; "
                                 f"{actor.user_id} acts as {actor.role.value} of {actor.unit or 'no unit'}")


def validate(state: ProgrammeState, req: ProgrammeRequest) -> None:
    """Refuse a request before anything is recorded: who, which stage, what input (deny by default)."""
    p = state.policy
    if req.actor.role is not Role.RECTIFICATION_OFFICE or req.actor.unit != p.office_unit:
        raise NotAuthorizedError(
            f"{PROGRAMME_ACTION_LABELS_ZH[req.action]} {req.action.value}: only the rectification office "
            f"({p.office_unit}) may do this; {req.actor.user_id} acts as {req.actor.role.value} of "
            f"{req.actor.unit or 'no unit'}")
    if req.request_id in state.request_ids:
        from domain.errors import DuplicateRequestError

        raise DuplicateRequestError(f"request {req.request_id} was already applied to programme {state.programme_id}")
    want = {ProgrammeAction.SUBMIT_PLAN: ProgrammeStage.FEEDBACK_RECEIVED,
            ProgrammeAction.SUBMIT_REPORT: ProgrammeStage.PLAN_SUBMITTED}[req.action]
    if state.stage is not want:
        raise InvalidTransitionError(f"{req.action.value} needs the programme in {want.value}; "
                                     f"programme {state.programme_id} is {state.stage.value}")
    if state.pending_timer is not None:
        raise InvalidTransitionError(f"programme {state.programme_id} is still setting its {state.pending_timer.value}"
                                     " deadline; retry")
    if not req.reference.strip():
        what = "整改方案文号 the plan's reference" if req.action is ProgrammeAction.SUBMIT_PLAN else \
            "报告文号 the report's reference"
        raise MissingInputError(f"{req.action.value} needs `reference` ({what})")


def decide(state: ProgrammeState, req: ProgrammeRequest, now: datetime) -> ProgrammeDecision:
    validate(state, req)
    b = _Builder(state, now)
    s = b.state
    s.request_ids = (s.request_ids + [req.request_id])[-200:]
    if req.action is ProgrammeAction.SUBMIT_PLAN:
        timer = s.plan_timer
        on_time = timer is None or now <= timer.due_at
        if timer is not None:
            timer.stopped_at, timer.on_time = now, on_time
        s.stage, s.plan_submitted_at, s.plan_ref = ProgrammeStage.PLAN_SUBMITTED, now, req.reference
        seq = b.entry("PLAN_SUBMITTED", req.actor, req.note, req.request_id, reference=req.reference,
                      evidence=list(req.evidence), on_time=on_time,
                      due_date=timer.due_date.isoformat() if timer else None)
        if timer is not None and timer.level():
            b.entry("ESCALATION_STOPPED", req.actor, timer=TimerKind.PLAN.value, level=timer.level())
        b.notify(seq, "整改方案已上报 plan submitted",
                 f"整改方案 {req.reference} 已上报;六个月内须报送整改落实情况 (six-month report timer started).",
                 supervision=True)
        b.ask_timer(TimerKind.REPORT, local_date(now))
    else:
        timer = s.report_timer
        assert timer is not None
        on_time = now <= timer.due_at
        timer.stopped_at, timer.on_time = now, on_time
        s.stage, s.report_submitted_at = ProgrammeStage.REPORTED, now
        s.report_ref, s.report_evidence = req.reference, list(req.evidence)
        seq = b.entry("SIX_MONTH_REPORT_SUBMITTED", req.actor, req.note, req.request_id, reference=req.reference,
                      evidence=list(req.evidence), on_time=on_time, due_date=timer.due_date.isoformat())
        if timer.level():
            b.entry("ESCALATION_STOPPED", req.actor, timer=TimerKind.REPORT.value, level=timer.level())
        b.notify(seq, "整改落实情况已报送 six-month report submitted",
                 f"报告 {req.reference} 已报送({'按期 on time' if on_time else '逾期 late'})。", supervision=True)
    return b.done()


# ---------------------------------------------------------------- the clock and the cases


def next_wakeup(state: ProgrammeState) -> datetime | None:
    t = state.active_timer()
    if t is None or state.stage is ProgrammeStage.COMPLETED:
        return None
    pending = [s.fire_at for s in t.steps if s.fired_at is None and not s.skipped]
    return min(pending) if pending else None


def on_wakeup(state: ProgrammeState, now: datetime) -> ProgrammeDecision | None:
    """Fire every reminder and rung of the active timer that is due."""
    t0 = state.active_timer()
    if t0 is None or state.stage is ProgrammeStage.COMPLETED:
        return None
    b = _Builder(state, now)
    t = b.state.active_timer()
    assert t is not None
    what = TIMER_LABELS_ZH[t.kind]
    for step in sorted(t.steps, key=lambda s: s.fire_at):
        if step.fired_at is not None or step.skipped or step.fire_at > now:
            continue
        step.fired_at = now
        if step.rung is None:
            seq = b.entry("REMINDER", SYSTEM, timer=t.kind.value, key=step.key, due_date=t.due_date.isoformat(),
                          days_before=step.days_before)
            b.notify(seq, f"提醒:{what}将于 {t.due_date} 到期 reminder",
                     f"{what}须于 {t.due_date} 前完成(还有 {step.days_before} 天)。", supervision=False)
        else:
            overdue = (local_date(now) - t.due_date).days
            seq = b.entry("ESCALATED", SYSTEM, timer=t.kind.value, key=step.key, rung=step.rung.value,
                          level=rung_level(step.rung), due_date=t.due_date.isoformat(), overdue_days=overdue)
            b.notify(seq, f"{RUNG_LABELS_ZH[step.rung]}:{what}已逾期 escalated ({step.rung.value})",
                     f"{what}应于 {t.due_date} 完成,已逾期 {overdue} 天;升级至 {RUNG_LABELS_ZH[step.rung]}。",
                     supervision=True)
    return b.done() if b.entries else None


def on_progress(state: ProgrammeState, counts: ProgressCounts, now: datetime) -> ProgrammeDecision | None:
    """New case counts: PROGRESS when they changed; COMPLETED when every case is done (plan submitted)."""
    if state.stage is ProgrammeStage.COMPLETED:
        return None
    b = _Builder(state, now)
    b.state.counts_at = now
    if counts != state.counts:
        b.state.counts = counts
        b.entry("PROGRESS", SYSTEM, total=counts.total, done=counts.done, by_stage=dict(counts.by_stage))
    if is_complete(b.state):
        b.state.stage, b.state.completed_at = ProgrammeStage.COMPLETED, now
        active = b.state.active_timer()
        if active is not None:  # an open report duty ends with the programme (README: limits)
            active.stopped_at = now
        seq = b.entry("PROGRAMME_COMPLETED", SYSTEM, total=counts.total,
                      report_submitted=b.state.report_submitted_at is not None)
        b.notify(seq, "整改任务全部完成 programme completed",
                 f"全部 {counts.total} 项任务已销号或转入长期坚持。", supervision=True)
    return b.done() if b.entries else ProgrammeDecision(state=b.state)


def is_complete(state: ProgrammeState) -> bool:
    return (state.stage in (ProgrammeStage.PLAN_SUBMITTED, ProgrammeStage.REPORTED)
            and state.counts.total > 0 and state.counts.open == 0)


# ---------------------------------------------------------------- the projection


class ProgrammeProjection(BaseModel):
    """The programme_projection row (the console reads it; figures per unit come from the cases)."""

    programme_id: str
    name: str
    inspection_round: str
    locality: str
    counties: list[str]
    stage: str
    feedback_date: date
    plan_submitted_at: datetime | None
    plan_ref: str
    report_due_date: date | None
    report_due_at: datetime | None
    report_submitted_at: datetime | None
    report_ref: str
    escalation_level: int
    total_cases: int
    done_cases: int
    created_at: datetime
    completed_at: datetime | None
    last_seq: int
    policy_version: str
    detail: dict


def projection(state: ProgrammeState) -> ProgrammeProjection:
    """The projection row of the programme's state."""
    def timer(t: ProgrammeTimer | None) -> dict | None:
        if t is None:
            return None
        return {"kind": t.kind.value, "due_date": t.due_date.isoformat(), "due_at": t.due_at.isoformat(),
                "explanation": t.explanation, "calendar_version": t.calendar_version,
                "stopped_at": t.stopped_at.isoformat() if t.stopped_at else None, "on_time": t.on_time,
                "level": t.level(), "rung": t.reached().value if t.reached() else None,
                "steps": [s.model_dump(mode="json") for s in t.steps]}

    rt = state.report_timer
    return ProgrammeProjection(**{
        "programme_id": state.programme_id, "name": state.spec.name,
        "inspection_round": state.spec.inspection_round, "locality": state.spec.locality,
        "counties": list(state.spec.counties), "stage": state.stage.value,
        "feedback_date": state.spec.feedback_date, "plan_submitted_at": state.plan_submitted_at,
        "plan_ref": state.plan_ref or state.spec.plan_ref,
        "report_due_date": rt.due_date if rt else None, "report_due_at": rt.due_at if rt else None,
        "report_submitted_at": state.report_submitted_at, "report_ref": state.report_ref,
        "escalation_level": max((t.level() for t in (state.plan_timer, rt) if t), default=0),
        "total_cases": state.counts.total, "done_cases": state.counts.done,
        "created_at": state.created_at, "completed_at": state.completed_at, "last_seq": state.seq,
        "policy_version": state.policy.version,
        "detail": {"plan_timer": timer(state.plan_timer), "report_timer": timer(rt),
                   "by_stage": dict(state.counts.by_stage), "plan_text": state.spec.plan_text,
                   "report_evidence": list(state.report_evidence), "runs": state.runs},
    })


# ---------------------------------------------------------------- messages of the workflow


class ProgrammeInput(BaseModel):
    """Start input; on continue-as-new `state` carries the whole programme over."""

    spec: ProgrammeSpec
    created_by: Actor
    submit_plan: ProgrammeRequest | None = None  # the plan submitted with the creation (make run)
    policy: ProgrammePolicy | None = None  # None: the policy activity loads the deployment's
    state: ProgrammeState | None = None


class ProgrammeActResult(BaseModel):
    programme_id: str
    stage: ProgrammeStage
    seq: int
    report_due_date: date | None = None


class ProgrammeRecordInput(BaseModel):
    """Ledger rows, notices and the projection to write in one transaction."""

    entries: list[ProgrammeEntry]
    notices: list[ProgrammeNotice]
    projection: ProgrammeProjection
    workflow_run_id: str = ""


class ProgrammePolicyRequest(BaseModel):
    programme_id: str


class DispatchScheduleRequest(BaseModel):
    """Create (or bring to this day) the programme's monthly dispatch Schedule."""

    programme_id: str
    day_of_month: int
