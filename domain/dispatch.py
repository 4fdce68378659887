"""Monthly dispatch (一月一调度一督办, 000:427; 一月一调度一通报, 000:411): periods, per-unit figures,
the notice each unit gets, and who may read which rows. Pure: the time and the calendar are
arguments (the workflow passes `workflow.now()` and the calendar an activity loaded).

A *period* is a calendar month in Asia/Shanghai, written `YYYY-MM`. A dispatch run for a
period reports, per responsible unit (主体责任单位) of the programme's cases:

- state figures as they are when the report is made (`as_of`): cases by stage, open, overdue
  (the current stage deadline passed), escalated (a rung above 0), items without a timer
  (持续推进 / 立行立改,持续推进 with no due date);
- period figures, dated by the month: due this month (an open case's stage due date falls in
  it), closed this month (销号 or 长期坚持 entered in it), and progress reports missing (an open
  case in a stage where the unit reports progress, RECTIFYING or LONG_TERM_MAINTENANCE, with no
  调度报告 REPORT_PROGRESS in the month up to `as_of`).

A report made after its month (a schedule catching up a missed month, a backfill) still
counts its state figures at `as_of`: the projection keeps no past stages.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from pydantic import BaseModel, Field

from domain import enums
from domain.calendar import WorkingCalendar, count_days, end_of_day, local_date
from domain.enums import STAGE_LABELS_ZH, Action, DayCount, DeadlineKind, Role, Stage
from domain.lifecycle import ACTIVE_STAGES, rule_for
from domain.text import check_text
from domain.visibility import HomeUnits, Reader, Scope, active_rules

SHANGHAI = ZoneInfo("Asia/Shanghai")
_PERIOD = re.compile(r"^([0-9]{4})-([0-9]{2})$")
MAX_DAY_OF_MONTH = 28  # every month has it: a schedule on the 29th..31st would skip February
CLOSED_STAGES = enums.DONE_STAGES  # domain/enums.py
NO_UNIT = "(未指定 no unit)"  # where a case without a responsible unit is counted (no notice)
NO_TIMER_KINDS = frozenset({DeadlineKind.ONGOING.value, DeadlineKind.IMMEDIATE_AND_ONGOING.value})
# Stages in which the responsible unit reports progress (调度报告), from the lifecycle table.
REPORT_STAGES = frozenset(rule_for(Action.REPORT_PROGRESS).from_stages)
# Ledger events that count as the month's progress report.
PROGRESS_EVENTS = frozenset({Action.REPORT_PROGRESS.value})


class DispatchError(ValueError):
    """Bad dispatch input (a period, a programme id, a day of month); the message names it."""


class Flag(StrEnum):
    """Why a case is on a unit's list."""

    DUE_THIS_MONTH = "DUE_THIS_MONTH"
    OVERDUE = "OVERDUE"
    ESCALATED = "ESCALATED"
    CLOSED_THIS_MONTH = "CLOSED_THIS_MONTH"
    NO_TIMER = "NO_TIMER"
    NO_REPORT = "NO_REPORT"


FLAG_LABELS_ZH: dict[Flag, str] = {
    Flag.DUE_THIS_MONTH: "本月到期",
    Flag.OVERDUE: "逾期",
    Flag.ESCALATED: "已升级督办",
    Flag.CLOSED_THIS_MONTH: "本月销号",
    Flag.NO_TIMER: "无时限(持续推进)",
    Flag.NO_REPORT: "本月未报进展",
}

# The columns of the figures (English key, Chinese label), in report order.
FIGURE_COLUMNS: tuple[tuple[str, str], ...] = (
    ("total", "案件总数 Cases"),
    ("open", "在办 Open"),
    ("due_this_month", "本月到期 Due this month"),
    ("overdue", "逾期 Overdue"),
    ("escalated", "升级督办 Escalated"),
    ("closed_this_month", "本月销号 Closed this month"),
    ("no_timer", "无时限 No timer"),
    ("no_report", "本月未报进展 No progress report"),
)


# ------------------------------------------------------------------ periods


