"""Working-day arithmetic over the real chinese-calendar data, due-date explanations, the override file."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from pathlib import Path

import chinese_calendar
import pytest
from chinese_calendar import constants

from activities.calendar_source import CalendarOverrideError, load_calendar
from domain.calendar import (
    WorkingCalendar,
    add_days,
    count_days,
    end_of_day,
    local_date,
)
from domain.deadlines import compute_deadline, explain
from domain.enums import RUNG_ORDER, DayCount, Rung, Stage
from domain.model import DeadlineRequest
from domain.policy import CANONICAL_LADDER
from tests.unit.factories import UTC, calendar

W = DayCount.WORKING
C = DayCount.CALENDAR
VERSION = f"chinese-calendar {chinese_calendar.__version__}"


def _days(first: str, last: str) -> list[date]:
    d, end, out = date.fromisoformat(first), date.fromisoformat(last), []
    while d <= end:
        out.append(d)
        d += timedelta(days=1)
    return out


def _req(start: date, days: int | None = None, **kw) -> DeadlineRequest:
    return DeadlineRequest(case_no="CAL-1", stage=Stage.RECTIFYING, start=start, days=days, **kw)


# ------------------------------------------------------------------ the data the tests rely on


@pytest.mark.parametrize(
    ("holidays", "workdays"),
    [
        (_days("2025-01-28", "2025-02-04"), [date(2025, 1, 26), date(2025, 2, 8)]),  # 2025 春节
        (_days("2025-10-01", "2025-10-08"), [date(2025, 9, 28), date(2025, 10, 11)]),  # 2025 国庆中秋
        (_days("2026-02-15", "2026-02-23"), [date(2026, 2, 14), date(2026, 2, 28)]),  # 2026 春节
        (_days("2026-10-01", "2026-10-07"), [date(2026, 9, 20), date(2026, 10, 10)]),  # 2026 国庆
    ],
    ids=["2025-spring", "2025-national", "2026-spring", "2026-national"],
)
def test_loaded_calendar_carries_the_official_holidays_and_adjusted_workdays(holidays, workdays):
    """load_calendar(None) has the package's holidays and 调休 workdays for the festivals under test."""
    cal = calendar()

    assert set(holidays) <= cal.holidays and set(holidays) <= set(constants.holidays)
    assert set(workdays) <= cal.workdays and set(workdays) <= set(constants.workdays)
    assert all(not cal.is_working_day(d) for d in holidays)
    assert all(cal.is_working_day(d) and d.weekday() >= 5 for d in workdays)


def test_loaded_calendar_version_names_the_package_and_its_coverage():
    """Without overrides the version is the package version; coverage ends with the package data."""
    cal = calendar()

    assert cal.version == VERSION
    assert cal.last_year == max(d.year for d in constants.holidays) == 2026
    assert cal.covers(date(2026, 12, 31)) and not cal.covers(date(2027, 1, 1))


def test_plain_weekends_and_weekdays():
    """Outside holidays Saturday and Sunday rest and weekdays work."""
    cal = calendar()

    assert cal.is_working_day(date(2025, 3, 3))  # Monday
    assert not cal.is_working_day(date(2025, 3, 8))  # Saturday
    assert not cal.is_working_day(date(2025, 3, 9))  # Sunday


# ------------------------------------------------------------------ add_days across festivals


def test_2025_spring_festival_counts_the_adjusted_sunday_and_skips_the_holiday():
    """Fri 2025-01-24 + 3 working days: Sun 1-26 (调休) and Mon 1-27 count, 1-28..2-4 skipped → Wed 2-5."""
    walk = add_days(calendar(), date(2025, 1, 24), 3, W)

    assert walk.end == date(2025, 2, 5)
    assert walk.holidays_skipped == _days("2025-01-28", "2025-02-04")
    assert walk.adjusted_workdays_counted == [date(2025, 1, 26)]
    assert walk.weekend_days_skipped == 1  # Sat 1-25
    assert walk.uncovered_years == []


