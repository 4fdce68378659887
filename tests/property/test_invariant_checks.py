"""The invariant checks of the property tests catch what they claim to (each fed a violation)."""

from __future__ import annotations

import pytest

from domain.enums import Action, Role, Stage
from domain.model import Actor
from tests.property.invariants import Walk, independently_authorised
from tests.unit.factories import NOW, OFFICE, RU, calendar, drive_to, make_filing, new_case


def _walk(stage: Stage) -> Walk:
    state, now = drive_to(stage)
    return Walk(state, [], now, calendar())


def test_authority_is_restated_independently() -> None:
    state, _ = drive_to(Stage.TRANSFERRED)
    assert independently_authorised(state, RU, Action.ACKNOWLEDGE)
    assert not independently_authorised(state, Actor(user_id="x", role=Role.RESPONSIBLE_UNIT, unit="无关单位"),
                                        Action.ACKNOWLEDGE)
    assert not independently_authorised(state, Actor(user_id="a", role=Role.AUDITOR, unit="审计组"), Action.ACKNOWLEDGE)
    assert not independently_authorised(state, OFFICE, Action.ACKNOWLEDGE)


def test_a_closure_that_skipped_the_posting_is_caught() -> None:
    walk = _walk(Stage.CLOSED)
    walk.stages = [Stage.REGISTERED, Stage.TRANSFERRED, Stage.RECTIFYING, Stage.PRELIM_REVIEW,
                   Stage.CLOSURE_APPLICATION, Stage.VERIFICATION, Stage.FILING, Stage.CLOSED]
    with pytest.raises(AssertionError, match="初审、公示、申请、核查、备案"):
        walk.check_closure(walk.state)
    walk.stages.insert(4, Stage.PUBLIC_POSTING)
    walk.check_closure(walk.state)  # the real path passes


def test_an_unrecorded_de_escalation_and_a_ledger_gap_are_caught() -> None:
    walk = _walk(Stage.RECTIFYING)
    higher = walk.state.model_copy(deep=True)
    higher.escalation.level = 3
    with pytest.raises(AssertionError, match="unrecorded"):
        walk.check_escalation(higher, walk.state, [])
    d = new_case(make_filing(), walk.state.policy, NOW, OFFICE)
    gap = Walk(d.state, d.entries, NOW, calendar())
    gap.ledger[0] = gap.ledger[0].model_copy(update={"seq": 2})
    with pytest.raises(AssertionError, match="gap"):
        gap.check_ledger()
