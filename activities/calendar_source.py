"""Builds the working-day calendar from `chinese-calendar` plus the override file."""

from __future__ import annotations

import hashlib
import json
from datetime import date
from pathlib import Path

from domain.calendar import WorkingCalendar


class CalendarOverrideError(ValueError):
    """The calendar override file is malformed."""


def load_calendar(override_path: str | Path | None = None) -> WorkingCalendar:
    """The calendar in force: package tables, then per-year overrides on top.

    The version names the package version and the override file's hash, so a
    recorded due date says exactly which holiday data it was computed with.
    """
    import chinese_calendar
    from chinese_calendar import constants

    holidays = set(constants.holidays)
    workdays = set(constants.workdays)
    first = min(d.year for d in holidays)
    last = max(d.year for d in holidays)
    version = f"chinese-calendar {chinese_calendar.__version__}"
    path = Path(override_path) if override_path else None
    if path is not None and path.exists():
        raw = path.read_bytes()
        try:
            doc = json.loads(raw)
            years = doc.get("years", {})
            for year_s, spec in years.items():
                year = int(year_s)
                hol = {date.fromisoformat(x) for x in spec.get("holidays", [])}
                work = {date.fromisoformat(x) for x in spec.get("workdays", [])}
                bad = [d for d in hol | work if d.year != year]
                if bad:
                    raise CalendarOverrideError(f"year {year} lists dates of another year: {bad}")
                holidays = {d for d in holidays if d.year != year} | hol
                workdays = {d for d in workdays if d.year != year} | work
                last = max(last, year)
        except (ValueError, TypeError, AttributeError) as e:
            raise CalendarOverrideError(f"calendar override file {path}: {e}") from None
        if years:
            version += f" + overrides sha256:{hashlib.sha256(raw).hexdigest()[:12]}"
    return WorkingCalendar(version=version, holidays=holidays, workdays=workdays, first_year=first, last_year=last)
