"""Deadline forms, their parsing, and due-date computation with explanations."""

from __future__ import annotations

import calendar as _stdcal
import re
from datetime import date, datetime

from domain.calendar import WorkingCalendar, add_days, count_days, end_of_day
from domain.enums import DeadlineKind
from domain.errors import DeadlineParseError
from domain.model import (
    ComputedDeadline,
    DeadlineRequest,
    DeadlineSpec,
    DueDateExplanation,
    ScheduledRung,
)

_FULL_DATE = re.compile(r"(\d{4})\s*年\s*(\d{1,2})\s*月\s*(\d{1,2})\s*日")
_MONTH = re.compile(r"(\d{4})\s*年\s*(\d{1,2})\s*月(?:底|末)?")
_YEAR_END = re.compile(r"(\d{4})\s*年\s*(?:底|末)")
_ISO = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")
_LONG_TERM = ("长期坚持", "防止反弹", "長期堅持")
_IMMEDIATE = ("立行立改", "立即整改", "即知即改", "即交即办")
_ONGOING = ("持续推进", "持續推進")


def _month_end(year: int, month: int) -> date:
    return date(year, month, _stdcal.monthrange(year, month)[1])


def parse_deadline(raw: str) -> DeadlineSpec:
    """Parse the Chinese text of a 整改时限 into a deadline spec.

    Recognises 立行立改/立即整改 (+持续推进 or +长期坚持), 持续推进, full dates
    (2022年12月31日), months (2022年9月 → end of month, INFERRED), 2022年底,
    ISO dates, and a trailing 长期坚持/防止反弹.

    Raises:
        DeadlineParseError: the text matches no known form, or names an impossible date.
    """
    text = (raw or "").strip()
    if not text:
        raise DeadlineParseError("deadline text is empty")
    long_term = any(k in text for k in _LONG_TERM)
    try:
        if m := _FULL_DATE.search(text):
            due = date(int(m[1]), int(m[2]), int(m[3]))
            kind = DeadlineKind.DATE_THEN_LONG_TERM if long_term else DeadlineKind.DATE
            return DeadlineSpec(kind=kind, due_date=due, long_term=long_term, raw_zh=text)
        if m := _ISO.match(text):
            return DeadlineSpec(
                kind=DeadlineKind.DATE, due_date=date(int(m[1]), int(m[2]), int(m[3])), raw_zh=text
            )
        if m := _YEAR_END.search(text):
            kind = DeadlineKind.DATE_THEN_LONG_TERM if long_term else DeadlineKind.DATE
            return DeadlineSpec(
                kind=kind, due_date=date(int(m[1]), 12, 31), long_term=long_term, raw_zh=text
            )
        if m := _MONTH.search(text):
            return DeadlineSpec(
                kind=DeadlineKind.MONTH,
                due_date=_month_end(int(m[1]), int(m[2])),
                long_term=long_term,
                raw_zh=text,
            )
    except ValueError as e:
        raise DeadlineParseError(f"deadline {text!r} names an impossible date: {e}") from None
    if any(k in text for k in _IMMEDIATE):
        kind = DeadlineKind.IMMEDIATE_AND_LONG_TERM if long_term else DeadlineKind.IMMEDIATE_AND_ONGOING
        return DeadlineSpec(kind=kind, long_term=long_term, raw_zh=text)
    if any(k in text for k in _ONGOING):
        return DeadlineSpec(kind=DeadlineKind.ONGOING, long_term=long_term, raw_zh=text)
    if long_term:
        return DeadlineSpec(kind=DeadlineKind.IMMEDIATE_AND_LONG_TERM, long_term=True, raw_zh=text)
    raise DeadlineParseError(
        f"deadline {text!r} is not a known form (a date such as 2022年12月31日, a month such as "
        "2022年9月, 立行立改, 持续推进 or 长期坚持)"
    )


def validate_spec(spec: DeadlineSpec) -> None:
    """Check that a deadline spec is consistent with its kind."""
    dated = spec.kind in (DeadlineKind.DATE, DeadlineKind.DATE_THEN_LONG_TERM, DeadlineKind.MONTH)
    if dated and spec.due_date is None:
        raise DeadlineParseError(f"deadline kind {spec.kind} needs a due_date")
    if not dated and spec.due_date is not None:
        raise DeadlineParseError(f"deadline kind {spec.kind} takes no due_date")