@dataclass(frozen=True, order=True)
class Period:
    """One calendar month in Asia/Shanghai."""

    year: int
    month: int

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"

    @property
    def first_day(self) -> date:
        return date(self.year, self.month, 1)

    @property
    def last_day(self) -> date:
        return self.next().first_day - timedelta(days=1)

    @property
    def start_at(self) -> datetime:
        """The first instant of the month in Asia/Shanghai (aware)."""
        return datetime.combine(self.first_day, time(0, 0), tzinfo=SHANGHAI)

    @property
    def end_at(self) -> datetime:
        """The first instant after the month (exclusive end), Asia/Shanghai."""
        return self.next().start_at

    def contains(self, at: datetime | date) -> bool:
        d = local_date(at) if isinstance(at, datetime) else at
        return (d.year, d.month) == (self.year, self.month)

    def next(self) -> Period:
        return Period(self.year + (self.month == 12), 1 if self.month == 12 else self.month + 1)

    def prev(self) -> Period:
        return Period(self.year - (self.month == 1), 12 if self.month == 1 else self.month - 1)


def parse_period(text: str) -> Period:
    """`YYYY-MM` -> Period, or DispatchError naming what is wrong."""
    m = _PERIOD.match(str(text or ""))
    if not m:
        raise DispatchError(f"period {str(text)[:40]!r} is not a month written YYYY-MM (e.g. 2026-03)")
    year, month = int(m[1]), int(m[2])
    if not 1 <= month <= 12:
        raise DispatchError(f"period {text!r}: month {month} is not 01..12")
    if not 2000 <= year <= 2999:
        raise DispatchError(f"period {text!r}: year {year} is out of range 2000..2999")
    return Period(year, month)


def period_of(at: datetime) -> Period:
    """The month (Asia/Shanghai) an aware instant falls in."""
    d = local_date(at)
    return Period(d.year, d.month)


def periods_between(first: Period, last: Period) -> list[Period]:
    out, p = [], first
    while p <= last:
        out.append(p)
        p = p.next()
    return out


def check_runnable(period: Period, now: datetime) -> None:
    """A month is reported once it has begun: a future month is refused."""
    if period.start_at > now:
        raise DispatchError(f"period {period} has not begun (now {local_date(now)} in Asia/Shanghai)")


# ------------------------------------------------------------------ names and input checks


def check_programme_id(programme_id: str) -> str:
    """A programme id as cases carry it (CaseFiling.programme_id): one line, not empty."""
    try:
        check_text(programme_id, 128, multiline=False)
    except ValueError as e:
        raise DispatchError(f"programme id: {e}") from None
    if not programme_id.strip() or programme_id != programme_id.strip():
        raise DispatchError(f"programme id {programme_id!r} is empty or has surrounding spaces")
    return programme_id


def check_day_of_month(day: int) -> int:
    if isinstance(day, bool) or not isinstance(day, int) or not 1 <= day <= MAX_DAY_OF_MONTH:
        raise DispatchError(f"day of month {day!r} must be 1..{MAX_DAY_OF_MONTH} "
                            "(29..31 would skip the months without that day)")
    return day


def schedule_id(programme_id: str) -> str:
    """The one Temporal Schedule of a programme's monthly dispatch."""
    return f"dispatch-{programme_id}"


def dispatch_workflow_id(programme_id: str, period: Period | str) -> str:
    """The one DispatchWorkflow of a programme and month: a second run is refused by id."""
    return f"dispatch-{programme_id}-{period}"


def notice_key(programme_id: str, period: Period | str, unit: str) -> str:
    """The outbox key of a unit's dispatch list: sent once per programme, month and unit."""
    return f"dispatch:{programme_id}:{period}:{unit}"


def notice_case_no(programme_id: str) -> str:
    """What a programme-level notice carries in outbox.case_no (no case, no ledger row)."""
    return f"programme:{programme_id}"


# ------------------------------------------------------------------ figures


class CaseSnapshot(BaseModel):
    """What the dispatch needs of one case of the programme (read from the projection)."""

    case_no: str
    title: str
    stage: Stage
    responsible_units: list[str] = Field(default_factory=list)
    due_date: date | None = None  # the current stage deadline
    deadline_kind: str | None = None  # the plan's 整改时限 form (DeadlineKind value), if any
    escalation_level: int = 0
    suspended: bool = False
    closed_at: datetime | None = None
    reports_this_month: int = 0  # 调度报告 in the period up to as_of (ledger REPORT_PROGRESS)


