"""Parsing the Chinese text of a 整改时限 (domain.deadlines.parse_deadline) and spec consistency."""

from __future__ import annotations

from datetime import date

import pytest

from domain.deadlines import long_term_after_closure, parse_deadline, validate_spec
from domain.enums import DeadlineKind
from domain.errors import DeadlineParseError
from domain.model import DeadlineSpec


@pytest.mark.parametrize(
    ("raw", "kind", "due", "long_term"),
    [
        ("立行立改,持续推进", DeadlineKind.IMMEDIATE_AND_ONGOING, None, False),
        ("立即整改,长期坚持", DeadlineKind.IMMEDIATE_AND_LONG_TERM, None, True),
        ("持续推进", DeadlineKind.ONGOING, None, False),
        ("2022年12月31日", DeadlineKind.DATE, date(2022, 12, 31), False),
        ("2021年12月31日(长期坚持、防止反弹)", DeadlineKind.DATE_THEN_LONG_TERM, date(2021, 12, 31), True),
        ("2022年12月31日,并长期坚持", DeadlineKind.DATE_THEN_LONG_TERM, date(2022, 12, 31), True),
        ("2022年9月", DeadlineKind.MONTH, date(2022, 9, 30), False),
        ("2022年底前", DeadlineKind.DATE, date(2022, 12, 31), False),
        ("2023年6月底前", DeadlineKind.MONTH, date(2023, 6, 30), False),
        ("2024年2月", DeadlineKind.MONTH, date(2024, 2, 29), False),
        ("2023年2月", DeadlineKind.MONTH, date(2023, 2, 28), False),
        ("2022-12-31", DeadlineKind.DATE, date(2022, 12, 31), False),
        ("  2022 年 3 月 1 日  ", DeadlineKind.DATE, date(2022, 3, 1), False),
        ("长期坚持", DeadlineKind.IMMEDIATE_AND_LONG_TERM, None, True),
        ("即交即办", DeadlineKind.IMMEDIATE_AND_ONGOING, None, False),
    ],
)
def test_known_deadline_forms_parse(raw: str, kind: DeadlineKind, due: date | None, long_term: bool):
    """Each documented form of 整改时限 parses to its kind, due date and long-term flag."""
    spec = parse_deadline(raw)

    assert (spec.kind, spec.due_date, spec.long_term) == (kind, due, long_term)
    assert spec.raw_zh == raw.strip()
    validate_spec(spec)


@pytest.mark.parametrize("raw", ["尽快完成", "按要求", "xyz", "2022", ""])
def test_unknown_deadline_text_is_refused(raw: str):
    """Text matching no known form raises DeadlineParseError."""
    with pytest.raises(DeadlineParseError):
        parse_deadline(raw)


@pytest.mark.parametrize("raw", ["2022年2月30日", "2022年13月", "2021年2月29日", "2022-02-30"])
def test_impossible_dates_are_refused(raw: str):
    """A date that does not exist raises DeadlineParseError, not ValueError."""
    with pytest.raises(DeadlineParseError):
        parse_deadline(raw)


def test_none_is_refused_as_empty():
    """A missing deadline text is refused as empty."""
    with pytest.raises(DeadlineParseError, match="empty"):
        parse_deadline(None)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("spec", "ok"),
    [
        (DeadlineSpec(kind=DeadlineKind.DATE, due_date=date(2022, 12, 31)), True),
        (DeadlineSpec(kind=DeadlineKind.DATE), False),
        (DeadlineSpec(kind=DeadlineKind.MONTH), False),
        (DeadlineSpec(kind=DeadlineKind.DATE_THEN_LONG_TERM), False),
        (DeadlineSpec(kind=DeadlineKind.ONGOING), True),
        (DeadlineSpec(kind=DeadlineKind.ONGOING, due_date=date(2022, 12, 31)), False),
        (DeadlineSpec(kind=DeadlineKind.IMMEDIATE_AND_ONGOING, due_date=date(2022, 12, 31)), False),
    ],
)
def test_validate_spec_checks_the_due_date_against_the_kind(spec: DeadlineSpec, ok: bool):
    """Dated kinds need a due date; undated kinds take none."""
    if ok:
        validate_spec(spec)
    else:
        with pytest.raises(DeadlineParseError):
            validate_spec(spec)


@pytest.mark.parametrize(
    ("raw", "long_term"),
    [
        ("2021年12月31日(长期坚持、防止反弹)", True),
        ("立即整改,长期坚持", True),
        ("2022年12月31日", False),
        ("立行立改,持续推进", False),
        ("持续推进", False),
    ],
)
def test_long_term_deadlines_lead_to_long_term_maintenance(raw: str, long_term: bool):
    """long_term_after_closure is true exactly for the 长期坚持 forms."""
    assert long_term_after_closure(parse_deadline(raw)) is long_term


def test_no_deadline_is_not_long_term():
    """A case without a deadline closes normally."""
    assert long_term_after_closure(None) is False
