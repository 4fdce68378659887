"""domain/shared_policy.py: equal policy snapshots share one frozen object (issue 15)."""

from __future__ import annotations

import gc

import pytest
from pydantic import ValidationError

from domain.policy import Policy
from domain.shared_policy import shared_count, shared_policy


def test_equal_snapshots_decoded_apart_become_one_object() -> None:
    raw = Policy(posting_days=9).model_dump_json()
    a, b = Policy.model_validate_json(raw), Policy.model_validate_json(raw)
    assert a is not b
    assert shared_policy(a) is a
    assert shared_policy(b) is a


def test_different_policies_stay_apart_and_are_dropped_when_no_case_holds_them() -> None:
    gc.collect()
    before = shared_count()
    a = shared_policy(Policy(posting_days=11))
    b = shared_policy(Policy(posting_days=12))
    assert a is not b and a.posting_days == 11 and b.posting_days == 12
    assert shared_count() == before + 2
    del a, b
    gc.collect()
    assert shared_count() == before


def test_a_shared_policy_cannot_be_changed_in_place() -> None:
    p = shared_policy(Policy())
    with pytest.raises(ValidationError, match="frozen"):
        p.posting_days = 3  # type: ignore[misc]
    assert p.model_copy(update={"posting_days": 3}).posting_days == 3  # a changed copy is a new object
