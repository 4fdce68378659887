"""The escalation ladder on the clock: rung by rung, stops, manual rungs, extensions, suspensions."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta

import pytest

from activities.calendar_source import load_calendar
from domain.calendar import end_of_day
from domain.deadlines import compute_deadline, parse_deadline
from domain.decide import apply_deadline, decide, next_wakeup, on_wakeup
from domain.enums import (
    RUNG_ORDER,
    Action,
    ReferralPath,
    ReferralStatus,
    Role,
    Rung,
    RungMode,
    Stage,
    rung_level,
)
from domain.errors import InvalidTransitionError, MissingInputError
from domain.escalation import mode_of
from domain.model import CaseAmendment
from domain.policy import Policy, StageLimit
from tests.unit.factories import (
    LEAD,
    NOW,
    OFFICE,
    PLAN_DUE,
    RU,
    UTC,
    act,
    calendar,
    drive_to,
    make_filing,
    new_state,
    request,
    settle,
    state_in,
    wake,
)

CANONICAL_FIRE_DATES = [
    date(2025, 6, 30),  # 函告: on the due date (delay 0)
    date(2025, 7, 7),  # 警示: +5 working days
    date(2025, 7, 14),  # 通报: +10
    date(2025, 7, 21),  # 督办: +15
    date(2025, 7, 28),  # 挂牌督办: +20
    date(2025, 8, 11),  # 约谈: +30
    date(2025, 9, 1),  # 区域限批: +45
    date(2025, 9, 22),  # 移交问责: +60
]


def _rectifying(**filing_kw):
    s, _ = drive_to(Stage.RECTIFYING, filing=make_filing(**filing_kw))
    return s


def test_rectifying_deadline_carries_the_canonical_schedule():
    """Acknowledging sets the plan due date with all eight rungs at due + delay working days."""
    s = _rectifying()

    assert s.deadline is not None and s.deadline.due_date == PLAN_DUE
    assert [r.rung for r in s.deadline.escalation_schedule] == list(RUNG_ORDER)
    assert [r.fire_date for r in s.deadline.escalation_schedule] == CANONICAL_FIRE_DATES
    assert next_wakeup(s) == end_of_day(PLAN_DUE)


def test_nothing_fires_before_the_due_date_expires():
    """One second before the end of the due date, the clock has nothing to do."""
    s = _rectifying()

    assert on_wakeup(s, end_of_day(PLAN_DUE) - timedelta(seconds=1)) is None


def _confirm_pending(s, at):
    """An authorised office user confirms the pending proposal (with a report for 移交问责)."""
    p = s.escalation.pending()[0]
    extra = {"report_ref": "追责建议报告〔2025〕7号"} if p.rung is Rung.ACCOUNTABILITY_TRANSFER else {}
    return act(s, Action.CONFIRM_ESCALATION, OFFICE, at, proposal_id=p.proposal_id, reason="同意", **extra)


def test_each_wakeup_climbs_exactly_one_rung_through_the_whole_ladder():
    """Waking at each rung's fire_at deals with that rung only, in canonical order: 函告 … 挂牌督办
    take effect by themselves; 约谈, 区域限批, 移交问责 are proposed and take effect when confirmed."""
    s = _rectifying()

    for expected_level, rung in enumerate(RUNG_ORDER, start=1):
        at = next_wakeup(s)
        assert at is not None and at == end_of_day(CANONICAL_FIRE_DATES[expected_level - 1])
        decision = on_wakeup(s, at)
        assert decision is not None
        s = decision.state
        if mode_of(s, rung) is RungMode.PROPOSED:
            assert [e.event for e in decision.entries] == ["ESCALATION_PROPOSED"]
            assert s.escalation.level == expected_level - 1 and next_wakeup(s) is None  # waits for a person
            s = _confirm_pending(s, at)
            assert s.escalation.fired[-1].automatic is False and s.escalation.fired[-1].by == OFFICE.user_id
        else:
            escalated = [e for e in decision.entries if e.event == "ESCALATED"]
            assert len(escalated) == 1 and escalated[0].data["rung"] is rung
            assert s.escalation.fired[-1].automatic
        assert s.escalation.level == expected_level == rung_level(rung)
        assert s.escalation.fired[-1].rung is rung

    assert s.escalation.max_level == 8
    assert [f.rung for f in s.escalation.fired] == list(RUNG_ORDER)
    assert s.stage is Stage.RECTIFYING


def test_last_rung_is_only_proposed_and_never_reaches_the_discipline_commission_by_itself():
    """移交问责 when due is a proposal to the office and supervision offices; no referral, no notice
    to 纪委监委. Confirmed with a 追责建议报告 it opens a path-A referral addressed to 纪委监委."""
    s = _rectifying()
    while (at := next_wakeup(s)) is not None and at < end_of_day(CANONICAL_FIRE_DATES[-1]):
        s = wake(s, at)
        if s.escalation.pending():
            s = _confirm_pending(s, at)

    decision = on_wakeup(s, end_of_day(CANONICAL_FIRE_DATES[-1]))

    assert decision is not None
    proposed = decision.state
    assert [e.event for e in decision.entries] == ["ESCALATION_PROPOSED"]
    assert proposed.referrals == []
    assert {n.recipient_role for n in decision.notices} == {Role.RECTIFICATION_OFFICE, Role.SUPERVISION_OFFICE}
    assert {n.recipient_unit for n in decision.notices} == {"整改办", "市委督查室", "市政府督查室"}
    facts = proposed.escalation.pending()[0].facts
    assert facts["due_date"] == PLAN_DUE.isoformat() and facts["days_overdue"] > 60
    assert facts["rungs_in_effect"][-1] == Rung.REGIONAL_APPROVAL_RESTRICTION.value

    confirmed = decide(proposed, request(Action.CONFIRM_ESCALATION, OFFICE, proposal_id="P3", reason="逾期两月",
                                         report_ref="追责建议报告〔2025〕7号"), end_of_day(CANONICAL_FIRE_DATES[-1]))
    after = confirmed.state
    assert [(r.path, r.status, r.report_ref) for r in after.referrals] == [
        (ReferralPath.PERFORMANCE, ReferralStatus.OPEN, "追责建议报告〔2025〕7号")]
    commission = [n for n in confirmed.notices if n.recipient_role is Role.DISCIPLINE_COMMISSION]
    assert commission and all(n.recipient_unit == "纪委监委" for n in commission)
    assert after.stage is Stage.RECTIFYING  # a referral never closes or moves the case


def test_no_wakeup_after_the_last_rung():
    """Once every rung has been dealt with, next_wakeup is None."""
    s = _rectifying()
    while (at := next_wakeup(s)) is not None:
        s = wake(s, at)
        if s.escalation.pending():
            s = _confirm_pending(s, at)

    assert len(s.escalation.fired) == 8
    assert next_wakeup(s) is None
    assert on_wakeup(s, datetime(2030, 1, 1, tzinfo=UTC)) is None


def test_a_late_wakeup_fires_every_rung_that_is_due():
    """If the clock wakes late, all overdue rungs fire at once, in order."""
    s = _rectifying()

    decision = on_wakeup(s, end_of_day(date(2025, 7, 21)))

    assert decision is not None
    assert [f.rung for f in decision.state.escalation.fired] == list(RUNG_ORDER[:4])
    assert decision.state.escalation.level == 4


def test_escalation_notices_go_to_responsible_lead_and_office_units():
    """A rung notifies every responsible unit, every lead unit and the office, with the rung in the subject."""
    s = _rectifying()

    decision = on_wakeup(s, end_of_day(PLAN_DUE))

    assert decision is not None
    assert {n.recipient_unit for n in decision.notices} == {"市生态环境局", "市水利局", "市委办", "市政府办", "整改办"}
    assert all(n.subject.startswith("【函告】") for n in decision.notices)
    assert decision.entries[0].data["notified"] == [n.recipient_unit for n in decision.notices]


def test_leaving_the_stage_resets_the_level_and_records_escalation_stopped():
    """SUBMIT_COMPLETION at rung 3 records ESCALATION_STOPPED and resets the level, keeping history."""
    s = _rectifying()
    for _ in range(3):
        s = wake(s, next_wakeup(s))  # type: ignore[arg-type]
    at = end_of_day(CANONICAL_FIRE_DATES[2]) + timedelta(hours=1)

    decision = decide(s, request(Action.SUBMIT_COMPLETION, RU), at)

    events = [e.event for e in decision.entries]
    assert events == ["ESCALATION_STOPPED", "SUBMIT_COMPLETION"]
    assert decision.entries[0].data["level"] == 3
    after = settle(decision, at)
    assert after.escalation.level == 0
    assert after.escalation.max_level == 3
    assert len(after.escalation.fired) == 3
    assert after.stage is Stage.PRELIM_REVIEW
    assert next_wakeup(after) == after.deadline.due_at  # type: ignore[union-attr]  # a REMIND deadline now


def test_stage_change_without_escalation_records_no_stop():
    """Leaving a stage that never escalated writes no ESCALATION_STOPPED."""
    s = _rectifying()

    decision = decide(s, request(Action.SUBMIT_COMPLETION, RU), NOW)

    assert "ESCALATION_STOPPED" not in [e.event for e in decision.entries]


def test_county_ladder_has_three_rungs():
    """ladder_profile="county": 通报 → 督办 → 约谈, then nothing more."""
    s = _rectifying(ladder_profile="county")

    assert [r.rung for r in s.deadline.escalation_schedule] == [  # type: ignore[union-attr]
        Rung.CIRCULAR, Rung.SUPERVISION_ORDER, Rung.SUMMONS,
    ]
    fired = []
    while (at := next_wakeup(s)) is not None:
        s = wake(s, at)
        if s.escalation.pending():
            s = _confirm_pending(s, at)
        fired.append(s.escalation.fired[-1].rung)

    assert fired == [Rung.CIRCULAR, Rung.SUPERVISION_ORDER, Rung.SUMMONS]
    assert s.escalation.level == rung_level(Rung.SUMMONS)
    assert s.referrals == []


def test_manual_rung_raises_the_level_and_skips_lower_automatic_rungs():
    """APPLY_RUNG 约谈 by hand sets level 6; the clock then waits for 区域限批."""
    s = _rectifying()

    after = act(s, Action.APPLY_RUNG, OFFICE, NOW, rung=Rung.SUMMONS, reason="进度明显滞后")

    assert after.escalation.level == 6
    assert after.escalation.fired[-1].automatic is False and after.escalation.fired[-1].by == OFFICE.user_id
    assert after.timeline[-1].event == "APPLY_RUNG"
    assert next_wakeup(after) == end_of_day(CANONICAL_FIRE_DATES[6])


@pytest.mark.parametrize("rung", [Rung.NOTICE_LETTER, Rung.WARNING, Rung.CIRCULAR])
def test_manual_rung_not_above_the_current_level_is_refused(rung: Rung):
    """At level 3 a manual 函告, 警示 or 通报 would not raise the level and is refused."""
    s = _rectifying()
    for _ in range(3):
        s = wake(s, next_wakeup(s))  # type: ignore[arg-type]

    with pytest.raises(InvalidTransitionError, match="would not raise it"):
        decide(s, request(Action.APPLY_RUNG, OFFICE, rung=rung, reason="x"), end_of_day(CANONICAL_FIRE_DATES[2]))


def test_manual_accountability_rung_opens_a_path_a_referral_with_its_report():
    """A manual 移交问责 needs the 追责建议报告 reference and opens a PERFORMANCE (path A) referral."""
    s = _rectifying()

    with pytest.raises(MissingInputError, match="report_ref"):
        decide(s, request(Action.APPLY_RUNG, OFFICE, rung=Rung.ACCOUNTABILITY_TRANSFER, reason="逾期"), NOW)
    after = act(s, Action.APPLY_RUNG, OFFICE, NOW, rung=Rung.ACCOUNTABILITY_TRANSFER, reason="逾期",
                report_ref="追责建议报告-9")

    assert after.escalation.level == 8
    assert [(r.path, r.report_ref) for r in after.referrals] == [(ReferralPath.PERFORMANCE, "追责建议报告-9")]
    assert next_wakeup(after) is None


def test_approved_extension_mid_escalation_moves_the_next_rung_later_without_refiring():
    """At level 2, an extension to 2025-08-29 moves the due date; next is 通报 at 2025-09-12."""
    s = _rectifying()
    for _ in range(2):
        s = wake(s, next_wakeup(s))  # type: ignore[arg-type]
    old_next = next_wakeup(s)
    at = datetime(2025, 7, 8, 2, 0, tzinfo=UTC)
    s = act(s, Action.REQUEST_EXTENSION, RU, at, new_due_date=date(2025, 8, 29), reason="汛期施工受阻")

    s = act(s, Action.APPROVE_EXTENSION, LEAD, at)

    assert s.deadline is not None and s.deadline.due_date == date(2025, 8, 29)
    assert s.escalation.level == 2
    new_next = next_wakeup(s)
    assert new_next == end_of_day(date(2025, 9, 12))  # 10 working days after 8-29
    assert old_next is not None and new_next > old_next
    assert on_wakeup(s, end_of_day(date(2025, 8, 29))) is None  # 函告 is not fired again
    s = wake(s, new_next)
    assert [f.rung for f in s.escalation.fired] == [Rung.NOTICE_LETTER, Rung.WARNING, Rung.CIRCULAR]


def test_suspension_stops_the_clock():
    """While suspended, next_wakeup is None and an overdue deadline fires nothing."""
    s = _rectifying()

    s = act(s, Action.SUSPEND, OFFICE, NOW, reason="进入司法程序")

    assert s.suspension is not None
    assert next_wakeup(s) is None
    assert on_wakeup(s, end_of_day(date(2025, 9, 30))) is None


def test_resume_moves_a_fixed_due_date_by_the_calendar_days_suspended():
    """Suspended 2025-03-03..03-13: RESUME asks base_due_date/exclude_from/exclude_until; due → 2025-07-10."""
    s = _rectifying()
    s = act(s, Action.SUSPEND, OFFICE, NOW, reason="进入司法程序")
    at = datetime(2025, 3, 13, 2, 0, tzinfo=UTC)

    decision = decide(s, request(Action.RESUME, OFFICE), at)

    req = decision.deadline_request
    assert req is not None
    assert (req.base_due_date, req.exclude_from, req.exclude_until) == (PLAN_DUE, date(2025, 3, 3), date(2025, 3, 13))
    after = settle(decision, at)
    assert after.suspension is None and len(after.suspensions) == 1
    assert after.deadline is not None and after.deadline.due_date == date(2025, 7, 10)
    assert after.deadline.explanation.excluded_days == 10
    assert next_wakeup(after) == end_of_day(date(2025, 7, 10))


def test_resume_moves_a_working_day_deadline_by_the_working_days_suspended():
    """A rework deadline (30 working days) is moved by the working days suspended, holidays skipped."""
    s, now = state_in(Stage.PRELIM_REVIEW)
    s = act(s, Action.PRELIM_REJECT, LEAD, now, reason="退回")
    due = s.deadline.due_date  # type: ignore[union-attr]
    assert due == date(2025, 4, 15)
    s = act(s, Action.SUSPEND, OFFICE, now, reason="诉讼")

    after = act(s, Action.RESUME, OFFICE, datetime(2025, 3, 10, 2, 0, tzinfo=UTC))

    assert after.deadline is not None
    assert after.deadline.explanation.excluded_days == 5  # Mon 3-3 .. Fri 3-7
    assert after.deadline.due_date == date(2025, 4, 22)  # 4-16, 4-17, 4-18, 4-21, 4-22


def test_resume_keeps_the_escalation_level():
    """Suspending and resuming an escalated case keeps its rung level."""
    s = _rectifying()
    s = wake(s, next_wakeup(s))  # type: ignore[arg-type]
    at = end_of_day(PLAN_DUE)
    s = act(s, Action.SUSPEND, OFFICE, at, reason="诉讼")

    after = act(s, Action.RESUME, OFFICE, at + timedelta(days=7))

    assert after.escalation.level == 1
    assert next_wakeup(after) is not None and next_wakeup(after) > end_of_day(CANONICAL_FIRE_DATES[1])


def test_transferred_stage_escalates_when_acknowledgement_is_overdue():
    """签收 has a 3-working-day limit that escalates on the lower rungs only (函告 … 督办)."""
    s, _ = state_in(Stage.TRANSFERRED)

    assert s.deadline is not None
    assert [r.rung for r in s.deadline.escalation_schedule] == list(RUNG_ORDER[:4])
    s = wake(s, s.deadline.due_at)

    assert s.escalation.level == 1 and s.stage is Stage.TRANSFERRED


def test_old_plan_date_already_past_starts_its_ladder_on_acknowledgement():
    """An imported case due 2024-12-31 keeps that due date but 函告 fires at the end of the acknowledgement day."""
    s = new_state(make_filing(deadline=None))

    s = act(s, Action.AMEND, OFFICE, amendment=CaseAmendment(deadline=parse_deadline("2024年12月31日")))
    s = act(act(s, Action.TRANSFER, OFFICE), Action.ACKNOWLEDGE, RU)

    assert s.deadline is not None and s.deadline.due_date == date(2024, 12, 31)
    assert next_wakeup(s) == end_of_day(date(2025, 3, 3))
    decision = on_wakeup(s, end_of_day(date(2025, 3, 3)))
    assert decision is not None and decision.state.escalation.level == 1


def test_old_plan_date_without_rebasing_fires_every_automatic_rung_at_once():
    """With rebase_overdue_ladder off, a 2022 plan date climbs to 挂牌督办 on the first wakeup and
    proposes 约谈; nothing further until a person decides."""
    s = new_state(make_filing(deadline=parse_deadline("2022年12月31日")), Policy(rebase_overdue_ladder=False))
    s = act(act(s, Action.TRANSFER, OFFICE), Action.ACKNOWLEDGE, RU)

    decision = on_wakeup(s, NOW)

    assert decision is not None and decision.state.escalation.level == 5
    assert [p.rung for p in decision.state.escalation.pending()] == [Rung.SUMMONS]
    assert decision.state.referrals == []


def test_ongoing_item_has_no_deadline_and_no_automatic_escalation():
    """持续推进: no due date, nothing on the clock; escalation is by hand only."""
    s = new_state(make_filing(deadline=parse_deadline("持续推进")))
    s = act(act(s, Action.TRANSFER, OFFICE), Action.ACKNOWLEDGE, RU)

    assert s.deadline is None and next_wakeup(s) is None
    assert act(s, Action.APPLY_RUNG, OFFICE, NOW, rung=Rung.WARNING, reason="调度滞后").escalation.level == 2


def test_immediate_item_gets_a_deadline_only_when_the_policy_sets_one():
    """立行立改 has no final date unless policy.immediate_limit is set."""
    filing = make_filing(deadline=parse_deadline("立行立改,持续推进"))
    plain = act(act(new_state(filing), Action.TRANSFER, OFFICE), Action.ACKNOWLEDGE, RU)
    limited_state = new_state(filing.model_copy(update={"case_no": filing.case_no + "b"}),
                              Policy(immediate_limit=StageLimit(days=10)))
    limited = act(act(limited_state, Action.TRANSFER, OFFICE), Action.ACKNOWLEDGE, RU)

    assert plain.deadline is None
    assert limited.deadline is not None and limited.deadline.due_date == date(2025, 3, 17)


def test_recalculate_deadline_recomputes_with_the_calendar_in_force(tmp_path):
    """RECALCULATE_DEADLINE re-runs the recorded request; a new holiday in the data moves the due date."""
    s, now = state_in(Stage.TRANSFERRED)  # due 2025-03-06: 3 working days after 2025-03-03
    assert s.deadline is not None and s.deadline.due_date == date(2025, 3, 6)
    override = tmp_path / "cal.json"
    holidays_2025 = sorted(d.isoformat() for d in calendar().holidays if d.year == 2025) + ["2025-03-05"]
    workdays_2025 = sorted(d.isoformat() for d in calendar().workdays if d.year == 2025)
    override.write_text(json.dumps({"years": {"2025": {"holidays": holidays_2025, "workdays": workdays_2025}}}))
    new_cal = load_calendar(override)

    decision = decide(s, request(Action.RECALCULATE_DEADLINE, OFFICE, reason="节假日安排调整"), now)
    assert decision.deadline_request == s.deadline_source
    after = apply_deadline(decision.state, compute_deadline(decision.deadline_request, new_cal, now), now).state

    assert after.deadline is not None and after.deadline.due_date == date(2025, 3, 7)
    assert after.deadline.explanation.calendar_version == new_cal.version
    assert decision.entries[0].data["old_due_date"] == "2025-03-06"