class CaseLine(BaseModel):
    """One case on a unit's list."""

    case_no: str
    title: str
    stage: Stage
    stage_zh: str
    due_date: date | None = None
    overdue_working_days: int | None = None
    escalation_level: int = 0
    flags: list[Flag] = Field(default_factory=list)


class UnitFigures(BaseModel):
    unit: str
    by_stage: dict[str, int] = Field(default_factory=dict)
    total: int = 0
    open: int = 0
    due_this_month: int = 0
    overdue: int = 0
    escalated: int = 0
    closed_this_month: int = 0
    no_timer: int = 0
    no_report: int = 0
    cases: list[CaseLine] = Field(default_factory=list)  # open cases and those closed this month

    def add(self, other: UnitFigures) -> None:
        for k, _ in FIGURE_COLUMNS:
            setattr(self, k, getattr(self, k) + getattr(other, k))
        for s, n in other.by_stage.items():
            self.by_stage[s] = self.by_stage.get(s, 0) + n


class DispatchFigures(BaseModel):
    """The whole report of one programme and month (stored as jsonb; rendered to xlsx and HTML)."""

    programme_id: str
    period: str
    as_of: datetime
    calendar_version: str = ""
    units: list[UnitFigures] = Field(default_factory=list)
    totals: UnitFigures = Field(default_factory=lambda: UnitFigures(unit="合计 Total"))
    cases: int = 0  # distinct cases of the programme counted (a case with two units counts once)


def _line(c: CaseSnapshot, period: Period, as_of: datetime, cal: WorkingCalendar) -> CaseLine | None:
    """The case's line on a unit's list, or None when it is neither open nor closed this month."""
    flags: list[Flag] = []
    is_open = c.stage in ACTIVE_STAGES or c.stage is Stage.REGISTERED
    closed_now = c.stage in CLOSED_STAGES and c.closed_at is not None and period.contains(c.closed_at) \
        and c.closed_at <= as_of
    overdue_wd = None
    if is_open and c.due_date is not None:
        if period.first_day <= c.due_date <= period.last_day:
            flags.append(Flag.DUE_THIS_MONTH)
        if end_of_day(c.due_date) <= as_of:
            flags.append(Flag.OVERDUE)
            overdue_wd = count_days(cal, c.due_date + timedelta(days=1), local_date(as_of) + timedelta(days=1),
                                    DayCount.WORKING)
    if (is_open or c.stage is Stage.LONG_TERM_MAINTENANCE) and c.escalation_level > 0:
        flags.append(Flag.ESCALATED)
    if closed_now:
        flags.append(Flag.CLOSED_THIS_MONTH)
    if is_open and c.due_date is None and c.deadline_kind in NO_TIMER_KINDS:
        flags.append(Flag.NO_TIMER)
    if c.stage in REPORT_STAGES and c.reports_this_month == 0:
        flags.append(Flag.NO_REPORT)
    if not (is_open or closed_now or flags):
        return None
    return CaseLine(case_no=c.case_no, title=c.title, stage=c.stage, stage_zh=STAGE_LABELS_ZH[c.stage],
                    due_date=c.due_date, overdue_working_days=overdue_wd, escalation_level=c.escalation_level,
                    flags=flags)


