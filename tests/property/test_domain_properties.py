"""Property-based tests: random actions by random actors with random clock jumps (issue 11).

See tests/property/invariants.py for the invariants checked after every step.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import event, given
from hypothesis import strategies as st

from activities.calendar_source import load_calendar
from domain.enums import CaseKind, DeadlineKind, Role, Stage
from domain.model import Actor, CaseFiling, DeadlineSpec, Measure
from tests.property.invariants import Walk, actors, draw_case, draw_step

CALENDAR = load_calendar(None)
START = datetime(2025, 3, 3, 2, 0, tzinfo=UTC)
UNITS = {"ru": ["市生态环境局", "市水利局"], "lead": ["市委办", "市政府办"], "assist": ["市发改委"]}
MAX_STEPS = 40


def _filing(kind: CaseKind, long_term: bool, n: int, due_days: int) -> CaseFiling:
    deadline = None
    if kind is not CaseKind.PETITION:
        due = (START + timedelta(days=due_days)).date()
        deadline = DeadlineSpec(kind=DeadlineKind.DATE_THEN_LONG_TERM if long_term else DeadlineKind.DATE,
                                due_date=due, long_term=long_term, raw_zh=f"{due:%Y年%m月%d日}")
    return CaseFiling(
        case_no=f"P-{n}", kind=kind, title="城镇生活污水直排问题", problem="污水收集管网不配套",
        target="" if kind is CaseKind.PETITION else "生活污水收集率达到90%",
        measures=[] if kind is CaseKind.PETITION else [Measure(seq=1, text="建设管网"), Measure(seq=2, text="雨污分流")],
        responsible_units=UNITS["ru"], lead_supervising_units=UNITS["lead"], assisting_units=UNITS["assist"],
        deadline=deadline, complaint="夜间偷排废水" if kind is CaseKind.PETITION else "",
    )


@given(st.data())
def test_random_action_sequences_keep_every_invariant(data: st.DataObject) -> None:
    kind, policy, long_term = data.draw(st.composite(lambda draw: draw_case(draw))(), label="case")
    filing = _filing(kind, long_term, 1, data.draw(st.integers(-30, 400), label="plan due in days"))
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
