"""Monthly dispatch (domain/dispatch.py): periods in Asia/Shanghai, per-unit figures, notices, access."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from activities.calendar_source import load_calendar
from domain.dispatch import (
    NO_UNIT,
    CaseSnapshot,
    DispatchError,
    Flag,
    Period,
    check_day_of_month,
    check_programme_id,
    check_runnable,
    compile_dispatch,
    dispatch_access,
    dispatch_workflow_id,
    notice_key,
    only_units,
    parse_period,
    period_of,
    periods_between,
    unit_notice,
)
from domain.enums import DeadlineKind, Role, Stage
from domain.visibility import HomeUnits, Reader

CAL = load_calendar(None)
A, B = "蓝山县人民政府", "宁远县人民政府"
HOME = HomeUnits(office="整改办", discipline="纪委监委")


def utc(*a: int) -> datetime:
    return datetime(*a, tzinfo=UTC)


def snap(no: str, stage: Stage = Stage.RECTIFYING, units: tuple[str, ...] = (A,), **kw) -> CaseSnapshot:  # type: ignore[no-untyped-def]
    return CaseSnapshot(case_no=no, title=f"案件{no}", stage=stage, responsible_units=list(units), **kw)


# ------------------------------------------------------------------ periods


def test_a_period_is_a_month_in_asia_shanghai() -> None:
    # 2026-03-31 16:00 UTC is 2026-04-01 00:00 in Beijing: already April.
    assert str(period_of(utc(2026, 3, 31, 16, 0))) == "2026-04"
    assert str(period_of(utc(2026, 3, 31, 15, 59, 59))) == "2026-03"
    p = parse_period("2026-02")
    assert p.first_day == date(2026, 2, 1) and p.last_day == date(2026, 2, 28)
    assert p.start_at.astimezone(UTC) == utc(2026, 1, 31, 16, 0)
    assert p.end_at.astimezone(UTC) == utc(2026, 2, 28, 16, 0)
    assert parse_period("2028-02").last_day == date(2028, 2, 29)
    assert str(Period(2026, 12).next()) == "2027-01" and str(Period(2026, 1).prev()) == "2025-12"
    assert [str(x) for x in periods_between(Period(2025, 11), Period(2026, 2))] == \
        ["2025-11", "2025-12", "2026-01", "2026-02"]


@pytest.mark.parametrize("bad", ["2026-13", "2026-00", "26-03", "2026-3", "2026-03-01", "", "２０２６-03", "1999-12"])
def test_a_bad_period_is_refused_by_name(bad: str) -> None:
    with pytest.raises(DispatchError, match="period"):
        parse_period(bad)


def test_a_future_month_is_not_dispatched() -> None:
    now = utc(2026, 5, 10)
    check_runnable(parse_period("2026-05"), now)
    check_runnable(parse_period("2025-05"), now)
    with pytest.raises(DispatchError, match="has not begun"):
        check_runnable(parse_period("2026-06"), now)


def test_names_and_input_checks() -> None:
    assert dispatch_workflow_id("P-2026", parse_period("2026-03")) == "dispatch-P-2026-2026-03"
    assert notice_key("P-2026", "2026-03", A) == f"dispatch:P-2026:2026-03:{A}"
    assert check_day_of_month(28) == 28
    for bad in (0, 29, 31, True, "5"):
        with pytest.raises(DispatchError, match="day of month"):
            check_day_of_month(bad)  # type: ignore[arg-type]
    for bad in ("", " P", "P\x00", "a\nb", "x" * 129):
        with pytest.raises(DispatchError, match="programme id"):
            check_programme_id(bad)


# ------------------------------------------------------------------ figures


def test_a_case_closed_on_the_last_day_of_the_month_counts_in_that_month() -> None:
    # 2026-03-31 23:30 Beijing = 15:30 UTC: closed in March, not April.
    closed = utc(2026, 3, 31, 15, 30)
    c = snap("C1", Stage.CLOSED, closed_at=closed)
    march = compile_dispatch("P", parse_period("2026-03"), utc(2026, 4, 1, 1), [c], CAL)
    april = compile_dispatch("P", parse_period("2026-04"), utc(2026, 4, 25, 1), [c], CAL)
    assert march.units[0].closed_this_month == 1 and march.units[0].cases[0].flags == [Flag.CLOSED_THIS_MONTH]
    assert april.units[0].closed_this_month == 0 and april.units[0].cases == []
    assert april.units[0].total == 1 and april.units[0].by_stage == {"CLOSED": 1}
    # ... and one closed a minute after Beijing midnight is April's.
    c2 = snap("C2", Stage.LONG_TERM_MAINTENANCE, closed_at=utc(2026, 3, 31, 16, 1), reports_this_month=1)
    assert compile_dispatch("P", parse_period("2026-04"), utc(2026, 4, 25), [c2], CAL).totals.closed_this_month == 1
    assert compile_dispatch("P", parse_period("2026-03"), utc(2026, 4, 1, 1), [c2], CAL).totals.closed_this_month == 0


def test_due_this_month_overdue_and_working_days_late() -> None:
    p = parse_period("2026-04")
    as_of = utc(2026, 4, 25, 1)  # Saturday 25 April 09:00 Beijing
    cases = [
        snap("D1", due_date=date(2026, 4, 30), reports_this_month=1),  # due later this month
        snap("D2", due_date=date(2026, 4, 1), reports_this_month=1),  # due this month and overdue
        snap("D3", due_date=date(2026, 3, 31), reports_this_month=1),  # overdue since last month
        snap("D4", due_date=date(2026, 4, 24), reports_this_month=1),  # due yesterday (Friday): overdue
        snap("D5", due_date=date(2026, 4, 25), reports_this_month=1),  # due today: not yet overdue
        snap("D6", due_date=date(2026, 5, 1), reports_this_month=1),  # next month
    ]
    f = compile_dispatch("P", p, as_of, cases, CAL)
    u = f.units[0]
    flags = {c.case_no: set(c.flags) for c in u.cases}
    assert flags["D1"] == {Flag.DUE_THIS_MONTH}
    assert flags["D2"] == {Flag.DUE_THIS_MONTH, Flag.OVERDUE}
    assert flags["D3"] == {Flag.OVERDUE}
    assert flags["D4"] == {Flag.DUE_THIS_MONTH, Flag.OVERDUE}
    assert flags["D5"] == {Flag.DUE_THIS_MONTH}
    assert flags["D6"] == set()
    assert (u.due_this_month, u.overdue, u.open) == (4, 3, 6)
    late = {c.case_no: c.overdue_working_days for c in u.cases}
    assert late["D4"] == 0  # the day after was a Saturday: no working day late yet
    assert late["D3"] == CAL_WORKING_DAYS(date(2026, 4, 1), date(2026, 4, 25))


def CAL_WORKING_DAYS(first: date, last: date) -> int:  # noqa: N802 - a helper named like a table
    return sum(CAL.is_working_day(first + timedelta(days=i)) for i in range((last - first).days + 1))


def test_items_without_a_timer_escalated_and_missing_reports() -> None:
    p = parse_period("2026-04")
    cases = [
        snap("N1", deadline_kind=DeadlineKind.ONGOING.value),
        snap("N2", deadline_kind=DeadlineKind.IMMEDIATE_AND_ONGOING.value, reports_this_month=2),
        snap("N3", deadline_kind=DeadlineKind.DATE.value, due_date=date(2026, 12, 31), escalation_level=2,
             reports_this_month=1),
        snap("N4", Stage.PRELIM_REVIEW, deadline_kind=DeadlineKind.ONGOING.value, due_date=date(2026, 5, 8)),
    ]
    u = compile_dispatch("P", p, utc(2026, 4, 20), cases, CAL).units[0]
    flags = {c.case_no: set(c.flags) for c in u.cases}
    assert flags["N1"] == {Flag.NO_TIMER, Flag.NO_REPORT}
    assert flags["N2"] == {Flag.NO_TIMER}
    assert flags["N3"] == {Flag.ESCALATED}
    assert flags["N4"] == set()  # in review: it has a timer and the unit does not report now
    assert (u.no_timer, u.escalated, u.no_report) == (2, 1, 1)


def test_a_case_of_two_units_is_on_both_lists_and_counted_once_in_cases() -> None:
    cases = [snap("X1", units=(A, B), due_date=date(2026, 4, 3), reports_this_month=1), snap("X2", units=(B,)),
             snap("X3", units=())]
    f = compile_dispatch("P", parse_period("2026-04"), utc(2026, 4, 20), cases, CAL)
    assert [u.unit for u in f.units] == sorted([A, B, NO_UNIT])
    assert f.cases == 3 and f.totals.total == 4 and f.totals.overdue == 2
    mine = only_units(f, frozenset({A}))
    assert [u.unit for u in mine.units] == [A] and mine.totals.total == 1 and mine.cases == 1
    assert only_units(f, frozenset()).units == [] and only_units(f, None) is f


def test_each_unit_notice_has_its_own_key_and_only_its_cases() -> None:
    cases = [snap("X1", units=(A,), due_date=date(2026, 4, 3)), snap("X2", units=(B,))]
    f = compile_dispatch("P", parse_period("2026-04"), utc(2026, 4, 20), cases, CAL)
    by_unit = {u.unit: unit_notice(f, u) for u in f.units}
    (ka, sa, ba), (kb, _sb, bb) = by_unit[A], by_unit[B]
    assert ka == notice_key("P", "2026-04", A) and kb == notice_key("P", "2026-04", B)
    assert "X1" in ba and "X2" not in ba and "X2" in bb and "X1" not in bb
    assert "逾期 1" in sa and "逾期" in ba


def test_compile_is_deterministic_whatever_the_order_of_cases() -> None:
    cases = [snap(f"K{i}", units=(A if i % 2 else B,), due_date=date(2026, 4, 1 + i)) for i in range(9)]
    a = compile_dispatch("P", parse_period("2026-04"), utc(2026, 4, 20), cases, CAL)
    b = compile_dispatch("P", parse_period("2026-04"), utc(2026, 4, 20), list(reversed(cases)), CAL)
    assert a == b


# ------------------------------------------------------------------ who reads which rows


@pytest.mark.parametrize(("role", "unit", "units", "may_run"), [
    (Role.RECTIFICATION_OFFICE, "整改办", None, True),
    (Role.RECTIFICATION_OFFICE, "别的单位", frozenset(), False),  # the office reads only from its home unit
    (Role.SUPERVISION_OFFICE, "市委督查室", None, False),
    (Role.AUDITOR, "审计组", None, False),
    (Role.RESPONSIBLE_UNIT, A, frozenset({A}), False),
    (Role.LEAD_SUPERVISOR, "市生态环境局", frozenset(), False),
    (Role.PUBLIC, "", frozenset(), False),
    (Role.DISCIPLINE_COMMISSION, "纪委监委", frozenset(), False),
])
def test_dispatch_access_deny_by_default(role: Role, unit: str, units: frozenset[str] | None, may_run: bool) -> None:
    acc = dispatch_access(Reader(user_id="u", unit=unit, roles=(role,)), HOME)
    assert acc.units == units and acc.may_run is may_run
    assert acc.denied is (units == frozenset())


def test_a_reader_without_roles_sees_nothing() -> None:
    assert dispatch_access(Reader(user_id="u", unit=A, roles=()), HOME).denied