def test_2025_spring_festival_counts_the_adjusted_saturday_after_the_holiday():
    """Mon 2025-01-27 + 5 working days: 2-5, 2-6, 2-7, Sat 2-8 (调休), Mon 2-10."""
    walk = add_days(calendar(), date(2025, 1, 27), 5, W)

    assert walk.end == date(2025, 2, 10)
    assert walk.adjusted_workdays_counted == [date(2025, 2, 8)]
    assert len(walk.holidays_skipped) == 8
    assert walk.weekend_days_skipped == 1  # Sun 2-9


def test_2025_national_day_ten_working_days():
    """Fri 2025-09-26 + 10 working days → Thu 2025-10-16, counting Sun 9-28 and Sat 10-11."""
    walk = add_days(calendar(), date(2025, 9, 26), 10, W)

    assert walk.end == date(2025, 10, 16)
    assert walk.holidays_skipped == _days("2025-10-01", "2025-10-08")
    assert walk.adjusted_workdays_counted == [date(2025, 9, 28), date(2025, 10, 11)]
    assert walk.weekend_days_skipped == 2  # Sat 9-27, Sun 10-12


def test_2026_spring_festival_five_working_days():
    """Thu 2026-02-12 + 5 working days → Thu 2-26, counting Sat 2-14 and skipping 2-15..2-23."""
    walk = add_days(calendar(), date(2026, 2, 12), 5, W)

    assert walk.end == date(2026, 2, 26)
    assert walk.holidays_skipped == _days("2026-02-15", "2026-02-23")
    assert walk.adjusted_workdays_counted == [date(2026, 2, 14)]
    assert walk.weekend_days_skipped == 0


def test_2026_spring_festival_adjusted_saturday_after_the_holiday_is_a_working_day():
    """Thu 2026-02-26 + 2 working days → Sat 2-28 (调休上班)."""
    walk = add_days(calendar(), date(2026, 2, 26), 2, W)

    assert walk.end == date(2026, 2, 28)
    assert walk.adjusted_workdays_counted == [date(2026, 2, 28)]


def test_2026_mid_autumn_and_national_day_ten_working_days():
    """Fri 2026-09-18 + 10 → Fri 10-09: Sun 9-20 counted; 9-25..27 and 10-1..7 skipped."""
    walk = add_days(calendar(), date(2026, 9, 18), 10, W)

    assert walk.end == date(2026, 10, 9)
    assert walk.holidays_skipped == _days("2026-09-25", "2026-09-27") + _days("2026-10-01", "2026-10-07")
    assert walk.adjusted_workdays_counted == [date(2026, 9, 20)]
    assert walk.weekend_days_skipped == 1  # Sat 9-19


def test_2026_national_day_adjusted_saturday_is_a_working_day():
    """Fri 2026-10-09 + 1 working day → Sat 2026-10-10 (调休上班)."""
    assert add_days(calendar(), date(2026, 10, 9), 1, W).end == date(2026, 10, 10)


def test_zero_working_days_is_the_start_itself():
    """0 working days after a date is that date, even a holiday."""
    assert add_days(calendar(), date(2025, 10, 1), 0, W).end == date(2025, 10, 1)


def test_calendar_days_ignore_holidays():
    """CALENDAR counting just adds days: 2025-01-27 + 10 → 2025-02-06."""
    walk = add_days(calendar(), date(2025, 1, 27), 10, C)

    assert walk.end == date(2025, 2, 6)
    assert walk.holidays_skipped == [] and walk.weekend_days_skipped == 0


def test_negative_days_are_rejected():
    """add_days refuses a negative count."""
    with pytest.raises(ValueError):
        add_days(calendar(), date(2025, 1, 1), -1, W)


def test_days_in_uncovered_years_are_reported():
    """Walking into 2027 reports the year as uncovered (weekday rule only)."""
    walk = add_days(calendar(), date(2026, 12, 28), 10, W)

    assert walk.uncovered_years == [2027]
    assert walk.end == date(2027, 1, 11)  # 12-29..31, Fri 1-1 (no holiday data), 1-4..1-8, 1-11


def test_calendar_days_into_an_uncovered_year_are_reported():
    """CALENDAR counting into 2027 is reported as uncovered too."""
    assert add_days(calendar(), date(2026, 12, 25), 10, C).uncovered_years == [2027]


