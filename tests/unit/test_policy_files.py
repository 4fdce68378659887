"""The policy and calendar files shipped in deploy/ load, and bad files are refused by name."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from activities.calendar_source import CalendarOverrideError, load_calendar
from activities.policy_source import PolicyFileError, load_policy
from domain.policy import DEFAULT_POLICY

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def test_the_example_policy_file_is_the_default_policy():
    """deploy/policy.example.json stays in step with the built-in defaults."""
    assert load_policy(DEPLOY / "policy.example.json") == DEFAULT_POLICY


def test_a_policy_file_overrides_only_what_it_names(tmp_path: Path):
    """Missing keys take their defaults; the posting length is changed."""
    p = tmp_path / "policy.json"
    p.write_text(json.dumps({"version": "county-2027", "posting_days": 5}))
    policy = load_policy(p)
    assert (policy.version, policy.posting_days) == ("county-2027", 5)
    assert policy.ladders == DEFAULT_POLICY.ladders


@pytest.mark.parametrize("content", ["{not json", json.dumps({"posting_days": 0})])
def test_a_bad_policy_file_is_refused_with_its_path(tmp_path: Path, content: str):
    """Malformed JSON or an out-of-range value names the file."""
    p = tmp_path / "policy.json"
    p.write_text(content)
    with pytest.raises(PolicyFileError, match="policy.json"):
        load_policy(p)


def test_a_missing_policy_file_is_refused():
    """A POLICY_FILE that does not exist is an error, not silently the defaults."""
    with pytest.raises(PolicyFileError, match="does not exist"):
        load_policy("/nonexistent/policy.json")


def test_the_shipped_calendar_override_file_loads():
    """deploy/calendar_overrides.json is valid (and empty: the package covers through 2026)."""
    cal = load_calendar(DEPLOY / "calendar_overrides.json")
    assert cal.last_year >= 2026 and "overrides" not in cal.version


def test_an_override_with_a_date_of_another_year_is_refused(tmp_path: Path):
    """A 2027 entry listing a 2026 date is a typo and is refused."""
    p = tmp_path / "cal.json"
    p.write_text(json.dumps({"years": {"2027": {"holidays": ["2026-10-01"]}}}))
    with pytest.raises(CalendarOverrideError, match="another year"):
        load_calendar(p)
