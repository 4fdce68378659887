"""Issue 13 (milestones): the follow-up timers' domain rules, without Temporal."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from domain import followup as fu
from domain import reporting as rp
from domain.calendar import end_of_day
from domain.decide import apply_followup_schedule, decide, next_wakeup, on_wakeup
from domain.enums import Action, DeadlineKind, Rung, Stage
from domain.errors import InvalidTransitionError, MissingInputError
from domain.followup_model import FollowUpLadder, FollowUpRung, TimerKind
from domain.milestones import measures_view
from domain.model import DeadlineSpec, Measure, Milestone
from domain.policy import Policy
from tests.unit.factories import LEAD, NOW, OFFICE, RU, act, calendar, criteria, make_filing, new_state, request


def _dated(state, now):
    req = fu.schedule_request(state, now)
    assert req is not None
    return apply_followup_schedule(state, fu.compute_schedule(req, calendar()), now).state


def _rectifying(filing=None, now=NOW, policy=None):
    s = new_state(filing or make_filing(), policy=policy, now=now)
    s = act(act(s, Action.TRANSFER, OFFICE, now), Action.ACKNOWLEDGE, RU, now)
    return _dated(s, now)


def _with_milestone(due: date):
    return make_filing(measures=[
        Measure(seq=1, text="建设管网", milestones=[Milestone(due_date=due, what="一期完工")]),
        Measure(seq=2, text="雨污分流改造", milestones=[Milestone(recurrence="QUARTERLY", what="季度研究")]),
    ])


def test_a_dated_milestone_gets_a_reminder_in_working_days_and_the_policy_ladder():
    """2025-04-07 is a Monday after 清明 (04-04..06): 5 working days back skips the holiday."""
    s = _rectifying(_with_milestone(date(2025, 4, 7)))
    t = s.followup.timer("M1.1")
    assert t is not None and t.kind is TimerKind.MILESTONE
    assert t.remind_date == date(2025, 3, 28)  # 04-03, 04-02, 04-01, 03-31, 03-28: 5 working days
    assert [r.rung for r in t.schedule] == [Rung.NOTICE_LETTER, Rung.WARNING, Rung.CIRCULAR]
    assert t.schedule[0].fire_date == date(2025, 4, 7)
    assert s.followup.timer("M2.1") is None  # recurring milestones are shown, not timed
    assert s.timeline[-1].event == "FOLLOWUP_SCHEDULED"


def test_the_milestone_reminds_then_escalates_and_stops_when_its_measure_is_done():
    pol = Policy()
    pol.followup.monthly_report = False  # only the milestone's timers here
    s = _rectifying(_with_milestone(date(2025, 4, 7)), policy=pol)
    t = s.followup.timer("M1.1")
    assert next_wakeup(s) == t.remind_at
    s = on_wakeup(s, t.remind_at).state
    assert s.timeline[-1].event == "MILESTONE_REMINDER"
    s = on_wakeup(s, end_of_day(date(2025, 4, 7))).state
    assert s.timeline[-1].event == "MILESTONE_ESCALATED" and s.followup.timer("M1.1").fired == [Rung.NOTICE_LETTER]
    later = end_of_day(date(2025, 4, 8))
    s = act(s, Action.COMPLETE_MEASURE, RU, later, measure_seq=1, evidence=["doc:一期完工验收"])
    assert s.followup.timer("M1.1").stopped == "MEASURE_DONE"
    assert all(w != s.followup.timer("M1.1").schedule[1].fire_at for w in fu.wakeups(s))
    view = measures_view(s)
    assert view[0]["done"] and view[0]["evidence"] == ["doc:一期完工验收"]
    assert view[0]["milestones"][0]["status"] == "DONE"


def test_a_milestone_already_past_starts_its_ladder_on_the_day_it_is_armed():
    s = _rectifying(_with_milestone(date(2024, 12, 31)))
    t = s.followup.timer("M1.1")
    assert t.schedule[0].fire_date == date(2025, 3, 3)  # NOW's date, not 2024-12-31
    assert "already past" in t.explanation


def test_overdue_rungs_that_piled_up_fire_once_as_the_highest():
    pol = Policy()
    pol.followup.monthly_report = False
    s = _rectifying(_with_milestone(date(2025, 4, 7)), policy=pol)
    s = on_wakeup(s, end_of_day(date(2025, 5, 30))).state
    esc = [e for e in s.timeline if e.event == "MILESTONE_ESCALATED"]
    assert len(esc) == 1 and "CIRCULAR" in esc[0].reason
    assert "MILESTONE_REMINDER" not in [e.event for e in s.timeline]  # its day had passed


def test_complete_measure_needs_evidence_and_verify_names_the_open_measures():
    s = _rectifying()
    with pytest.raises(MissingInputError, match="needs evidence"):
        decide(s, request(Action.COMPLETE_MEASURE, RU, measure_seq=1), NOW)
    s = act(s, Action.COMPLETE_MEASURE, RU, NOW, measure_seq=1, evidence=["doc:1"])
    s2 = s.model_copy(update={"stage": Stage.VERIFICATION})
    with pytest.raises(InvalidTransitionError) as e:
        decide(s2, request(Action.VERIFY_PASS, LEAD, criteria=criteria()), NOW)
    assert "2. 雨污分流改造" in str(e.value) and "000:301" in str(e.value)


def test_a_measure_done_without_evidence_under_old_rules_can_be_completed_again_with_it():
    s = _rectifying()
    s.measures_done.append(1)  # carried over from a run before the rules
    s = act(s, Action.COMPLETE_MEASURE, RU, NOW, measure_seq=1, evidence=["doc:补充佐证"])
    assert s.measures_done == [1] and s.followup.measure_evidence[1] == ["doc:补充佐证"]


def test_cases_without_followup_state_keep_the_old_rules():
    s = _rectifying()
    old = s.model_copy(update={"followup": None, "stage": Stage.VERIFICATION})
    assert decide(old, request(Action.VERIFY_PASS, LEAD, criteria=criteria()), NOW).state.stage is Stage.FILING
    assert fu.schedule_request(old, NOW) is None and fu.wakeups(old) == []


def test_submit_completion_is_refused_only_when_the_policy_says_so():
    pol = Policy()
    pol.followup.submit_requires_measures_done = True
    s = new_state(make_filing(), policy=pol)
    s = act(act(s, Action.TRANSFER, OFFICE), Action.ACKNOWLEDGE, RU)
    with pytest.raises(InvalidTransitionError, match="申报完成"):
        decide(s, request(Action.SUBMIT_COMPLETION, RU), NOW)


def test_monthly_report_periods_grace_and_coverage():
    ongoing = make_filing(deadline=DeadlineSpec(kind=DeadlineKind.ONGOING, raw_zh="持续推进"))
    s = _rectifying(ongoing)  # entered 2025-03-03; day 25 is 22 days on (grace 10): March is owed
    assert rp.current_period(s) == "2025-03"
    t = s.followup.timer("R2025-03")
    assert t.due_date == date(2025, 3, 25) and t.remind_date == date(2025, 3, 20)
    late = datetime(2025, 3, 20, 2, tzinfo=UTC)
    s2 = _rectifying(ongoing, now=late)  # 5 days before the 25th: first owed in April
    assert rp.current_period(s2) == "2025-04"
    # A report in March covers March; the next owed month is April, dated by the calendar.
    s = act(s, Action.REPORT_PROGRESS, RU, NOW + timedelta(days=2), reason="本月进展")
    assert s.followup.timer("R2025-03").stopped == "REPORTED" and rp.current_period(s) == "2025-04"
    s = _dated(s, NOW + timedelta(days=2))
    assert s.followup.timer("R2025-04").due_date == date(2025, 4, 25)
    assert s.timeline[-2].event == "REPORT_PROGRESS"


def test_a_report_day_on_a_weekend_moves_to_the_next_working_day():
    pol = Policy()
    pol.followup.report_day_of_month = 31
    s = new_state(make_filing(deadline=DeadlineSpec(kind=DeadlineKind.ONGOING, raw_zh="持续推进")), policy=pol)
    s = _dated(act(act(s, Action.TRANSFER, OFFICE), Action.ACKNOWLEDGE, RU), NOW)
    t = s.followup.timer("R2025-03")  # 2025-03-31 is a Monday: kept
    assert t.due_date == date(2025, 3, 31)
    s = act(s, Action.REPORT_PROGRESS, RU, NOW, reason="进展")
    s = _dated(s, NOW)
    assert s.followup.timer("R2025-04").due_date == date(2025, 4, 30)  # clamped to April's 30 days
    s = act(s, Action.REPORT_PROGRESS, RU, datetime(2025, 4, 2, tzinfo=UTC), reason="进展")
    s = _dated(s, datetime(2025, 4, 2, tzinfo=UTC))
    assert s.followup.timer("R2025-05").due_date == date(2025, 6, 3)  # 05-31 Sat, 端午 06-02: next working day


def test_follow_up_ladders_are_checked_when_the_policy_loads():
    with pytest.raises(ValueError, match="does not grow"):
        FollowUpLadder(rungs=[FollowUpRung(rung=Rung.WARNING, delay_days=5), FollowUpRung(rung=Rung.CIRCULAR, delay_days=5)])
    with pytest.raises(ValueError, match="never applied by a timer"):
        FollowUpLadder(rungs=[FollowUpRung(rung=Rung.ACCOUNTABILITY_TRANSFER, delay_days=0)])
    assert Policy.model_validate_json(Policy().model_dump_json()).followup.report_day_of_month == 25