# ------------------------------------------------------------------ count_days


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        (date(2025, 1, 27), date(2025, 2, 10), 5),  # 1-27, 2-5, 2-6, 2-7, Sat 2-8
        (date(2025, 9, 29), date(2025, 10, 13), 5),  # 9-29, 9-30, 10-9, 10-10, Sat 10-11
        (date(2026, 2, 14), date(2026, 3, 1), 6),  # Sat 2-14, 2-24..2-27, Sat 2-28
        (date(2026, 9, 20), date(2026, 10, 11), 11),  # Sun 9-20, 9-21..24, 9-28..30, 10-8, 10-9, Sat 10-10
    ],
    ids=["2025-spring", "2025-national", "2026-spring", "2026-national"],
)
def test_count_days_counts_working_days_in_a_half_open_interval(start, end, expected):
    """count_days counts [start, end) working days, holidays out and 调休 days in."""
    n = count_days(calendar(), start, end, W)

    assert n == sum(1 for d in _days(start.isoformat(), (end - timedelta(days=1)).isoformat())
                    if calendar().is_working_day(d))
    assert n == expected


def test_count_days_is_zero_for_an_empty_interval():
    """An end on or before the start counts nothing."""
    assert count_days(calendar(), date(2025, 3, 3), date(2025, 3, 3), W) == 0
    assert count_days(calendar(), date(2025, 3, 3), date(2025, 3, 1), C) == 0


def test_count_days_by_calendar_is_the_date_difference():
    """CALENDAR count_days is end - start."""
    assert count_days(calendar(), date(2025, 1, 27), date(2025, 2, 10), C) == 14


def test_count_days_inverts_add_days():
    """Counting the working days of an add_days walk gives back the days added."""
    start = date(2025, 9, 26)
    end = add_days(calendar(), start, 10, W).end

    assert count_days(calendar(), start + timedelta(days=1), end + timedelta(days=1), W) == 10


# ------------------------------------------------------------------ instants


def test_end_of_day_is_midnight_shanghai_as_1600_utc():
    """A due date expires at 24:00 Asia/Shanghai, i.e. 16:00 UTC of the same date."""
    at = end_of_day(date(2025, 10, 16))

    assert at == datetime(2025, 10, 16, 16, 0, tzinfo=UTC)
    assert at.utcoffset() == timedelta(0)


def test_local_date_uses_shanghai_time():
    """16:00 UTC is already the next day in Shanghai; naive datetimes are refused."""
    assert local_date(datetime(2025, 3, 3, 15, 59, tzinfo=UTC)) == date(2025, 3, 3)
    assert local_date(datetime(2025, 3, 3, 16, 0, tzinfo=UTC)) == date(2025, 3, 4)
    with pytest.raises(ValueError):
        local_date(datetime(2025, 3, 3, 12, 0))


# ------------------------------------------------------------------ compute_deadline explanations


def test_computed_deadline_explains_holidays_workdays_and_calendar_version():
    """A due date across the 2025 Spring Festival explains what it skipped and counted."""
    dl = compute_deadline(_req(date(2025, 1, 24), 3), calendar())

    assert dl.due_date == date(2025, 2, 5)
    assert dl.due_at == datetime(2025, 2, 5, 16, 0, tzinfo=UTC)
    e = dl.explanation
    assert e.holidays_skipped == _days("2025-01-28", "2025-02-04")
    assert e.adjusted_workdays_counted == [date(2025, 1, 26)]
    assert e.weekend_days_skipped == 1
    assert (e.days, e.count, e.start) == (3, W, date(2025, 1, 24))
    assert e.calendar_version == VERSION
    assert dl.count is W


def test_explain_names_every_skipped_holiday_and_adjusted_workday():
    """The English explanation lists the skipped holidays, 调休 days and the calendar version."""
    text = explain(compute_deadline(_req(date(2025, 9, 26), 10), calendar()))

    assert text.startswith("Due 2025-10-16 (end of day, Asia/Shanghai): 10 WORKING days after 2025-09-26.")
    assert "2025-10-01" in text and "2025-10-08" in text
    assert "Adjusted workdays counted (调休): 2025-09-28, 2025-10-11." in text
    assert "Weekend days skipped: 2." in text
    assert f"Calendar {VERSION}." in text


