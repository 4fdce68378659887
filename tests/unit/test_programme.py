"""The programme's rules (domain/programme.py, domain/programme_scope.py): timers, actions, scoping."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from pydantic import ValidationError

from domain.calendar import end_of_day
from domain.enums import Role, Rung
from domain.errors import DuplicateRequestError, InvalidTransitionError, MissingInputError, NotAuthorizedError
from domain.model import Actor
from domain.programme import (
    ProgrammeAction,
    ProgrammePolicy,
    ProgrammeRequest,
    ProgrammeSpec,
    ProgrammeStage,
    ProgressCounts,
    TimerKind,
    add_months,
    apply_timer,
    compute_timer,
    decide,
    new_programme,
    next_wakeup,
    on_progress,
    on_wakeup,
    projection,
    validate,
)
from domain.programme_scope import ALL_COUNTIES, CITY_LEVEL, ProgrammeRead, counties_of, programme_read
from domain.visibility import HomeUnits, Reader, Scope

OFFICE = Actor(user_id="office-zhang", role=Role.RECTIFICATION_OFFICE, unit="整改办")
T0 = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)  # a Monday, 10:00 in Beijing


@pytest.fixture
def cal():  # type: ignore[no-untyped-def]
    from activities.calendar_source import load_calendar

    return load_calendar(None)


def spec(**kw: object) -> ProgrammeSpec:
    base = dict(programme_id="R2-XXS", name="xx市第二轮督察整改方案", inspection_round="第二轮中央生态环境保护督察",
                locality="xx市", counties=["蓝山县", "祁阳市"], feedback_date=date(2026, 3, 2))
    base.update(kw)
    return ProgrammeSpec(**base)  # type: ignore[arg-type]


def req(action: ProgrammeAction, actor: Actor = OFFICE, ref: str = "x政发〔2026〕1号", rid: str = "r1") -> ProgrammeRequest:
    return ProgrammeRequest(action=action, actor=actor, request_id=rid, reference=ref)


def created(cal, now: datetime = T0):  # type: ignore[no-untyped-def]
    d = new_programme(spec(), ProgrammePolicy(), now, OFFICE)
    assert d.timer_request is not None and d.timer_request.kind is TimerKind.PLAN
    return apply_timer(d.state, compute_timer(d.timer_request, cal), now).state


def submitted(cal, now: datetime = T0):  # type: ignore[no-untyped-def]
    d = decide(created(cal, now), req(ProgrammeAction.SUBMIT_PLAN), now)
    assert d.timer_request is not None and d.timer_request.kind is TimerKind.REPORT
    return apply_timer(d.state, compute_timer(d.timer_request, cal), now).state


def test_add_months_keeps_the_day_or_takes_the_month_end() -> None:
    assert add_months(date(2021, 7, 16), 6) == date(2022, 1, 16)
    assert add_months(date(2021, 8, 31), 6) == date(2022, 2, 28)
    assert add_months(date(2023, 8, 31), 6) == date(2024, 2, 29)


def test_plan_deadline_counts_working_days_after_feedback(cal) -> None:  # type: ignore[no-untyped-def]
    s = created(cal)
    assert s.plan_timer is not None
    # 30 working days from Monday 2026-03-02, over Qingming (2026-04-04..06, a Saturday to Monday)
    assert s.plan_timer.due_date == date(2026, 4, 14)
    assert "working days" in s.plan_timer.explanation
    assert [x.key for x in s.plan_timer.steps][:2] == ["REMIND-30", "REMIND-7"]


def test_plan_submission_starts_the_six_month_report_timer(cal) -> None:  # type: ignore[no-untyped-def]
    s = submitted(cal)
    assert s.stage is ProgrammeStage.PLAN_SUBMITTED
    assert s.plan_timer is not None and s.plan_timer.on_time is True
    assert s.report_timer is not None and s.report_timer.due_date == date(2026, 9, 2)
    assert s.report_timer.due_at == end_of_day(date(2026, 9, 2))
    assert next_wakeup(s) == s.report_timer.steps[0].fire_at  # 30 days before


def test_reminders_then_rungs_notify_office_and_supervision_offices(cal) -> None:  # type: ignore[no-untyped-def]
    s = submitted(cal)
    assert s.report_timer is not None
    d = on_wakeup(s, s.report_timer.steps[0].fire_at)
    assert d is not None and [e.event for e in d.entries] == ["REMINDER"]
    assert {n.recipient_unit for n in d.notices} == {"整改办"}  # a reminder goes to the office
    late = s.report_timer.due_at + timedelta(days=20)
    d2 = on_wakeup(d.state, late)
    assert d2 is not None
    events = [(e.event, e.data.get("rung")) for e in d2.entries]
    assert ("ESCALATED", Rung.NOTICE_LETTER.value) in events and ("ESCALATED", Rung.WARNING.value) in events
    units = {n.recipient_unit for n in d2.notices}
    assert units == {"整改办", "市委督查室", "市政府督查室"}
    assert len({n.key for n in d2.notices}) == len(d2.notices)
    assert d2.state.report_timer is not None and d2.state.report_timer.level() >= 2
    assert on_wakeup(d2.state, late) is None  # nothing fires twice


def test_report_in_time_stops_the_timer(cal) -> None:  # type: ignore[no-untyped-def]
    s = submitted(cal)
    d = decide(s, req(ProgrammeAction.SUBMIT_REPORT, rid="r2", ref="报告-2026-1"), T0 + timedelta(days=100))
    assert d.state.stage is ProgrammeStage.REPORTED and d.state.report_timer.on_time is True  # type: ignore[union-attr]
    assert next_wakeup(d.state) is None
    assert d.entries[0].event == "SIX_MONTH_REPORT_SUBMITTED" and d.entries[0].data["on_time"] is True


def test_only_the_office_acts_and_in_its_stage(cal) -> None:  # type: ignore[no-untyped-def]
    s = created(cal)
    ru = Actor(user_id="ru", role=Role.RESPONSIBLE_UNIT, unit="蓝山县委、县政府")
    with pytest.raises(NotAuthorizedError):
        validate(s, req(ProgrammeAction.SUBMIT_PLAN, actor=ru))
    other_office = Actor(user_id="o2", role=Role.RECTIFICATION_OFFICE, unit="别的整改办")
    with pytest.raises(NotAuthorizedError):
        validate(s, req(ProgrammeAction.SUBMIT_PLAN, actor=other_office))
    with pytest.raises(InvalidTransitionError):
        validate(s, req(ProgrammeAction.SUBMIT_REPORT))
    with pytest.raises(MissingInputError):
        validate(s, req(ProgrammeAction.SUBMIT_PLAN, ref=" "))
    s2 = submitted(cal)
    with pytest.raises(DuplicateRequestError):
        validate(s2, req(ProgrammeAction.SUBMIT_REPORT, rid="r1"))
    with pytest.raises(NotAuthorizedError):
        new_programme(spec(), ProgrammePolicy(), T0, ru)


def test_bad_input_is_refused_by_name() -> None:
    with pytest.raises(ValidationError, match="programme_id"):
        spec(programme_id="bad id/..")
    with pytest.raises(ValidationError, match="name"):
        spec(name="方案\x00")
    with pytest.raises(ValidationError, match="reference"):
        ProgrammeRequest(action=ProgrammeAction.SUBMIT_PLAN, actor=OFFICE, request_id="x", reference="a\x1b[2J")


def test_completes_when_every_case_is_closed_or_long_term(cal) -> None:  # type: ignore[no-untyped-def]
    s = submitted(cal)
    d = on_progress(s, ProgressCounts.of({"RECTIFYING": 2, "CLOSED": 1}), T0)
    assert d is not None and [e.event for e in d.entries] == ["PROGRESS"]
    assert on_progress(d.state, ProgressCounts.of({"RECTIFYING": 2, "CLOSED": 1}), T0).entries == []  # type: ignore[union-attr]
    done = on_progress(d.state, ProgressCounts.of({"LONG_TERM_MAINTENANCE": 2, "CLOSED": 1}), T0)
    assert done is not None and [e.event for e in done.entries] == ["PROGRESS", "PROGRAMME_COMPLETED"]
    assert done.state.stage is ProgrammeStage.COMPLETED
    assert projection(done.state).done_cases == 3
    # no plan submitted yet, or no case at all: not complete
    assert on_progress(created(cal), ProgressCounts.of({"CLOSED": 1}), T0).state.stage is ProgrammeStage.FEEDBACK_RECEIVED  # type: ignore[union-attr]
    assert on_progress(s, ProgressCounts.of({}), T0).state.stage is ProgrammeStage.PLAN_SUBMITTED  # type: ignore[union-attr]


def test_overdue_when_set_counts_the_ladder_from_today_and_skips_past_reminders(cal) -> None:  # type: ignore[no-untyped-def]
    late = T0 + timedelta(days=400)
    d = new_programme(spec(), ProgrammePolicy(), late, OFFICE)
    s = apply_timer(d.state, compute_timer(d.timer_request, cal), late).state  # type: ignore[arg-type]
    assert s.plan_timer is not None
    assert all(x.skipped for x in s.plan_timer.steps if x.rung is None)
    assert min(x.fire_date for x in s.plan_timer.steps if x.rung) >= date(2027, 4, 6)


def test_policy_ladder_must_grow() -> None:
    from domain.programme import ProgrammeError, ProgrammeRungSpec

    bad = ProgrammePolicy(ladder=[ProgrammeRungSpec(rung=Rung.WARNING, delay_days=5),
                                  ProgrammeRungSpec(rung=Rung.NOTICE_LETTER, delay_days=0)])
    with pytest.raises(ProgrammeError, match="delays"):
        bad.checked()


def test_read_scope_whole_own_or_nothing() -> None:
    home = HomeUnits(office="整改办")
    assert programme_read(Reader("o", "整改办", (Role.RECTIFICATION_OFFICE,)), home)[0] is ProgrammeRead.WHOLE
    assert programme_read(Reader("o", "别处", (Role.RECTIFICATION_OFFICE,)), home)[0] is None
    assert programme_read(Reader("d", "市委督查室", (Role.SUPERVISION_OFFICE,)), home)[0] is ProgrammeRead.WHOLE
    assert programme_read(Reader("r", "蓝山县委、县政府", (Role.RESPONSIBLE_UNIT,)), home) == (
        ProgrammeRead.OWN, frozenset({Scope.RESPONSIBLE}))
    assert programme_read(Reader("p", "公众", (Role.PUBLIC,)), home)[0] is None
    assert programme_read(Reader("j", "纪委监委", (Role.DISCIPLINE_COMMISSION,)), home)[0] is None
    assert programme_read(Reader("s", "x", (Role.SYSTEM,)), home)[0] is None


def test_counties_of_a_case() -> None:
    counties = ["蓝山县", "祁阳市"]
    assert counties_of(["蓝山县委、县政府"], counties) == ["蓝山县"]
    assert counties_of(["市发改委", "各县市区党委、政府"], counties) == [ALL_COUNTIES]
    assert counties_of(["市城管执法局"], counties) == [CITY_LEVEL]


def test_the_programme_workflow_imports_no_io() -> None:
    """Like the case workflow: it reaches the world only through activities, by name."""
    from pathlib import Path

    from tests.test_architecture import WORKFLOW_FORBIDDEN, _imports

    path = Path(__file__).resolve().parents[2] / "workflows" / "programme_workflow.py"
    assert _imports(path) & WORKFLOW_FORBIDDEN == set()
