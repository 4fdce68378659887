"""The leadership-statistics rules (domain/statistics.py): the traffic light 红黄绿灯 on the real
working-day calendar (holidays, 调休, weekends, due today, no deadline, closed), counties,
periods and completion rates."""

from __future__ import annotations

from datetime import date

import pytest

from domain.calendar import WorkingCalendar
from domain.enums import Stage
from domain.statistics import (
    CITY_LEVEL,
    Light,
    LightRule,
    PeriodKind,
    counties_of,
    county_of,
    current_period,
    light_for,
    parse_period,
    rate,
    working_days_left,
)
from tests.unit.factories import calendar

CAL = calendar()
R = Stage.RECTIFYING
FIVE = LightRule(5)


def test_overdue_is_red_from_the_day_after_the_due_date() -> None:
    assert light_for(R, date(2026, 11, 30), date(2026, 12, 1), CAL, FIVE) is Light.RED
    assert light_for(R, date(2025, 1, 1), date(2026, 12, 1), CAL, FIVE) is Light.RED
    # Any active stage with its own deadline (初审 here) is lit the same way.
    assert light_for(Stage.PRELIM_REVIEW, date(2026, 11, 30), date(2026, 12, 1), CAL, FIVE) is Light.RED


def test_due_today_is_yellow_not_red() -> None:
    """A due date expires at the end of its day (Asia/Shanghai): today is still in time."""
    assert light_for(R, date(2026, 12, 1), date(2026, 12, 1), CAL, FIVE) is Light.YELLOW
    assert light_for(R, date(2026, 12, 1), date(2026, 12, 1), CAL, LightRule(0)) is Light.YELLOW


def test_holidays_are_not_counted_national_day_2026() -> None:
    """From Wed 30 Sep 2026 to Fri 9 Oct: 9 calendar days, 7 weekdays, but only 2 working days
    (1–7 Oct are holidays), so the case is yellow; counted by weekdays it would be green."""
    today, due = date(2026, 9, 30), date(2026, 10, 9)
    assert working_days_left(CAL, today, due) == 2
    assert light_for(R, due, today, CAL, FIVE) is Light.YELLOW
    weekdays_only = WorkingCalendar(version="weekdays", first_year=2000, last_year=2100)
    assert working_days_left(weekdays_only, today, due) == 7
    assert light_for(R, due, today, weekdays_only, FIVE) is Light.GREEN


def test_an_adjusted_workday_counts() -> None:
    """Sun 20 Sep 2026 is a working day (调休 for National Day): Fri 18 → Tue 22 is 3 working days."""
    today, due = date(2026, 9, 18), date(2026, 9, 22)
    assert working_days_left(CAL, today, due) == 3
    assert light_for(R, due, today, CAL, LightRule(2)) is Light.GREEN
    assert light_for(R, due, today, CAL, LightRule(3)) is Light.YELLOW


def test_weekends_are_skipped_and_a_due_date_on_a_weekend_counts_the_days_before_it() -> None:
    fri = date(2026, 10, 16)
    assert working_days_left(CAL, fri, date(2026, 10, 18)) == 0  # due Sunday: nothing left to work
    assert light_for(R, date(2026, 10, 18), fri, CAL, LightRule(0)) is Light.YELLOW
    assert working_days_left(CAL, fri, date(2026, 10, 19)) == 1  # due Monday
    assert light_for(R, date(2026, 10, 19), fri, CAL, LightRule(0)) is Light.GREEN
    assert light_for(R, date(2026, 10, 19), fri, CAL, LightRule(1)) is Light.YELLOW


def test_exactly_n_working_days_is_yellow_one_more_is_green() -> None:
    mon = date(2026, 11, 16)
    assert working_days_left(CAL, mon, date(2026, 11, 23)) == 5  # Tue..Fri + Mon
    assert light_for(R, date(2026, 11, 23), mon, CAL, FIVE) is Light.YELLOW
    assert light_for(R, date(2026, 11, 24), mon, CAL, FIVE) is Light.GREEN


