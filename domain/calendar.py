"""Chinese working-day arithmetic over an explicit, versioned calendar.

The calendar is plain data (official holidays and adjusted workdays, 调休) handed
in by the caller; this module never reads a package table itself, so the same
inputs always give the same due date. Building the calendar from
`chinese-calendar` plus an override file happens in an activity.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from pydantic import BaseModel, Field

from domain.enums import DayCount

SHANGHAI = ZoneInfo("Asia/Shanghai")


class WorkingCalendar(BaseModel):
    """Official non-working holidays and adjusted working days for covered years."""

    version: str
    holidays: set[date] = Field(default_factory=set)  # 法定节假日 that fall on weekdays or not
    workdays: set[date] = Field(default_factory=set)  # 调休上班日 (weekend days that are worked)
    first_year: int
    last_year: int

    def covers(self, d: date) -> bool:
        return self.first_year <= d.year <= self.last_year

    def is_working_day(self, d: date) -> bool:
        if d in self.workdays:
            return True
        if d in self.holidays:
            return False
        return d.weekday() < 5


class DayWalk(BaseModel):
    """The result of counting days forward, with what was skipped."""

    end: date
    holidays_skipped: list[date] = Field(default_factory=list)
    weekend_days_skipped: int = 0
    adjusted_workdays_counted: list[date] = Field(default_factory=list)
    uncovered_years: list[int] = Field(default_factory=list)


def add_days(cal: WorkingCalendar, start: date, days: int, count: DayCount) -> DayWalk:
    """Count `days` forward from `start` (the start day itself is not counted).

    With WORKING days, zero days means `start` itself. Days in years the
    calendar does not cover count by the weekday rule and are reported in
    `uncovered_years`, so the explanation says the result is provisional.
    """
    if days < 0:
        raise ValueError(f"days must be >= 0, got {days}")
    if count is DayCount.CALENDAR:
        end = start + timedelta(days=days)
        uncovered = sorted({y for y in (start.year, end.year) if not cal.first_year <= y <= cal.last_year})
        return DayWalk(end=end, uncovered_years=uncovered)
    walk = DayWalk(end=start)
    uncovered: set[int] = set()
    d = start
    counted = 0
    while counted < days:
        d += timedelta(days=1)
        if not cal.covers(d):
            uncovered.add(d.year)
        if cal.is_working_day(d):
            counted += 1
            if d in cal.workdays:
                walk.adjusted_workdays_counted.append(d)
        elif d in cal.holidays:
            walk.holidays_skipped.append(d)
        else:
            walk.weekend_days_skipped += 1
    walk.end = d
    walk.uncovered_years = sorted(uncovered)
    return walk


def count_days(cal: WorkingCalendar, start: date, end: date, count: DayCount) -> int:
    """Days in the half-open interval [start, end) by the given count."""
    if end <= start:
        return 0
    if count is DayCount.CALENDAR:
        return (end - start).days
    n = 0
    d = start
    while d < end:
        if cal.is_working_day(d):
            n += 1
        d += timedelta(days=1)
    return n


def end_of_day(d: date) -> datetime:
    """The instant a due date expires: the end of that day in Asia/Shanghai, as UTC."""
    local_midnight = datetime.combine(d + timedelta(days=1), time(0, 0), tzinfo=SHANGHAI)
    return local_midnight.astimezone(ZoneInfo("UTC"))


def local_date(at: datetime) -> date:
    """The Asia/Shanghai calendar date of an aware instant."""
    if at.tzinfo is None:
        raise ValueError("naive datetime: pass an aware (UTC) instant")
    return at.astimezone(SHANGHAI).date()
