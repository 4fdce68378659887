"""The programme's timers (split out of domain/programme.py): the plan-submission deadline and the
six-month report (000:427), each with reminders before its due date and a ladder after it. Pure:
the calendar comes from an activity."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from enum import StrEnum

from pydantic import BaseModel, Field

from domain.calendar import WorkingCalendar, add_days, end_of_day
from domain.enums import DayCount, Rung, rung_level
from domain.errors import CaseError


class ProgrammeError(CaseError):
    """A programme request refused (bad input, wrong stage)."""


class TimerKind(StrEnum):
    PLAN = "PLAN"  # plan submission after feedback (INFERRED)
    REPORT = "REPORT"  # six-month report after plan submission (000:427)


TIMER_LABELS_ZH: dict[TimerKind, str] = {TimerKind.PLAN: "上报整改方案", TimerKind.REPORT: "六个月整改落实情况报告"}


class ProgrammeRungSpec(BaseModel):
    rung: Rung
    delay_days: int = Field(ge=0)  # working days after the due date


def _default_ladder() -> list[ProgrammeRungSpec]:
    return [ProgrammeRungSpec(rung=Rung.NOTICE_LETTER, delay_days=0),
            ProgrammeRungSpec(rung=Rung.WARNING, delay_days=5),
            ProgrammeRungSpec(rung=Rung.CIRCULAR, delay_days=10),
            ProgrammeRungSpec(rung=Rung.LEADERSHIP_REPORT, delay_days=20)]


class TimerRequest(BaseModel):
    """Ask the calendar activity for a programme timer (due date, reminders, rungs)."""

    programme_id: str
    kind: TimerKind
    start: date
    months: int | None = None  # calendar months after start (the six-month report)
    working_days: int | None = None  # working days after start (plan submission)
    reminder_days_before: list[int] = Field(default_factory=list)
    ladder: list[ProgrammeRungSpec] = Field(default_factory=list)
    today: date  # a due date already past: its ladder counts from today (like rebase_overdue_ladder)


class TimerStep(BaseModel):
    key: str  # "REMIND-30", "RUNG-WARNING"
    rung: Rung | None = None  # None: a reminder
    days_before: int | None = None
    fire_date: date
    fire_at: datetime
    fired_at: datetime | None = None
    skipped: bool = False  # already past when the timer was set (a reminder is not sent late)


class ProgrammeTimer(BaseModel):
    kind: TimerKind
    start: date
    due_date: date
    due_at: datetime
    explanation: str
    calendar_version: str = ""
    steps: list[TimerStep] = Field(default_factory=list)
    stopped_at: datetime | None = None
    on_time: bool | None = None

    def level(self) -> int:
        return max((rung_level(s.rung) for s in self.steps if s.rung and s.fired_at), default=0)

    def reached(self) -> Rung | None:
        fired = [s.rung for s in self.steps if s.rung and s.fired_at]
        return fired[-1] if fired else None


def add_months(d: date, months: int) -> date:
    """The same day `months` later (the month's last day when it has fewer days)."""
    y, m = divmod(d.month - 1 + months, 12)
    year, month = d.year + y, m + 1
    last = (date(year + month // 12, month % 12 + 1, 1) - timedelta(days=1)).day
    return date(year, month, min(d.day, last))


def compute_timer(req: TimerRequest, cal: WorkingCalendar) -> ProgrammeTimer:
    """Due date (end of day, Asia/Shanghai), reminders before it and the rungs after it."""
    uncovered: set[int] = set()
    if req.months is not None:
        due = add_months(req.start, req.months)
        rule = f"{req.months} calendar months after {req.start}"
    elif req.working_days is not None:
        walk = add_days(cal, req.start, req.working_days, DayCount.WORKING)
        due, rule = walk.end, f"{req.working_days} working days after {req.start}"
        uncovered.update(walk.uncovered_years)
        if walk.holidays_skipped:
            rule += "; holidays skipped: " + ", ".join(h.isoformat() for h in walk.holidays_skipped)
    else:
        raise ProgrammeError("a programme timer needs months or working_days")
    steps: list[TimerStep] = []
    for n in sorted(set(req.reminder_days_before), reverse=True):
        day = due - timedelta(days=n)
        steps.append(TimerStep(key=f"REMIND-{n}", days_before=n, fire_date=day, fire_at=end_of_day(day - timedelta(days=1))))
    base = due
    if due < req.today:
        base = req.today
        rule += f"; already overdue when set, escalation counted from {req.today}"
    for spec in req.ladder:
        walk = add_days(cal, base, spec.delay_days, DayCount.WORKING)
        uncovered.update(walk.uncovered_years)
        steps.append(TimerStep(key=f"RUNG-{spec.rung.value}", rung=spec.rung, fire_date=walk.end,
                               fire_at=end_of_day(walk.end)))
    version = cal.version + (f" (years {','.join(map(str, sorted(uncovered)))} not covered: provisional)"
                             if uncovered else "")
    return ProgrammeTimer(kind=req.kind, start=req.start, due_date=due, due_at=end_of_day(due),
                          explanation=f"due {due} (end of day, Asia/Shanghai): {rule}", calendar_version=version,
                          steps=steps)