def test_fixed_date_deadline_keeps_the_date_and_has_no_day_count():
    """A plan date is taken as is; the explanation says so."""
    dl = compute_deadline(_req(date(2025, 3, 3), fixed_date=date(2025, 6, 30)), calendar())

    assert dl.due_date == date(2025, 6, 30)
    assert dl.count is None
    assert dl.explanation.rule == "fixed date 2025-06-30"


def test_deadline_beyond_calendar_coverage_is_provisional():
    """A due date counted through 2027 says the year is not covered and the result provisional."""
    dl = compute_deadline(_req(date(2027, 1, 4), 10), calendar())

    assert dl.due_date == date(2027, 1, 18)
    assert dl.explanation.calendar_version.startswith(VERSION)
    assert "2027" in dl.explanation.calendar_version
    assert "provisional" in dl.explanation.calendar_version


def test_deadline_within_coverage_is_not_provisional():
    """Inside the covered years the version is just the calendar version."""
    dl = compute_deadline(_req(date(2026, 12, 1), 10), calendar())

    assert dl.explanation.calendar_version == VERSION


def test_escalation_schedule_counts_rung_delays_in_working_days_from_the_due_date():
    """Canonical ladder over the 2025 National Day: rungs fire at due + 0, 5, 10 … working days."""
    dl = compute_deadline(
        _req(date(2025, 9, 1), fixed_date=date(2025, 9, 26), ladder=CANONICAL_LADDER.rungs), calendar()
    )

    fire = {r.rung: r.fire_date for r in dl.escalation_schedule}
    assert [r.rung for r in dl.escalation_schedule] == list(RUNG_ORDER)
    assert fire[Rung.NOTICE_LETTER] == date(2025, 9, 26)
    assert fire[Rung.WARNING] == date(2025, 10, 10)  # 9-28, 9-29, 9-30, 10-9, 10-10
    assert fire[Rung.CIRCULAR] == date(2025, 10, 16)  # 10-11, 10-13, 10-14, 10-15, 10-16
    assert all(r.fire_at == end_of_day(r.fire_date) for r in dl.escalation_schedule)


def test_suspension_recalculation_adds_the_excluded_working_days():
    """base_due_date + working days in [exclude_from, exclude_until) → new due date."""
    req = _req(date(2025, 2, 10), base_due_date=date(2025, 3, 3), exclude_from=date(2025, 1, 27),
               exclude_until=date(2025, 2, 10), count=W)

    dl = compute_deadline(req, calendar())

    assert dl.explanation.excluded_days == 5  # 1-27, 2-5, 2-6, 2-7, Sat 2-8
    assert dl.due_date == date(2025, 3, 10)
    assert "suspended" in dl.explanation.rule


def test_deadline_request_needs_a_rule():
    """A request with neither fixed_date, days nor base_due_date is an error."""
    with pytest.raises(ValueError):
        compute_deadline(_req(date(2025, 3, 3)), calendar())


def test_suspension_recalculation_needs_both_exclusion_bounds():
    """base_due_date without exclude_from/exclude_until is an error."""
    with pytest.raises(ValueError):
        compute_deadline(_req(date(2025, 3, 3), base_due_date=date(2025, 6, 30)), calendar())


def test_overdue_rectifying_deadline_counts_its_ladder_from_the_day_it_is_set():
    """With rebase_overdue_ladder a past due date keeps its date but the ladder starts at `start`."""
    req = _req(date(2025, 3, 3), fixed_date=date(2024, 12, 31), ladder=CANONICAL_LADDER.rungs,
               rebase_overdue_ladder=True)

    dl = compute_deadline(req, calendar())

    assert dl.due_date == date(2024, 12, 31)
    assert dl.explanation.ladder_base == date(2025, 3, 3)
    assert "already overdue" in dl.explanation.rule
    assert dl.escalation_schedule[0].fire_date == date(2025, 3, 3)
    assert dl.escalation_schedule[1].fire_date == date(2025, 3, 10)


