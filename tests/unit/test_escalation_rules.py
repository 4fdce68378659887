"""Issue 9 escalation rules: rung modes and proposals, profiles in their own order, stage ladders,
resume after a re-set deadline, de-escalation, referral paths, the supervision office, and the
policy's validation."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError

from activities.policy_source import PolicyFileError, load_policy
from domain.calendar import end_of_day
from domain.decide import decide, next_wakeup, on_wakeup
from domain.enums import (
    RUNG_ORDER,
    Action,
    LadderResume,
    ProposalStatus,
    ReferralPath,
    ReferralStatus,
    Role,
    Rung,
    RungMode,
    Stage,
    rung_level,
)
from domain.errors import InvalidTransitionError, MissingInputError, NotAuthorizedError
from domain.escalation import adopt_rules, mode_of, stage_ladder
from domain.lifecycle import allowed_actions
from domain.model import Actor
from domain.policy import CANONICAL_LADDER, SHIPPED_LADDERS, LadderProfile, LadderRungSpec, Policy
from tests.unit.factories import (
    LEAD,
    NOW,
    OFFICE,
    PLAN_DUE,
    RU,
    SUPERVISION,
    UTC,
    act,
    drive_to,
    make_filing,
    request,
    settle,
    wake,
)

REPORT = "追责建议报告〔2025〕3号"


def _rectifying(policy: Policy | None = None, **filing_kw):
    s, _ = drive_to(Stage.RECTIFYING, filing=make_filing(**filing_kw), policy=policy)
    return s


def _confirm(s, at, actor: Actor = OFFICE):
    p = s.escalation.pending()[0]
    extra = {"report_ref": REPORT} if p.rung is Rung.ACCOUNTABILITY_TRANSFER else {}
    return act(s, Action.CONFIRM_ESCALATION, actor, at, proposal_id=p.proposal_id, reason="同意实施", **extra)


def _climb(s, until: int, confirm: bool = True):
    """Wake the case until `until` rungs took effect (confirming proposals); returns state, clock."""
    at = NOW
    while len(s.escalation.fired) < until:
        at = next_wakeup(s)
        assert at is not None, "the ladder stopped early"
        s = wake(s, at)
        if confirm and s.escalation.pending():
            s = _confirm(s, at)
    return s, at


# ------------------------------------------------------------------ modes and proposals


def test_default_modes_automatic_up_to_listed_supervision_then_proposed():
    """函告 … 挂牌督办 automatic; 约谈, 区域限批, 移交问责 proposed (issue 9 defaults)."""
    s = _rectifying()
    modes = {r: mode_of(s, r) for r in RUNG_ORDER}
    assert [r for r, m in modes.items() if m is RungMode.AUTOMATIC] == list(RUNG_ORDER[:5])
    assert [r for r, m in modes.items() if m is RungMode.PROPOSED] == list(RUNG_ORDER[5:])


def test_a_proposal_stays_pending_and_visible_and_holds_the_ladder_until_decided():
    """At 约谈 the engine records a proposal with facts; nothing further happens on the clock."""
    s, at = _climb(_rectifying(), 5)
    at = next_wakeup(s)
    decision = on_wakeup(s, at)  # type: ignore[arg-type]
    s = settle(decision, at)  # type: ignore[arg-type]

    [p] = s.escalation.pending()
    assert (p.rung, p.status, p.proposed_by) == (Rung.SUMMONS, ProposalStatus.PENDING, "system")
    assert p.facts["rungs_in_effect"] == [r.value for r in RUNG_ORDER[:5]]
    assert p.facts["measures_done"] == "0/2" and p.facts["scheduled"] is True
    assert s.escalation.level == 5  # 约谈 is not in effect
    assert next_wakeup(s) is None
    assert on_wakeup(s, datetime(2026, 12, 31, tzinfo=UTC)) is None  # still pending a year on
    office_actions = allowed_actions(s, OFFICE)
    assert Action.CONFIRM_ESCALATION in office_actions and Action.DISMISS_ESCALATION in office_actions


def test_a_confirmed_proposal_takes_effect_with_the_confirmers_reason_and_notices():
    s, _ = _climb(_rectifying(), 5)
    at = next_wakeup(s)
    s = wake(s, at)  # type: ignore[arg-type]

    decision = decide(s, request(Action.CONFIRM_ESCALATION, SUPERVISION, proposal_id="P1", reason="约谈县政府"), at)

    after = decision.state
    assert after.escalation.level == rung_level(Rung.SUMMONS)
    assert after.escalation.proposals[0].status is ProposalStatus.CONFIRMED
    assert after.escalation.proposals[0].decided_by == SUPERVISION.user_id
    assert after.escalation.fired[-1].rung is Rung.SUMMONS and not after.escalation.fired[-1].automatic
    assert decision.entries[-1].event == "CONFIRM_ESCALATION" and decision.entries[-1].reason == "约谈县政府"
    assert {n.recipient_unit for n in decision.notices} >= {"市生态环境局", "市委办", "整改办"}
    assert next_wakeup(after) == end_of_day(date(2025, 9, 1))  # 区域限批 next


def test_a_dismissed_proposal_never_takes_effect_and_the_ladder_goes_on():
    s, _ = _climb(_rectifying(), 5)
    at = next_wakeup(s)
    s = wake(s, at)  # type: ignore[arg-type]

    with pytest.raises(MissingInputError, match="reason"):
        decide(s, request(Action.DISMISS_ESCALATION, OFFICE, proposal_id="P1"), at)
    after = act(s, Action.DISMISS_ESCALATION, OFFICE, at, proposal_id="P1", reason="已签订整改承诺")

    p = after.escalation.proposals[0]
    assert (p.status, p.decision_reason) == (ProposalStatus.DISMISSED, "已签订整改承诺")
    assert after.escalation.level == 5 and Rung.SUMMONS not in [f.rung for f in after.escalation.fired]
    assert after.timeline[-1].event == "DISMISS_ESCALATION"
    with pytest.raises(InvalidTransitionError):
        decide(after, request(Action.CONFIRM_ESCALATION, OFFICE, proposal_id="P1", reason="x"), at)
    assert next_wakeup(after) == end_of_day(date(2025, 9, 1))


def test_modes_are_configurable_per_rung_in_the_policy():
    """A profile that makes 警示 PROPOSED and 约谈 AUTOMATIC is followed as written."""
    rungs = [spec.model_copy(update={"mode": {Rung.WARNING: RungMode.PROPOSED, Rung.SUMMONS: RungMode.AUTOMATIC}
                                      .get(spec.rung, spec.mode)}) for spec in CANONICAL_LADDER.rungs]
    policy = Policy(ladders={"canonical": CANONICAL_LADDER.model_copy(update={"rungs": rungs})})
    s = _rectifying(policy)

    s = wake(s, next_wakeup(s))  # type: ignore[arg-type]  # 函告
    s = wake(s, next_wakeup(s))  # type: ignore[arg-type]  # 警示: proposed
    assert [p.rung for p in s.escalation.pending()] == [Rung.WARNING]
    s = _confirm(s, end_of_day(date(2025, 7, 7)))
    s, _ = _climb(s, 6, confirm=False)
    assert s.escalation.fired[-1].rung is Rung.SUMMONS and s.escalation.fired[-1].automatic


def test_the_lead_may_propose_but_not_confirm_and_a_supervision_office_may_apply():
    s = _rectifying()
    s = act(s, Action.PROPOSE_RUNG, LEAD, NOW, rung=Rung.SUMMONS, reason="多次调度无进展")

    assert [(p.rung, p.proposed_role) for p in s.escalation.pending()] == [(Rung.SUMMONS, Role.LEAD_SUPERVISOR)]
    assert next_wakeup(s) == end_of_day(PLAN_DUE)  # a hand proposal does not hold the ladder
    with pytest.raises(NotAuthorizedError):
        decide(s, request(Action.CONFIRM_ESCALATION, LEAD, proposal_id="P1", reason="x"), NOW)
    other = Actor(user_id="x", role=Role.SUPERVISION_OFFICE, unit="县督查室")
    with pytest.raises(NotAuthorizedError, match="not a supervision office"):
        decide(s, request(Action.CONFIRM_ESCALATION, other, proposal_id="P1", reason="x"), NOW)
    after = act(s, Action.APPLY_RUNG, SUPERVISION, NOW, rung=Rung.SUMMONS, reason="联合督查")
    assert after.escalation.level == 6
    assert after.escalation.proposals[0].status is ProposalStatus.CONFIRMED  # the applied rung settles it


# ------------------------------------------------------------------ profiles in their own order


@pytest.mark.parametrize("profile", SHIPPED_LADDERS, ids=lambda p: p.name)
def test_each_shipped_profile_fires_every_rung_in_its_own_order(profile: LadderProfile):
    """City 000:427, Henan 000:310, Summer Offensive 000:411, county 001 @3057, … all rungs, in order."""
    s = _rectifying(ladder_profile=profile.name)
    assert [r.rung for r in s.deadline.escalation_schedule] == profile.order()  # type: ignore[union-attr]

    s, _ = _climb(s, len(profile.rungs))

    assert [f.rung for f in s.escalation.fired] == profile.order()
    assert next_wakeup(s) is None
    refer = Rung.ACCOUNTABILITY_TRANSFER in profile.order()
    assert [r.path for r in s.referrals] == ([ReferralPath.PERFORMANCE] if refer else [])


def test_seed_profiles_are_shipped_in_the_seed_order():
    by_name = {p.name: p.order() for p in SHIPPED_LADDERS}
    assert by_name["city_deadline"][:4] == [
        Rung.SUMMONS, Rung.CIRCULAR, Rung.LISTED_SUPERVISION, Rung.REGIONAL_APPROVAL_RESTRICTION]
    assert by_name["henan_office"] == [Rung.NOTICE_LETTER, Rung.SUPERVISION_ORDER, Rung.CIRCULAR,
                                       Rung.LEADERSHIP_REPORT, Rung.ACCOUNTABILITY_TRANSFER]
    assert by_name["summer_offensive"] == [Rung.WARNING, Rung.CIRCULAR, Rung.SUPERVISION_ORDER,
                                           Rung.LISTED_SUPERVISION, Rung.SUMMONS, Rung.REGIONAL_APPROVAL_RESTRICTION]
    assert by_name["county"] == [Rung.CIRCULAR, Rung.SUPERVISION_ORDER, Rung.SUMMONS]


# ------------------------------------------------------------------ stage ladders


def test_procedural_stages_get_only_the_lower_rungs_and_rectification_the_whole_ladder():
    s = _rectifying()
    assert [r.rung for r in stage_ladder(s, Stage.RECTIFYING)] == list(RUNG_ORDER)
    for stage in (Stage.TRANSFERRED, Stage.INVESTIGATING, Stage.CLOSURE_APPLICATION, Stage.REPLY):
        assert [r.rung for r in stage_ladder(s, stage)] == list(RUNG_ORDER[:4]), stage


def test_an_unacknowledged_transfer_never_reaches_the_discipline_commission_by_itself():
    """签收 overdue for two years: reminders up to 督办, no proposal of 移交问责, no referral, no
    notice to 纪委监委."""
    s, now = drive_to(Stage.TRANSFERRED)
    notices = []
    while (at := next_wakeup(s)) is not None and at < now + timedelta(days=730):
        decision = on_wakeup(s, at)
        assert decision is not None
        notices += decision.notices
        s = settle(decision, at)

    assert [f.rung for f in s.escalation.fired] == list(RUNG_ORDER[:4])
    assert s.escalation.proposals == [] and s.referrals == []
    assert not any(n.recipient_role is Role.DISCIPLINE_COMMISSION for n in notices)
    assert s.stage is Stage.TRANSFERRED


def test_even_a_full_ladder_on_transfer_only_proposes_and_never_refers():
    """With the ceiling removed from 签收, the timer still stops at proposals: nobody is referred."""
    s, now = drive_to(Stage.TRANSFERRED, policy=Policy(stage_ladder_ceilings={}))
    notices = []
    for _ in range(50):
        if (at := next_wakeup(s)) is None:
            break
        decision = on_wakeup(s, at)
        notices += decision.notices  # type: ignore[union-attr]
        s = settle(decision, at)  # type: ignore[arg-type]
        for p in s.escalation.pending():
            if p.rung is not Rung.ACCOUNTABILITY_TRANSFER:
                s = _confirm(s, at)

    assert [p.rung for p in s.escalation.pending()] == [Rung.ACCOUNTABILITY_TRANSFER]
    assert s.referrals == []
    assert not any(n.recipient_role is Role.DISCIPLINE_COMMISSION for n in notices)


def test_a_stage_ceiling_is_configurable():
    policy = Policy(stage_ladder_ceilings={Stage.RECTIFYING: Rung.CIRCULAR})
    s = _rectifying(policy)
    assert [r.rung for r in s.deadline.escalation_schedule] == list(RUNG_ORDER[:3])  # type: ignore[union-attr]


# ------------------------------------------------------------------ resume and de-escalation


def _to_verification_at_supervision_order():
    s, at = _climb(_rectifying(), 4)  # 督办 reached on 2025-07-21
    at += timedelta(hours=1)
    for action, actor in ((Action.SUBMIT_COMPLETION, RU), (Action.PRELIM_PASS, LEAD)):
        s = act(s, action, actor, at)
    at = s.posting.ends_at  # type: ignore[union-attr]
    s = wake(s, at)
    s = act(s, Action.APPLY_CLOSURE, RU, at)
    assert s.stage is Stage.VERIFICATION and s.escalation.level == 0
    return s, at


def test_after_a_failed_verification_the_ladder_resumes_at_the_rung_reached():
    s, at = _to_verification_at_supervision_order()

    decision = decide(s, request(Action.VERIFY_FAIL, LEAD, reason="未通过整改验收"), at)
    after = settle(decision, at)

    assert "ESCALATION_RESUMED" in [e.event for e in decision.entries]
    assert after.stage is Stage.RECTIFYING and after.escalation.level == rung_level(Rung.SUPERVISION_ORDER)
    nxt = next_wakeup(after)
    assert nxt is not None and nxt > after.deadline.due_at  # type: ignore[union-attr]
    after = wake(after, nxt)
    assert after.escalation.fired[-1].rung is Rung.LISTED_SUPERVISION  # not 函告 again


def test_an_upheld_objection_resumes_the_ladder_too():
    s, at = _climb(_rectifying(), 3)
    at += timedelta(hours=1)
    s = act(act(s, Action.SUBMIT_COMPLETION, RU, at), Action.PRELIM_PASS, LEAD, at)
    s = act(s, Action.OBJECT, Actor(user_id="c", role=Role.PUBLIC), at, reason="仍有偷排")
    s = act(s, Action.UPHOLD_OBJECTION, OFFICE, at, reason="属实")
    assert s.stage is Stage.RECTIFYING and s.escalation.current is Rung.CIRCULAR
    s = wake(s, next_wakeup(s))  # type: ignore[arg-type]
    assert s.escalation.fired[-1].rung is Rung.SUPERVISION_ORDER


def test_resume_policy_restart_climbs_from_the_first_rung():
    s, at = _climb(_rectifying(Policy(ladder_resume=LadderResume.RESTART)), 4)
    at += timedelta(hours=1)
    s = act(s, Action.SUBMIT_COMPLETION, RU, at)
    s = act(s, Action.PRELIM_REJECT, LEAD, at, reason="证据不足")
    assert s.escalation.level == 0
    s = wake(s, next_wakeup(s))  # type: ignore[arg-type]
    assert s.escalation.fired[-1].rung is Rung.NOTICE_LETTER


def test_the_office_de_escalates_with_a_reason_and_the_ladder_holds():
    s, at = _climb(_rectifying(), 4)
    at += timedelta(hours=1)

    with pytest.raises(InvalidTransitionError, match="goes down"):
        decide(s, request(Action.DE_ESCALATE, OFFICE, rung=Rung.LISTED_SUPERVISION, reason="x"), at)
    with pytest.raises(NotAuthorizedError):
        decide(s, request(Action.DE_ESCALATE, SUPERVISION, rung=Rung.WARNING, reason="x"), at)
    decision = decide(s, request(Action.DE_ESCALATE, OFFICE, rung=Rung.WARNING, reason="整改取得实质进展"), at)
    after = settle(decision, at)

    entry = decision.entries[-1]
    assert (entry.event, entry.reason, entry.data["from_level"], entry.data["to_level"]) == (
        "DE_ESCALATE", "整改取得实质进展", 4, 2)
    assert after.escalation.level == 2 and after.escalation.current is Rung.WARNING
    assert next_wakeup(after) is None  # the current deadline's ladder climbs no further


def test_de_escalation_with_a_new_due_date_resumes_after_the_lowered_rung():
    s, at = _climb(_rectifying(), 4)
    at += timedelta(hours=1)

    after = act(s, Action.DE_ESCALATE, OFFICE, at, rung=Rung.WARNING, reason="给予合理整改期",
                new_due_date=date(2025, 9, 30))

    assert after.deadline is not None and after.deadline.due_date == date(2025, 9, 30)
    after = wake(after, next_wakeup(after))  # type: ignore[arg-type]
    assert after.escalation.fired[-1].rung is Rung.CIRCULAR and after.escalation.level == 3


# ------------------------------------------------------------------ referral paths (§4.6)


def test_path_a_by_a_supervision_office_or_the_lead_with_a_report():
    s = _rectifying()
    with pytest.raises(MissingInputError, match="report_ref"):
        decide(s, request(Action.REFER_ACCOUNTABILITY, SUPERVISION, referral_path=ReferralPath.PERFORMANCE,
                          reason="整改不力"), NOW)
    for actor in (SUPERVISION, LEAD, OFFICE):
        s = act(s, Action.REFER_ACCOUNTABILITY, actor, NOW, referral_path=ReferralPath.PERFORMANCE,
                reason="整改不力", report_ref=REPORT)
    assert [(r.status, r.report_ref) for r in s.referrals] == [(ReferralStatus.OPEN, REPORT)] * 3
    assert s.stage is Stage.RECTIFYING


def test_path_b_is_drafted_by_the_lead_and_verified_by_the_office():
    s = _rectifying()
    with pytest.raises(NotAuthorizedError, match="FAKE_RECTIFICATION"):
        decide(s, request(Action.REFER_ACCOUNTABILITY, OFFICE, referral_path=ReferralPath.FAKE_RECTIFICATION,
                          reason="虚假整改", report_ref=REPORT), NOW)
    s = act(s, Action.REFER_ACCOUNTABILITY, LEAD, NOW, referral_path=ReferralPath.FAKE_RECTIFICATION,
            reason="虚假整改", report_ref=REPORT)
    assert s.referrals[0].status is ReferralStatus.DRAFT and s.referrals[0].drafted_by == LEAD.user_id
    s = act(s, Action.VERIFY_REFERRAL, OFFICE, NOW, referral_id=s.referrals[0].referral_id, reason="核实属实")
    assert s.referrals[0].status is ReferralStatus.OPEN and s.referrals[0].referred_by == OFFICE.user_id


def test_the_office_returns_a_path_b_draft_to_the_lead_who_may_draft_again():
    """RETURN_REFERRAL: not verified, never referred, the lead told why; a new draft is a new referral."""
    s = _rectifying()
    s = act(s, Action.REFER_ACCOUNTABILITY, LEAD, NOW, referral_path=ReferralPath.FAKE_RECTIFICATION,
            reason="虚假整改", report_ref=REPORT)
    first = s.referrals[0].referral_id
    for actor in (LEAD, SUPERVISION):
        with pytest.raises(NotAuthorizedError):
            decide(s, request(Action.RETURN_REFERRAL, actor, referral_id=first, reason="证据不足"), NOW)
    with pytest.raises(MissingInputError, match="reason"):
        decide(s, request(Action.RETURN_REFERRAL, OFFICE, referral_id=first, reason=""), NOW)
    d = decide(s, request(Action.RETURN_REFERRAL, OFFICE, referral_id=first, reason="证据不足,请补充核查材料"), NOW)
    entry = d.entries[-1]
    assert entry.event == "RETURN_REFERRAL" and entry.data["status"] == ReferralStatus.RETURNED
    assert {n.recipient_role for n in d.notices} == {Role.LEAD_SUPERVISOR}
    s = d.state
    assert s.referrals[0].status is ReferralStatus.RETURNED and s.referrals[0].referred_by == ""
    # A returned draft can be neither verified nor returned again.
    for again in (Action.VERIFY_REFERRAL, Action.RETURN_REFERRAL):
        with pytest.raises(InvalidTransitionError):
            decide(s, request(again, OFFICE, referral_id=first, reason="x"), NOW)
    s = act(s, Action.REFER_ACCOUNTABILITY, LEAD, NOW, referral_path=ReferralPath.FAKE_RECTIFICATION,
            reason="补充核查后再次提出", report_ref=REPORT + "-2")
    second = s.referrals[1].referral_id
    assert second != first and s.referrals[1].status is ReferralStatus.DRAFT
    s = act(s, Action.VERIFY_REFERRAL, OFFICE, NOW, referral_id=second, reason="核实属实")
    assert [r.status for r in s.referrals] == [ReferralStatus.RETURNED, ReferralStatus.OPEN]
    assert s.stage is Stage.RECTIFYING


def test_path_c_records_the_inspection_teams_dossier_and_the_legacy_path_is_refused():
    s = _rectifying()
    with pytest.raises(NotAuthorizedError, match="INSPECTION_DOSSIER"):
        decide(s, request(Action.REFER_ACCOUNTABILITY, LEAD, referral_path=ReferralPath.INSPECTION_DOSSIER,
                          reason="督察组移交", report_ref="案卷-1"), NOW)
    with pytest.raises(NotAuthorizedError, match="legacy"):
        decide(s, request(Action.REFER_ACCOUNTABILITY, OFFICE, referral_path=ReferralPath.ESCALATION,
                          reason="x", report_ref="x"), NOW)
    s = act(s, Action.REFER_ACCOUNTABILITY, OFFICE, NOW, referral_path=ReferralPath.INSPECTION_DOSSIER,
            reason="督察组移交责任追究问题清单", report_ref="案卷-1")
    assert [(r.path, r.report_ref) for r in s.referrals] == [(ReferralPath.INSPECTION_DOSSIER, "案卷-1")]


# ------------------------------------------------------------------ policy validation


def _profile(*rungs: dict) -> dict:
    return {"name": "my_county", "rungs": list(rungs)}


@pytest.mark.parametrize(
    ("rungs", "message"),
    [
        ([{"rung": "CIRCULAR", "delay_days": 0}, {"rung": "CIRCULAR", "delay_days": 5}],
         "'my_county': rung CIRCULAR .* appears twice"),
        ([{"rung": "CIRCULAR", "delay_days": 5}, {"rung": "SUMMONS", "delay_days": 5}],
         "'my_county': rung SUMMONS .* does not grow"),
        ([{"rung": "CIRCULAR", "delay_days": 0}, {"rung": "PUBLIC_SHAMING", "delay_days": 5}],
         "'my_county': rung 2 'PUBLIC_SHAMING' is not a known rung"),
        ([{"rung": "ACCOUNTABILITY_TRANSFER", "delay_days": 0, "mode": "AUTOMATIC"}],
         "'my_county': rung ACCOUNTABILITY_TRANSFER .* cannot be AUTOMATIC"),
    ],
    ids=["duplicate", "delays-not-growing", "unknown-rung", "forbidden-mode"],
)
def test_a_bad_profile_is_refused_naming_the_profile_and_the_rung(rungs, message, tmp_path: Path):
    with pytest.raises(ValidationError, match=message):
        Policy.model_validate({"ladders": {"my_county": _profile(*rungs)}})
    p = tmp_path / "policy.json"
    p.write_text(json.dumps({"ladders": {"my_county": _profile(*rungs)}}))
    with pytest.raises(PolicyFileError, match="my_county"):
        load_policy(p)


def test_the_worker_refuses_a_bad_policy_file_when_it_starts(tmp_path: Path):
    from activities.case_activities import CaseActivities

    p = tmp_path / "policy.json"
    p.write_text(json.dumps({"ladders": {"my_county": _profile(
        {"rung": "CIRCULAR", "delay_days": 3}, {"rung": "SUMMONS", "delay_days": 3})}}))
    with pytest.raises(PolicyFileError, match="'my_county': rung SUMMONS"):
        CaseActivities(None, str(p))  # type: ignore[arg-type]


def test_a_profile_filed_under_another_name_is_refused():
    with pytest.raises(ValidationError, match="'my_county' is filed under the key 'county'"):
        Policy.model_validate({"ladders": {"county": _profile({"rung": "CIRCULAR", "delay_days": 0})}})


def test_a_profile_in_its_own_order_is_accepted():
    profile = LadderProfile(name="x", rungs=[LadderRungSpec(rung=Rung.SUMMONS, delay_days=0),
                                             LadderRungSpec(rung=Rung.NOTICE_LETTER, delay_days=3)])
    assert profile.order() == [Rung.SUMMONS, Rung.NOTICE_LETTER]


# ------------------------------------------------------------------ cases under the old rules


def test_a_case_under_the_old_rules_climbs_by_level_but_never_refers_by_itself():
    """A run begun before issue 9 (rules 1) keeps its level-based ladder (same timers, same
    commands on replay); 移交问责 is only proposed."""
    s = _rectifying()
    s.escalation.rules = 1
    for _ in range(8):
        s = wake(s, next_wakeup(s))  # type: ignore[arg-type]

    assert s.escalation.level == 8 and next_wakeup(s) is None
    assert s.referrals == []
    assert [p.rung for p in s.escalation.pending()][-1] is Rung.ACCOUNTABILITY_TRANSFER


def test_adopting_the_new_rules_keeps_the_rung_in_effect():
    s = _rectifying()
    s.escalation.rules = 1
    for _ in range(3):
        s = wake(s, next_wakeup(s))  # type: ignore[arg-type]

    adopt_rules(s, patched=True)

    assert (s.escalation.rules, s.escalation.current, s.escalation.step) == (2, Rung.CIRCULAR, 3)
    assert wake(s, next_wakeup(s)).escalation.fired[-1].rung is Rung.SUPERVISION_ORDER  # type: ignore[arg-type]
