"""Follow-up timers of a case: measure milestones and the monthly progress report (issue 13).

Data only (no logic, no import of domain.model, which imports this): the timer state a case
carries, the policy of the timers, and the request/answer of the calendar activity that dates
them. Logic: domain/followup.py (the timer engine), domain/milestones.py, domain/reporting.py.
Every field has a default so that states and histories written before keep deserialising.
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from pydantic import BaseModel, Field, model_validator

from domain.enums import RUNG_LABELS_ZH, DayCount, Role, Rung, Stage


class TimerKind(StrEnum):
    MILESTONE = "MILESTONE"  # a dated milestone of a measure (措施节点)
    REPORT = "REPORT"  # the monthly progress report (月度调度报告)


class FollowUpRung(BaseModel):
    """One rung of a follow-up ladder: applied this many (working) days after the due date."""

    rung: Rung
    delay_days: int = Field(ge=0)


class FollowUpLadder(BaseModel):
    """Reminder lead time and escalation rungs of one kind of follow-up timer (INFERRED)."""

    remind_days_before: int = Field(default=5, ge=0)  # 0: no reminder
    count: DayCount = DayCount.WORKING
    rungs: list[FollowUpRung] = Field(default_factory=list)
    notify_roles: list[Role] = Field(
        default_factory=lambda: [Role.RESPONSIBLE_UNIT, Role.LEAD_SUPERVISOR, Role.RECTIFICATION_OFFICE]
    )

    @model_validator(mode="after")
    def _ordered(self) -> FollowUpLadder:
        seen: set[Rung] = set()
        prev = -1
        for r in self.rungs:
            label = f"{r.rung.value} ({RUNG_LABELS_ZH[r.rung]})"
            if r.rung in seen:
                raise ValueError(f"follow-up ladder: rung {label} appears twice")
            if r.delay_days <= prev:
                raise ValueError(f"follow-up ladder: rung {label} has delay {r.delay_days} days, which does not grow")
            if r.rung is Rung.ACCOUNTABILITY_TRANSFER:
                raise ValueError(f"follow-up ladder: rung {label} is never applied by a timer (000:431)")
            seen.add(r.rung)
            prev = r.delay_days
        return self


def _milestone_ladder() -> FollowUpLadder:
    # INFERRED: 函告 when a milestone is missed, then 警示, then 通报 (000:446's order).
    return FollowUpLadder(remind_days_before=5, rungs=[
        FollowUpRung(rung=Rung.NOTICE_LETTER, delay_days=0), FollowUpRung(rung=Rung.WARNING, delay_days=5),
        FollowUpRung(rung=Rung.CIRCULAR, delay_days=10),
    ])


def _report_ladder() -> FollowUpLadder:
    # INFERRED: a missing monthly report gets 函告 at once and 通报 after a week (000:411 一月一通报).
    return FollowUpLadder(remind_days_before=3, rungs=[
        FollowUpRung(rung=Rung.NOTICE_LETTER, delay_days=0), FollowUpRung(rung=Rung.CIRCULAR, delay_days=5),
    ])


class FollowUpPolicy(BaseModel):
    """Policy of the follow-up timers (a field of domain.policy.Policy; all INFERRED)."""

    milestones_timed: bool = True
    milestone_stages: list[Stage] = Field(default_factory=lambda: [Stage.RECTIFYING])
    milestone_ladder: FollowUpLadder = Field(default_factory=_milestone_ladder)
    # 一月一调度 (000:427): the report of month M is due on this day of M (clamped to the month's
    # length; moved to the next working day when it is not one).
    monthly_report: bool = True
    report_day_of_month: int = Field(default=25, ge=1, le=31)
    report_stages: list[Stage] = Field(
        default_factory=lambda: [Stage.RECTIFYING, Stage.LONG_TERM_MAINTENANCE]
    )
    # The first report is due on the first report day at least this many calendar days after
    # the case entered a reporting stage.
    report_grace_days: int = Field(default=10, ge=0)
    report_ladder: FollowUpLadder = Field(default_factory=_report_ladder)
    # 验收 (VERIFY_PASS) needs every measure done with its evidence (000:301, 003:38); the
    # responsible unit's 申报完成 (SUBMIT_COMPLETION) only when this is set as well.
    verify_requires_measures_done: bool = True
    submit_requires_measures_done: bool = False
    # A milestone already past when armed (an imported old plan) starts its ladder that day.
    rebase_overdue: bool = True


class TimerRung(BaseModel):
    rung: Rung
    fire_date: date
    fire_at: datetime


class ItemTimer(BaseModel):
    """One dated follow-up: a milestone of a measure, or one month's progress report."""

    key: str  # M<measure>.<milestone> or R<YYYY-MM>
    kind: TimerKind
    measure_seq: int | None = None
    period: str | None = None  # YYYY-MM (reports)
    what: str = ""
    due_date: date
    due_at: datetime
    remind_date: date | None = None
    remind_at: datetime | None = None
    reminded: bool = False
    schedule: list[TimerRung] = Field(default_factory=list)
    step: int = 0  # index of the next rung to apply
    fired: list[Rung] = Field(default_factory=list)
    stopped: str | None = None  # MEASURE_DONE | REPORTED
    explanation: str = ""
    calendar_version: str = ""


class ProgressReport(BaseModel):
    period: str  # YYYY-MM the report covers (the month it was submitted in)
    at: datetime
    by: str
    unit: str = ""
    seq: int = 0  # its ledger row


class FollowUpState(BaseModel):
    """What a case carries of its follow-up timers (CaseState.followup; None: old rules)."""

    rules: int = 1
    timers: list[ItemTimer] = Field(default_factory=list)
    measure_evidence: dict[int, list[str]] = Field(default_factory=dict)  # measure seq → evidence refs
    reports: list[ProgressReport] = Field(default_factory=list)  # the latest ones (bounded)
    since: date | None = None  # the day the case came under these rules (nothing is owed before)

    def timer(self, key: str) -> ItemTimer | None:
        return next((t for t in self.timers if t.key == key), None)

    @property
    def last_report(self) -> ProgressReport | None:
        return self.reports[-1] if self.reports else None


# ---------------------------------------------------------------- the calendar activity


class ScheduleItem(BaseModel):
    key: str
    kind: TimerKind
    measure_seq: int | None = None
    period: str | None = None
    what: str = ""
    due_date: date
    roll_to_working_day: bool = False
    ladder: FollowUpLadder
    ladder_floor: date | None = None  # rebase: the ladder is counted from no earlier than this


class ScheduleRequest(BaseModel):
    case_no: str
    today: date
    items: list[ScheduleItem]


class ScheduleResult(BaseModel):
    timers: list[ItemTimer]
    calendar_version: str = ""


class FollowUpProjection(BaseModel):
    """The follow-up columns of the case projection (migration 012)."""

    report_due_date: date | None = None
    report_period: str | None = None
    report_last_period: str | None = None
    report_last_at: datetime | None = None
    measures_open: int = 0
    milestone_next_due: date | None = None
    milestones_overdue: int = 0