def test_overdue_deadline_without_rebase_counts_the_ladder_from_the_due_date():
    """Without rebasing, the ladder of a past due date lies in the past."""
    req = _req(date(2025, 3, 3), fixed_date=date(2024, 12, 31), ladder=CANONICAL_LADDER.rungs)

    dl = compute_deadline(req, calendar())

    assert dl.explanation.ladder_base == date(2024, 12, 31)
    assert dl.escalation_schedule[0].fire_date == date(2024, 12, 31)


# ------------------------------------------------------------------ override file


def _override(tmp_path: Path, years: dict) -> Path:
    p = tmp_path / "calendar_override.json"
    p.write_text(json.dumps({"years": years}), encoding="utf-8")
    return p


def test_override_file_adds_a_year_and_is_named_in_the_version(tmp_path: Path):
    """A 2027 override extends coverage and the version mentions the overrides (with their hash)."""
    path = _override(tmp_path, {"2027": {
        "holidays": [d.isoformat() for d in _days("2027-02-06", "2027-02-12")],
        "workdays": ["2027-02-14"],  # a Sunday worked
    }})

    cal = load_calendar(path)

    assert cal.last_year == 2027 and cal.covers(date(2027, 6, 1))
    assert cal.version.startswith(VERSION) and "overrides" in cal.version and "sha256:" in cal.version
    assert date(2027, 2, 8) in cal.holidays and date(2027, 2, 14) in cal.workdays
    assert date(2025, 10, 1) in cal.holidays  # package years are kept


def test_override_holidays_change_due_dates_and_remove_provisional_status(tmp_path: Path):
    """Fri 2027-02-05 + 3 working days with the override: 2-6..2-12 off, Sun 2-14 on → Tue 2-16."""
    path = _override(tmp_path, {"2027": {
        "holidays": [d.isoformat() for d in _days("2027-02-06", "2027-02-12")],
        "workdays": ["2027-02-14"],
    }})
    cal = load_calendar(path)

    dl = compute_deadline(_req(date(2027, 2, 5), 3), cal)

    assert dl.due_date == date(2027, 2, 16)  # Sun 2-14, Mon 2-15, Tue 2-16
    assert dl.explanation.adjusted_workdays_counted == [date(2027, 2, 14)]
    assert dl.explanation.holidays_skipped == _days("2027-02-06", "2027-02-12")
    assert "provisional" not in dl.explanation.calendar_version
    assert dl.explanation.calendar_version == cal.version


def test_override_of_a_covered_year_replaces_that_years_package_data(tmp_path: Path):
    """An override year replaces the package's holidays and workdays for that year only."""
    path = _override(tmp_path, {"2026": {"holidays": ["2026-10-01"], "workdays": []}})

    cal = load_calendar(path)

    assert date(2026, 10, 1) in cal.holidays
    assert date(2026, 10, 2) not in cal.holidays
    assert date(2026, 10, 10) not in cal.workdays
    assert date(2025, 10, 2) in cal.holidays


def test_override_listing_a_date_of_another_year_is_refused(tmp_path: Path):
    """A year entry may only list its own dates."""
    path = _override(tmp_path, {"2027": {"holidays": ["2028-01-01"]}})

    with pytest.raises(CalendarOverrideError, match="another year"):
        load_calendar(path)


def test_malformed_override_file_is_refused(tmp_path: Path):
    """An unparsable override file raises CalendarOverrideError naming the file."""
    path = tmp_path / "bad.json"
    path.write_text("{not json", encoding="utf-8")

    with pytest.raises(CalendarOverrideError, match="bad.json"):
        load_calendar(path)


def test_different_override_contents_give_different_versions(tmp_path: Path):
    """The version hash changes with the override content, so due dates say which data they used."""
    a = load_calendar(_override(tmp_path, {"2027": {"holidays": ["2027-01-01"]}}))
    b = load_calendar(_override(tmp_path, {"2027": {"holidays": ["2027-01-01", "2027-01-02"]}}))

    assert a.version != b.version


def test_calendar_is_plain_data():
    """A WorkingCalendar built by hand works without the package."""
    cal = WorkingCalendar(version="test", holidays={date(2030, 1, 1)}, workdays=set(), first_year=2030,
                          last_year=2030)

    assert add_days(cal, date(2029, 12, 31), 1, W).end == date(2030, 1, 2)