def test_no_deadline_is_its_own_status() -> None:
    """立行立改 / 持续推进 (no timer), or a case not transferred yet: grey, never green."""
    assert light_for(R, None, date(2026, 12, 1), CAL, FIVE) is Light.NO_DEADLINE
    assert light_for(Stage.REGISTERED, None, date(2026, 12, 1), CAL, FIVE) is Light.NO_DEADLINE


@pytest.mark.parametrize("stage", [Stage.CLOSED, Stage.ARCHIVED, Stage.LONG_TERM_MAINTENANCE])
def test_closed_cases_have_no_light_even_with_a_past_due_date(stage: Stage) -> None:
    assert light_for(stage, date(2020, 1, 1), date(2026, 12, 1), CAL, FIVE) is Light.DONE
    assert light_for(stage.value, None, date(2026, 12, 1), CAL, FIVE) is Light.DONE


def test_bad_rule_and_stage_are_refused_by_name() -> None:
    with pytest.raises(ValueError, match="yellow_working_days"):
        LightRule(-1)
    with pytest.raises(ValueError, match="yellow_working_days"):
        LightRule(61)
    with pytest.raises(ValueError, match="unknown stage 'NOPE'"):
        light_for("NOPE", None, date(2026, 12, 1), CAL, FIVE)


def test_counties_from_unit_names_and_the_configured_list() -> None:
    assert county_of("蓝山县委、县政府") == "蓝山县"
    assert county_of("雨花区人民政府") == "雨花区"
    assert county_of("xx县委、县政府") == "xx县"
    for city_level in ("市发改委", "市委", "各县市区党委、政府", "各相关县市区党委、政府", "区生态环境分局", "县环保局",
                       "产业新城指挥部", ""):
        assert county_of(city_level) is None, city_level
    # A county-level city is told from the city only by the configured list.
    assert county_of("祁阳市委、市政府") is None
    assert county_of("祁阳市委、市政府", ["祁阳市", "蓝山县"]) == "祁阳市"
    assert county_of("蓝山县委", ["祁阳市", "蓝山县"]) == "蓝山县"
    assert county_of("蓝山生态环境分局", ["蓝山县"]) == "蓝山县"  # the short name counts too
    assert counties_of(["市发改委", "蓝山县委、县政府", "宁远县政府"]) == ["蓝山县", "宁远县"]
    assert counties_of(["市发改委", "各县市区党委、政府"]) == [CITY_LEVEL]
    assert counties_of(["县环保局"], jurisdiction="道县") == ["道县"]
    assert counties_of([], jurisdiction="xx市 (city name masked in seed)") == [CITY_LEVEL]


def test_periods_half_years_and_years() -> None:
    h1, h2, y = parse_period("2026-H1"), parse_period("2026-h2"), parse_period(" 2026 ")
    assert (h1.kind, h1.start, h1.end) == (PeriodKind.H1, date(2026, 1, 1), date(2026, 6, 30))
    assert (h2.kind, h2.start, h2.end) == (PeriodKind.H2, date(2026, 7, 1), date(2026, 12, 31))
    assert (y.kind, y.start, y.end, y.key) == (PeriodKind.YEAR, date(2026, 1, 1), date(2026, 12, 31), "2026")
    assert h1.months()[0] == "2026-01" and h1.months()[-1] == "2026-06" and len(y.months()) == 12
    assert "6月底" in h1.label_zh and "12月底" in h2.label_zh
    assert current_period(date(2026, 6, 30)).key == "2026-H1"
    assert current_period(date(2026, 7, 1)).key == "2026-H2"
    for bad in ("2026-H3", "26", "2026-Q1", "1999"):
        with pytest.raises(ValueError, match="YYYY-H1"):
            parse_period(bad)


def test_completion_rate() -> None:
    assert rate(0, 0) is None
    assert rate(1, 3) == 33.3
    assert rate(3, 3) == 100.0


def test_a_fanned_out_parent_is_not_counted_its_children_are() -> None:
    from admin.statistics import counted

    assert not counted({"case_no": "FB-02", "is_parent": True})
    assert counted({"case_no": "FB-02.1", "is_parent": False, "parent_case_no": "FB-02"})
    assert counted({"case_no": "FB-03"})  # a row without the marker (no fan-out) counts
