"""Property-based tests: random actions by random actors with random clock jumps (issue 11).

See tests/property/invariants.py for the invariants checked after every step.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime

import pytest
from hypothesis import event, given
from hypothesis import strategies as st

from activities.calendar_source import load_calendar
from domain.enums import Role, Stage
from domain.model import Actor
from tests.property.invariants import UNITS, Walk, actors, draw_case, draw_step, make_filing

CALENDAR = load_calendar(None)
START = datetime(2025, 3, 3, 2, 0, tzinfo=UTC)
MAX_STEPS = 40
pytestmark = pytest.mark.timeout(3600 if os.environ.get("FAULTS") == "long" else 300)


@given(st.data())
def test_random_action_sequences_keep_every_invariant(data: st.DataObject) -> None:
    kind, policy, long_term = data.draw(st.composite(lambda draw: draw_case(draw))(), label="case")
    filing = make_filing(kind, long_term, "P-1", START, data.draw(st.integers(-30, 400), label="plan due in days"))
    office = Actor(user_id="office", role=Role.RECTIFICATION_OFFICE, unit=policy.office_unit)
    walk = Walk.start(filing, policy, START, office, CALENDAR)
    cast = actors(UNITS, policy)
    n = data.draw(st.integers(1, MAX_STEPS), label="steps")
    for i in range(n):
        if walk.state.stage is Stage.ARCHIVED:
            break
        step = data.draw(st.composite(lambda draw: draw_step(draw, walk.state, cast, walk.now))(), label=f"step {i}")
        walk.apply(step)
        if i % 10 == 0:
            walk.check_round_trip()
    walk.check_round_trip()
    event(f"reached {max(walk.stages, key=list(Stage).index)}")
    event(f"{'some' if walk.refused else 'no'} refusals")
