"""Whole lifecycles walked through decide/on_wakeup: closure, petitions, send-backs, reopening."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from domain.calendar import end_of_day
from domain.decide import decide, next_wakeup, on_wakeup
from domain.enums import (
    Action,
    CaseKind,
    Finding,
    LookbackFinding,
    ReferralPath,
    ReferralStatus,
    Role,
    Stage,
)
from domain.errors import InvalidTransitionError
from tests.unit.factories import (
    DISCIPLINE,
    LEAD,
    LEAD2,
    NOW,
    OFFICE,
    PLAN_DUE,
    PUBLIC,
    RU,
    RU2,
    act,
    calendar,
    complete_measures,
    criteria,
    drive_to,
    full_petition_policy,
    long_term_filing,
    make_filing,
    new_state,
    request,
    state_in,
    wake,
)


def test_feedback_problem_walks_from_registration_to_closure():
    """REGISTERED → … → CLOSED through every step of 初审、公示、申请、核查、备案."""
    s = new_state()
    assert s.stage is Stage.REGISTERED

    s = act(s, Action.TRANSFER, OFFICE)
    assert s.stage is Stage.TRANSFERRED
    assert s.deadline is not None and s.deadline.due_date == date(2025, 3, 6)  # 3 working days

    s = act(s, Action.ACKNOWLEDGE, RU)
    assert s.stage is Stage.RECTIFYING
    assert s.deadline is not None and s.deadline.due_date == PLAN_DUE

    s = complete_measures(s, NOW)  # 验收 needs every measure done with evidence (issue 13)
    s = act(s, Action.SUBMIT_COMPLETION, RU)
    assert s.stage is Stage.PRELIM_REVIEW

    s = act(s, Action.PRELIM_PASS, LEAD)
    assert s.stage is Stage.PUBLIC_POSTING
    assert s.posting is not None
    assert s.posting.ends_at == end_of_day(date(2025, 3, 10))  # 7 calendar days

    s = wake(s, s.posting.ends_at)
    assert s.stage is Stage.CLOSURE_APPLICATION
    now = end_of_day(date(2025, 3, 10))

    s = act(s, Action.APPLY_CLOSURE, RU, now)
    assert s.stage is Stage.VERIFICATION

    s = act(s, Action.VERIFY_PASS, LEAD, now, criteria=criteria())
    assert s.stage is Stage.FILING
    assert s.verifications[-1].passed

    s = act(s, Action.RECORD_FILING, OFFICE, now)
    assert s.stage is Stage.CLOSED
    assert s.closed_at == now
    assert s.archive_at == now + timedelta(days=365)
    assert s.deadline is None and s.posting is None
    assert [p.ends_at for p in s.postings] == [end_of_day(date(2025, 3, 10))]


def test_feedback_problem_ledger_records_every_step_in_sequence():
    """The timeline of a closed case names each action and system event with gap-free seq numbers."""
    s, _ = drive_to(Stage.CLOSED)

    events = [t.event for t in s.timeline]

    assert events == [
        "FILED",
        "TRANSFER", "DEADLINE_SET",
        "ACKNOWLEDGE", "DEADLINE_SET",
        *["COMPLETE_MEASURE"] * len(s.filing.measures),  # 验收 needs every measure done (issue 13)
        "SUBMIT_COMPLETION", "DEADLINE_SET",
        "PRELIM_PASS", "DEADLINE_SET",
        "POSTING_ENDED", "DEADLINE_SET",
        "APPLY_CLOSURE", "DEADLINE_SET",
        "VERIFY_PASS", "DEADLINE_SET",
        "RECORD_FILING",
    ]
    assert [t.seq for t in s.timeline] == list(range(1, len(events) + 1))
    assert s.seq == len(events)


def test_closed_case_is_archived_when_the_lookback_window_ends():
    """CLOSED wakes at archive_at and becomes ARCHIVED, finishing the workflow."""
    s, _ = drive_to(Stage.CLOSED)
    assert next_wakeup(s) == s.archive_at
    assert on_wakeup(s, s.archive_at - timedelta(seconds=1)) is None

    decision = on_wakeup(s, s.archive_at)

    assert decision is not None and decision.finished
    assert decision.state.stage is Stage.ARCHIVED
    assert decision.entries[-1].event == "ARCHIVED"
    assert next_wakeup(decision.state) is None


def test_long_term_deadline_goes_to_long_term_maintenance_instead_of_closed():
    """备案 of a 长期坚持 item leads to LONG_TERM_MAINTENANCE, which never archives by itself."""
    s, now = drive_to(Stage.FILING, filing=long_term_filing())

    s = act(s, Action.RECORD_FILING, OFFICE, now)

    assert s.stage is Stage.LONG_TERM_MAINTENANCE
    assert s.closed_at == now
    assert s.archive_at is None
    assert not s.is_open
    assert next_wakeup(s) is None


def test_long_term_maintenance_accepts_progress_reports():
    """The responsible unit keeps reporting while the item is in long-term maintenance."""
    s, now = drive_to(Stage.LONG_TERM_MAINTENANCE)

    after = act(s, Action.REPORT_PROGRESS, RU, now, reason="长效机制运行正常")

    assert after.stage is Stage.LONG_TERM_MAINTENANCE
    assert after.timeline[-1].event == "REPORT_PROGRESS"


def test_immediate_long_term_deadline_also_goes_to_long_term_maintenance():
    """立即整改,长期坚持 ends in LONG_TERM_MAINTENANCE too."""
    from domain.deadlines import parse_deadline

    filing = make_filing(deadline=parse_deadline("立即整改,长期坚持"))

    s, _ = drive_to(Stage.LONG_TERM_MAINTENANCE, filing=filing)

    assert s.stage is Stage.LONG_TERM_MAINTENANCE


def test_unsubstantiated_petition_goes_reply_disclosure_closed():
    """A petition found 不属实 skips rectification: REPLY → DISCLOSURE → CLOSED."""
    s = new_state(make_filing(CaseKind.PETITION))
    s = act(s, Action.TRANSFER, OFFICE)
    s = act(s, Action.ACKNOWLEDGE, RU)
    assert s.stage is Stage.INVESTIGATING

    s = act(s, Action.RECORD_FINDING, RU, finding=Finding.UNSUBSTANTIATED, reason="经核查不属实")
    assert s.stage is Stage.REPLY
    assert s.finding is Finding.UNSUBSTANTIATED

    s = act(s, Action.REPLY, RU, reason="已向举报人反馈核查结果")
    assert s.stage is Stage.DISCLOSURE
    assert s.reply == "已向举报人反馈核查结果"

    s = act(s, Action.DISCLOSE, OFFICE)
    assert s.stage is Stage.CLOSED
    assert s.closed_at == NOW


def test_substantiated_petition_under_simple_policy_replies_after_rectification():
    """Under the SIMPLE petition policy SUBMIT_COMPLETION goes to REPLY, not 初审."""
    s, now = state_in(Stage.RECTIFYING, CaseKind.PETITION)
    assert s.deadline is not None and s.deadline.due_date == date(2025, 4, 15)  # 30 working days

    s = act(s, Action.SUBMIT_COMPLETION, RU, now)

    assert s.stage is Stage.REPLY


def test_substantiated_petition_under_full_policy_takes_the_five_step_closure():
    """Under FULL_5_STEP a petition goes through 初审 and ends CLOSED after 备案."""
    s, now = drive_to(Stage.RECTIFYING, CaseKind.PETITION, policy=full_petition_policy())

    s = act(s, Action.SUBMIT_COMPLETION, RU, now)
    assert s.stage is Stage.PRELIM_REVIEW
    s, now = drive_to(Stage.FILING, CaseKind.PETITION, policy=full_petition_policy())
    s = act(s, Action.RECORD_FILING, OFFICE, now)

    assert s.stage is Stage.CLOSED


def test_warning_film_problem_is_rectified_like_a_feedback_problem():
    """A 警示片 case is acknowledged straight into RECTIFYING."""
    s = new_state(make_filing(CaseKind.WARNING_FILM))

    s = act(act(s, Action.TRANSFER, OFFICE), Action.ACKNOWLEDGE, RU)

    assert s.stage is Stage.RECTIFYING


def test_second_responsible_unit_may_also_act_on_the_case():
    """Every listed responsible unit, not only the first, may act."""
    s, now = state_in(Stage.TRANSFERRED)

    after = act(s, Action.ACKNOWLEDGE, RU2, now)

    assert after.stage is Stage.RECTIFYING


# ------------------------------------------------------------------ send-backs


def test_prelim_reject_sends_back_to_rectifying_with_a_rework_deadline():
    """初审退回: RECTIFYING, cycle+1, due 30 working days later (rework limit)."""
    s, now = state_in(Stage.PRELIM_REVIEW)

    after = act(s, Action.PRELIM_REJECT, LEAD, now, reason="佐证材料不足")

    assert after.stage is Stage.RECTIFYING
    assert after.cycle == s.cycle + 1 == 2
    assert after.deadline is not None
    assert after.deadline.due_date == date(2025, 4, 15)  # 2025-03-03 + 30 working days (清明 4-4 skipped)
    assert date(2025, 4, 4) in after.deadline.explanation.holidays_skipped


def test_prelim_reject_with_a_new_due_date_uses_that_date():
    """A send-back may name the new due date explicitly."""
    s, now = state_in(Stage.PRELIM_REVIEW)

    after = act(s, Action.PRELIM_REJECT, LEAD, now, reason="x", new_due_date=date(2025, 5, 30))

    assert after.deadline is not None and after.deadline.due_date == date(2025, 5, 30)


def test_uphold_objection_sends_back_to_rectifying_and_archives_the_posting():
    """异议成立: RECTIFYING, cycle+1, the objection ruled UPHELD and the posting kept in history."""
    s, now = state_in(Stage.PUBLIC_POSTING)
    s = act(s, Action.OBJECT, PUBLIC, now, reason="仍在排污")

    after = act(s, Action.UPHOLD_OBJECTION, OFFICE, now, reason="经核实异议成立")

    assert after.stage is Stage.RECTIFYING
    assert after.cycle == 2
    assert after.posting is None
    assert after.postings[-1].objections[0].ruling == "UPHELD"
    assert after.deadline is not None and after.deadline.due_date == date(2025, 4, 15)


def test_verify_fail_sends_back_to_rectifying_and_records_the_failed_verification():
    """核查未通过: RECTIFYING, cycle+1, a failed verification record for the cycle."""
    s, now = state_in(Stage.VERIFICATION)

    after = act(s, Action.VERIFY_FAIL, LEAD, now, reason="未通过整改验收", criteria=criteria(met=False))

    assert after.stage is Stage.RECTIFYING
    assert after.cycle == 2
    record = after.verifications[-1]
    assert (record.passed, record.cycle, record.unit) == (False, 1, LEAD.unit)
    assert after.deadline is not None and after.deadline.stage is Stage.RECTIFYING


def test_second_round_after_a_send_back_reaches_closure():
    """After a send-back the case can go round again and close; the cycle stays counted."""
    s, now = state_in(Stage.VERIFICATION)
    s = act(s, Action.VERIFY_FAIL, LEAD, now, reason="未通过")

    s = act(s, Action.SUBMIT_COMPLETION, RU, now)
    s = act(s, Action.PRELIM_PASS, LEAD, now)
    s = wake(s, s.posting.ends_at)  # type: ignore[union-attr]
    later = s.stage_entered_at
    s = act(s, Action.APPLY_CLOSURE, RU, later)
    s = act(s, Action.VERIFY_PASS, LEAD, later, criteria=criteria())
    s = act(s, Action.RECORD_FILING, OFFICE, later)

    assert s.stage is Stage.CLOSED
    assert s.cycle == 2
    assert [v.passed for v in s.verifications] == [False, True]
    assert len(s.postings) == 2


# ------------------------------------------------------------------ posting clock


def test_objection_pauses_the_posting_clock():
    """OBJECT stops the posting clock: no end time, the remaining time kept, no wakeup."""
    s, now = state_in(Stage.PUBLIC_POSTING)
    ends = s.posting.ends_at  # type: ignore[union-attr]
    at = now + timedelta(days=2)

    after = act(s, Action.OBJECT, PUBLIC, at, reason="仍有异味")

    assert after.posting is not None
    assert after.posting.ends_at is None
    assert after.posting.remaining_seconds == (ends - at).total_seconds()
    assert after.posting.open_objection() is not None
    assert next_wakeup(after) is None
    assert on_wakeup(after, ends) is None  # the old end passes without effect


def test_objection_notifies_the_office_and_the_responsible_units():
    """A public objection reaches 整改办 and every responsible unit."""
    s, now = state_in(Stage.PUBLIC_POSTING)

    decision = decide(s, request(Action.OBJECT, PUBLIC, reason="仍有异味"), now)

    assert {(n.recipient_role, n.recipient_unit) for n in decision.notices} == {
        (Role.RECTIFICATION_OFFICE, OFFICE.unit), (Role.RESPONSIBLE_UNIT, RU.unit), (Role.RESPONSIBLE_UNIT, RU2.unit),
    }


def test_dismissing_the_objection_resumes_the_posting_with_the_remaining_time():
    """DISMISS_OBJECTION restarts the clock with exactly the time that was left."""
    s, now = state_in(Stage.PUBLIC_POSTING)
    ends = s.posting.ends_at  # type: ignore[union-attr]
    objected_at = now + timedelta(days=2)
    s = act(s, Action.OBJECT, PUBLIC, objected_at, reason="仍有异味")
    ruled_at = now + timedelta(days=10)

    after = act(s, Action.DISMISS_OBJECTION, OFFICE, ruled_at, reason="异议不成立")

    assert after.stage is Stage.PUBLIC_POSTING
    assert after.posting is not None
    assert after.posting.ends_at == ruled_at + (ends - objected_at)
    assert after.posting.remaining_seconds is None
    assert after.posting.objections[0].ruling == "DISMISSED"
    assert next_wakeup(after) == after.posting.ends_at
    assert wake(after, after.posting.ends_at).stage is Stage.CLOSURE_APPLICATION


def test_posting_stays_paused_while_another_objection_is_open():
    """With two objections, dismissing one keeps the clock stopped until the other is ruled."""
    s, now = state_in(Stage.PUBLIC_POSTING)
    s = act(s, Action.OBJECT, PUBLIC, now, reason="异议一")
    s = act(s, Action.OBJECT, PUBLIC, now, reason="异议二")

    s = act(s, Action.DISMISS_OBJECTION, OFFICE, now, reason="不成立", objection_id="O1")
    assert s.posting is not None and s.posting.ends_at is None
    s = act(s, Action.DISMISS_OBJECTION, OFFICE, now, reason="不成立", objection_id="O2")

    assert s.posting is not None and s.posting.ends_at is not None


def test_posting_end_is_not_due_a_second_early():
    """on_wakeup before the posting end does nothing."""
    s, _ = state_in(Stage.PUBLIC_POSTING)

    assert on_wakeup(s, s.posting.ends_at - timedelta(seconds=1)) is None  # type: ignore[union-attr]


# ------------------------------------------------------------------ reopening


def test_reopen_from_closed_starts_a_new_rectification_cycle():
    """回头看 finds a rebound: CLOSED → RECTIFYING with cycle+1 and a rework deadline."""
    s, now = state_in(Stage.CLOSED)
    at = now + timedelta(days=30)

    after = act(s, Action.REOPEN, OFFICE, at, lookback_finding=LookbackFinding.REBOUND, reason="问题反弹")

    assert after.stage is Stage.RECTIFYING
    assert (after.cycle, after.reopen_count) == (2, 1)
    assert after.closed_at is None and after.archive_at is None
    assert after.deadline is not None and after.deadline.stage is Stage.RECTIFYING
    assert after.timeline[-2].event == "REOPEN"


def test_reopen_from_long_term_maintenance_returns_to_rectifying():
    """A look-back on a long-term item may reopen it as well."""
    s, now = state_in(Stage.LONG_TERM_MAINTENANCE)

    after = act(s, Action.REOPEN, OFFICE, now, lookback_finding=LookbackFinding.NOT_IN_PLACE, reason="整改不到位")

    assert after.stage is Stage.RECTIFYING
    assert after.closed_at is None


def test_archived_case_cannot_be_reopened():
    """After the look-back window the case is archived and REOPEN is refused."""
    s, now = state_in(Stage.ARCHIVED)

    with pytest.raises(InvalidTransitionError):
        decide(s, request(Action.REOPEN, OFFICE, lookback_finding=LookbackFinding.REBOUND, reason="x"), now)


# ------------------------------------------------------------------ accountability


@pytest.mark.parametrize("stage", [Stage.TRANSFERRED, Stage.RECTIFYING, Stage.VERIFICATION, Stage.CLOSED,
                                   Stage.LONG_TERM_MAINTENANCE])
def test_accountability_referral_never_changes_the_stage(stage: Stage):
    """移交问责 path B: the lead drafts, the office verifies and refers; the case stays where it is."""
    s, now = state_in(stage)

    drafted = decide(s, request(Action.REFER_ACCOUNTABILITY, LEAD, referral_path=ReferralPath.FAKE_RECTIFICATION,
                                reason="虚假整改", report_ref="追责建议报告-2"), now)
    assert [(r.path, r.status) for r in drafted.state.referrals] == [
        (ReferralPath.FAKE_RECTIFICATION, ReferralStatus.DRAFT)]
    assert not any(n.recipient_role is Role.DISCIPLINE_COMMISSION for n in drafted.notices)
    decision = decide(drafted.state, request(Action.VERIFY_REFERRAL, OFFICE, referral_id=drafted.state.referrals[0]
                                             .referral_id, reason="核实属实"), now)

    after = decision.state
    assert after.stage is stage
    assert after.deadline == s.deadline
    assert [(r.path, r.status, r.report_ref) for r in after.referrals] == [
        (ReferralPath.FAKE_RECTIFICATION, ReferralStatus.OPEN, "追责建议报告-2")]
    assert any(n.recipient_role is Role.DISCIPLINE_COMMISSION for n in decision.notices)


def test_referral_is_accepted_then_concluded_by_the_commission_without_moving_the_case():
    """纪委监委 accepts and concludes a referral; the case stage never changes."""
    s, now = state_in(Stage.RECTIFYING)
    s = act(s, Action.REFER_ACCOUNTABILITY, OFFICE, now, referral_path=ReferralPath.PERFORMANCE, reason="逾期", report_ref="追责建议报告-1")
    rid = s.referrals[0].referral_id

    s = act(s, Action.ACCEPT_REFERRAL, DISCIPLINE, now, referral_id=rid)
    assert s.referrals[0].status is ReferralStatus.ACCEPTED
    s = act(s, Action.CONCLUDE_REFERRAL, DISCIPLINE, now, referral_id=rid, reason="给予诫勉谈话")

    assert s.stage is Stage.RECTIFYING
    assert (s.referrals[0].status, s.referrals[0].outcome) == (ReferralStatus.CONCLUDED, "给予诫勉谈话")
    assert s.referrals[0].concluded_at == now


def test_referral_ids_are_numbered_per_case():
    """Two referrals on one case get ids <case_no>-R1 and -R2."""
    s, now = state_in(Stage.RECTIFYING)
    for _ in range(2):
        s = act(s, Action.REFER_ACCOUNTABILITY, OFFICE, now, referral_path=ReferralPath.PERFORMANCE, reason="x", report_ref="追责建议报告-1")

    assert [r.referral_id for r in s.referrals] == [f"{s.case_no}-R1", f"{s.case_no}-R2"]


# ------------------------------------------------------------------ notices and misc


def test_transfer_notifies_responsible_lead_and_assisting_units_once_each():
    """交办 reaches every responsible, lead and assisting unit, keyed case:seq:unit."""
    s = new_state()

    decision = decide(s, request(Action.TRANSFER, OFFICE), NOW)

    units = [n.recipient_unit for n in decision.notices]
    assert sorted(units) == sorted(["市生态环境局", "市水利局", "市委办", "市政府办", "市发改委"])
    seq = decision.entries[-1].seq
    assert {n.key for n in decision.notices} == {f"{s.case_no}:{seq}:{u}" for u in units}


def test_second_lead_unit_may_pass_the_preliminary_review():
    """Any listed lead supervising unit may take 初审 decisions."""
    s, now = state_in(Stage.PRELIM_REVIEW)

    after = act(s, Action.PRELIM_PASS, LEAD2, now)

    assert after.stage is Stage.PUBLIC_POSTING


def test_new_case_records_the_policy_version_and_what_is_missing():
    """FILED records the policy snapshot version and the fields missing for transfer."""
    from domain.decide import new_case
    from domain.policy import Policy

    decision = new_case(make_filing(target=""), Policy(version="2099.9"), NOW, OFFICE)

    entry = decision.entries[0]
    assert (entry.event, entry.seq, entry.to_stage) == ("FILED", 1, Stage.REGISTERED)
    assert entry.data["policy_version"] == "2099.9"
    assert entry.data["missing_for_transfer"] == ["target (整改目标)"]
    assert decision.state.policy.version == "2099.9"


def test_transfer_notices_carry_the_due_date_once_it_is_computed():
    """A 交办 notice is written before the deadline exists; the computed due date is added to it."""
    from domain.deadlines import compute_deadline
    from domain.decide import apply_deadline, attach_deadline, decide

    s = new_state()
    dec = decide(s, request(Action.TRANSFER, OFFICE), NOW)
    assert dec.notices and all("Due:" not in n.body for n in dec.notices)
    computed = compute_deadline(dec.deadline_request, calendar())
    notices = attach_deadline(dec.notices, computed)
    assert all(f"期限 Due: {computed.due_date}" in n.body for n in notices)
    assert apply_deadline(dec.state, computed, NOW).state.deadline.due_date == computed.due_date