def compile_dispatch(programme_id: str, period: Period, as_of: datetime, cases: Iterable[CaseSnapshot],
                     cal: WorkingCalendar) -> DispatchFigures:
    """The dispatch figures of a programme for a month, per responsible unit, as at `as_of`."""
    if as_of.tzinfo is None:
        raise DispatchError("as_of must be an aware instant")
    units: dict[str, UnitFigures] = {}
    seen: set[str] = set()
    for c in sorted(cases, key=lambda c: c.case_no):
        seen.add(c.case_no)
        line = _line(c, period, as_of, cal)
        for unit in c.responsible_units or [NO_UNIT]:
            u = units.setdefault(unit, UnitFigures(unit=unit))
            u.total += 1
            u.by_stage[c.stage.value] = u.by_stage.get(c.stage.value, 0) + 1
            if c.stage in ACTIVE_STAGES or c.stage is Stage.REGISTERED:
                u.open += 1
            if line is None:
                continue
            u.cases.append(line)
            f = set(line.flags)
            u.due_this_month += Flag.DUE_THIS_MONTH in f
            u.overdue += Flag.OVERDUE in f
            u.escalated += Flag.ESCALATED in f
            u.closed_this_month += Flag.CLOSED_THIS_MONTH in f
            u.no_timer += Flag.NO_TIMER in f
            u.no_report += Flag.NO_REPORT in f
    out = DispatchFigures(programme_id=programme_id, period=str(period), as_of=as_of,
                          calendar_version=cal.version, units=[units[k] for k in sorted(units)], cases=len(seen))
    for u in out.units:
        out.totals.add(u)
    return out


def only_units(figures: DispatchFigures, units: frozenset[str] | None) -> DispatchFigures:
    """The report as a reader scoped to `units` sees it (None: every unit). A unit sees its own
    rows only, and the totals of its own rows: nothing of the other units, not even their sums."""
    if units is None:
        return figures
    shown = [u for u in figures.units if u.unit in units]
    out = DispatchFigures(programme_id=figures.programme_id, period=figures.period, as_of=figures.as_of,
                          calendar_version=figures.calendar_version, units=shown,
                          cases=len({c.case_no for u in shown for c in u.cases}))
    for u in shown:
        out.totals.add(u)
    return out


# ------------------------------------------------------------------ the notice to each unit


def unit_notice(figures: DispatchFigures, u: UnitFigures) -> tuple[str, str, str]:
    """(key, subject, body) of the notice telling a unit its own list for the month."""
    subject = (f"月度调度 Monthly dispatch {figures.period} · {figures.programme_id}: 在办 {u.open}, "
               f"逾期 {u.overdue}, 本月到期 {u.due_this_month}")
    lines = [f"{u.unit}:", f"整改方案 Programme {figures.programme_id} 月度调度 {figures.period} "
             f"(截至 as of {figures.as_of.astimezone(SHANGHAI):%Y-%m-%d %H:%M} 北京时间)", ""]
    lines += [f"{label}: {getattr(u, key)}" for key, label in FIGURE_COLUMNS]
    lines.append("")
    for c in u.cases:
        flags = "、".join(FLAG_LABELS_ZH[f] for f in c.flags) or "-"
        due = f"{c.due_date}" if c.due_date else "无 none"
        late = f" 逾期{c.overdue_working_days}个工作日" if c.overdue_working_days else ""
        lines.append(f"- {c.case_no} {c.title} [{c.stage_zh} {c.stage.value}] 时限 {due}{late} · {flags}")
    if not u.cases:
        lines.append("本月无在办案件 (no open case this month)")
    return notice_key(figures.programme_id, figures.period, u.unit), subject[:500], "\n".join(lines)


# ------------------------------------------------------------------ who reads which rows


@dataclass(frozen=True)
class DispatchAccess:
    """What a reader sees of a programme's dispatch reports: None = every unit's rows."""

    units: frozenset[str] | None
    may_run: bool = False  # schedule, run now (the office only)

    @property
    def denied(self) -> bool:
        return self.units is not None and not self.units


def dispatch_access(reader: Reader, home: HomeUnits | None = None) -> DispatchAccess:
    """Deny by default. Every unit's rows: roles that read all cases (the office from its home unit,
    the supervision offices 督查室, auditors). A responsible unit: its own unit's rows only. Scheduling
    and running a dispatch: the office, from its home unit."""
    units: set[str] = set()
    every = False
    may_run = False
    for role, rule in active_rules(reader, home or HomeUnits()):
        if Scope.ALL in rule.scopes:
            every = True
            may_run = may_run or role is Role.RECTIFICATION_OFFICE
        elif role is Role.RESPONSIBLE_UNIT and reader.unit:
            units.add(reader.unit)
    return DispatchAccess(units=None if every else frozenset(units), may_run=may_run)