def compute_deadline(
    req: DeadlineRequest, cal: WorkingCalendar, computed_at: datetime | None = None
) -> ComputedDeadline:
    """Compute a due date (end of day, Asia/Shanghai) and its escalation schedule.

    Days in years the calendar does not cover (the due date itself, the days
    counted, or the rungs' fire dates) mark the calendar version provisional.
    """
    uncovered: set[int] = set()
    expl: DueDateExplanation
    if req.base_due_date is not None:
        # Suspension: add the excluded time back onto the due date.
        if req.exclude_from is None or req.exclude_until is None:
            raise ValueError("a suspension recalculation needs exclude_from and exclude_until")
        excluded = count_days(cal, req.exclude_from, req.exclude_until, req.count)
        walk = add_days(cal, req.base_due_date, excluded, req.count)
        due = walk.end
        uncovered.update(walk.uncovered_years)
        expl = DueDateExplanation(
            start=req.base_due_date,
            rule=(
                f"due date {req.base_due_date} moved by {excluded} {req.count} days suspended "
                f"({req.exclude_from} to {req.exclude_until})"
            ),
            days=excluded,
            count=req.count,
            holidays_skipped=walk.holidays_skipped,
            weekend_days_skipped=walk.weekend_days_skipped,
            adjusted_workdays_counted=walk.adjusted_workdays_counted,
            excluded_days=excluded,
        )
    elif req.fixed_date is not None:
        due = req.fixed_date
        expl = DueDateExplanation(start=req.start, rule=f"fixed date {due}")
    elif req.days is not None:
        walk = add_days(cal, req.start, req.days, req.count)
        due = walk.end
        uncovered.update(walk.uncovered_years)
        expl = DueDateExplanation(
            start=req.start,
            rule=f"{req.days} {req.count} days after {req.start}",
            days=req.days,
            count=req.count,
            holidays_skipped=walk.holidays_skipped,
            weekend_days_skipped=walk.weekend_days_skipped,
            adjusted_workdays_counted=walk.adjusted_workdays_counted,
        )
    else:
        raise ValueError("a deadline request needs fixed_date, days or base_due_date")
    if not cal.covers(due):
        uncovered.add(due.year)
    base = due
    if req.rebase_overdue_ladder and due < req.start:
        base = req.start
        expl.rule += f"; already overdue when set, escalation counted from {req.start}"
    expl.ladder_base = base if req.ladder else None
    schedule = []
    for spec in req.ladder:
        walk = add_days(cal, base, spec.delay_days, spec.count)
        uncovered.update(walk.uncovered_years)
        schedule.append(ScheduledRung(rung=spec.rung, fire_date=walk.end, fire_at=end_of_day(walk.end)))
    expl.calendar_version = _version(cal, sorted(uncovered))
    return ComputedDeadline(
        purpose=req.purpose,
        stage=req.stage,
        due_date=due,
        due_at=end_of_day(due),
        explanation=expl,
        count=req.count if req.fixed_date is None else None,
        escalation_schedule=schedule,
        computed_at=computed_at,
    )


def _version(cal: WorkingCalendar, uncovered: list[int]) -> str:
    if not uncovered:
        return cal.version
    years = ",".join(str(y) for y in uncovered)
    return f"{cal.version} (years {years} not covered: weekends only, provisional)"


def explain(deadline: ComputedDeadline) -> str:
    """A one-paragraph explanation of a computed due date, in English."""
    e = deadline.explanation
    parts = [f"Due {deadline.due_date} (end of day, Asia/Shanghai): {e.rule}."]
    if e.holidays_skipped:
        parts.append("Holidays skipped: " + ", ".join(d.isoformat() for d in e.holidays_skipped) + ".")
    if e.weekend_days_skipped:
        parts.append(f"Weekend days skipped: {e.weekend_days_skipped}.")
    if e.adjusted_workdays_counted:
        parts.append(
            "Adjusted workdays counted (调休): "
            + ", ".join(d.isoformat() for d in e.adjusted_workdays_counted)
            + "."
        )
    parts.append(f"Calendar {e.calendar_version}.")
    return " ".join(parts)


def long_term_after_closure(spec: DeadlineSpec | None) -> bool:
    """Whether a closed case goes on to long-term maintenance (长期坚持)."""
    return bool(spec and (spec.long_term or spec.kind in (
        DeadlineKind.DATE_THEN_LONG_TERM, DeadlineKind.IMMEDIATE_AND_LONG_TERM)))

