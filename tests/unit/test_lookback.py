"""domain/lookback*.py: selection, sampling, findings, reminders, read scoping, bad input (pure)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from pydantic import ValidationError

from domain.calendar import WorkingCalendar
from domain.enums import ReferralPath, Role
from domain.errors import DuplicateRequestError, InvalidTransitionError, NotAuthorizedError
from domain.lookback import (
    CampaignFinding,
    CampaignSpec,
    CampaignStage,
    Candidate,
    CloseRequest,
    FindingRequest,
    LookbackPolicy,
    ReopenOutcome,
    ScheduleRequest,
    SelectionCriteria,
    SelectRequest,
    apply_reopen,
    apply_schedule,
    compute_schedule,
    decide_close,
    decide_finding,
    decide_select,
    new_campaign,
    next_wakeup,
    on_wakeup,
)
from domain.lookback_rules import CampaignRead, campaign_read, draw_sample, visible_items
from domain.model import Actor
from domain.visibility import Reader

NOW = datetime(2026, 6, 1, 2, 0, tzinfo=UTC)
OFFICE = Actor(user_id="office", role=Role.RECTIFICATION_OFFICE, unit="整改办")
LEAD = Actor(user_id="lead", role=Role.LEAD_SUPERVISOR, unit="市生态环境局")
OTHER_LEAD = Actor(user_id="lead2", role=Role.LEAD_SUPERVISOR, unit="市林业局")
DCS = Actor(user_id="dcs", role=Role.SUPERVISION_OFFICE, unit="市委督查室")
RU = Actor(user_id="ru", role=Role.RESPONSIBLE_UNIT, unit="蓝山县人民政府")
CAL = WorkingCalendar(version="test", first_year=2026, last_year=2026, holidays={date(2026, 6, 19)})


def cand(n: int, stage: str = "CLOSED", unit: str = "蓝山县人民政府", rnd: str = "第二轮") -> Candidate:
    return Candidate(case_no=f"C-{n:03d}", title=f"问题{n}", stage=stage, responsible_units=[unit],
                     lead_supervising_units=["市生态环境局"], inspection_round=rnd, programme_id="P1")


def spec(**kw: object) -> CampaignSpec:
    base = dict(campaign_id="LB1", name="回头看", basis="000:446", unannounced=True, start=date(2026, 6, 1),
                end=date(2026, 6, 30), programme_id="P1")
    return CampaignSpec(**(base | kw))  # type: ignore[arg-type]


def visiting(cands: list[Candidate] | None = None):  # type: ignore[no-untyped-def]
    d = new_campaign(spec(), LookbackPolicy(), NOW, OFFICE)
    s = apply_schedule(d.state, compute_schedule(d.schedule, CAL), NOW).state
    return decide_select(s, SelectRequest(actor=OFFICE, request_id="sel"), cands or [cand(i) for i in range(5)],
                         7, NOW).state


def test_sample_is_deterministic_whatever_the_order_and_recorded() -> None:
    nos = [f"C-{i:03d}" for i in range(50)]
    a = draw_sample(nos, 10, 1234)
    assert a == draw_sample(list(reversed(nos)), 10, 1234) == sorted(a) and len(a) == 10
    assert draw_sample(nos, 10, 1235) != a
    s = new_campaign(spec(), LookbackPolicy(), NOW, OFFICE).state
    s.schedule_pending = False
    cands = [cand(i) for i in range(50)]
    one = decide_select(s, SelectRequest(actor=OFFICE, request_id="r", criteria=SelectionCriteria(sample_size=10)),
                        cands, 1234, NOW)
    two = decide_select(s, SelectRequest(actor=OFFICE, request_id="r", criteria=SelectionCriteria(sample_size=10)),
                        list(reversed(cands)), 1234, NOW)
    assert [i.case_no for i in one.state.items] == [i.case_no for i in two.state.items] == a
    assert one.state.criteria.seed == 1234 and one.state.population == 50
    assert one.entries[0].data["sampled"] is True and one.entries[0].data["case_nos"] == a
    assert not one.notices  # 四不两直: nobody is told which cases were drawn


def test_selection_filters_done_stages_units_county_round() -> None:
    cands = [cand(1), cand(2, stage="RECTIFYING"), cand(3, stage="ARCHIVED"), cand(4, stage="LONG_TERM_MAINTENANCE"),
             cand(5, unit="祁阳市人民政府"), cand(6, rnd="第一轮")]
    s = new_campaign(spec(), LookbackPolicy(), NOW, OFFICE).state
    pick = lambda **c: [i.case_no for i in decide_select(s, SelectRequest(  # noqa: E731
        actor=OFFICE, request_id="r", criteria=SelectionCriteria(**c)), cands, 1, NOW).state.items]
    assert pick() == ["C-001", "C-003", "C-004", "C-005", "C-006"]
    assert pick(county="祁阳") == ["C-005"]
    assert pick(units=["蓝山县人民政府"], inspection_round="第二轮") == ["C-001", "C-003", "C-004"]
    assert pick(programme_id="OTHER") == []


def test_one_finding_per_case_and_reopening_findings_propose_referrals() -> None:
    s = visiting()
    d = decide_finding(s, FindingRequest(actor=LEAD, request_id="f1", case_no="C-000", finding=CampaignFinding.FAKE,
                                         evidence="资料造假"), NOW)
    assert [e.event for e in d.entries] == ["FINDING_RECORDED", "REFERRAL_PROPOSED"]
    order = d.reopen[0]
    assert order.actor == OFFICE and order.request_id == "lookback-LB1-" + str(d.entries[0].seq)
    assert order.lookback_finding.value == "NOT_IN_PLACE" and "虚假整改" in order.reason
    assert d.state.item("C-000").referral_proposed is ReferralPath.FAKE_RECTIFICATION
    assert {n.recipient_unit for n in d.notices} == {"整改办", "市生态环境局"}  # path B: the lead drafts
    with pytest.raises(InvalidTransitionError, match="already has its finding"):
        decide_finding(d.state, FindingRequest(actor=OFFICE, request_id="f2", case_no="C-000",
                                               finding=CampaignFinding.IN_PLACE, evidence="x"), NOW)
    with pytest.raises(DuplicateRequestError):
        decide_finding(d.state, FindingRequest(actor=LEAD, request_id="f1", case_no="C-001",
                                               finding=CampaignFinding.IN_PLACE, evidence="x"), NOW)
    r = apply_reopen(d.state, ReopenOutcome(case_no="C-000", ok=True, due_date=date(2026, 7, 13)), order.seq, NOW)
    assert r.entries[0].event == "CASE_REOPENED" and r.state.stage is CampaignStage.VISITING


def test_who_may_record_a_finding() -> None:
    s = visiting()
    for actor in (RU, OTHER_LEAD, Actor(user_id="x", role=Role.RECTIFICATION_OFFICE, unit="别的单位"),
                  Actor(user_id="a", role=Role.AUDITOR, unit="审计组")):
        with pytest.raises(NotAuthorizedError):
            decide_finding(s, FindingRequest(actor=actor, request_id="f", case_no="C-001",
                                             finding=CampaignFinding.IN_PLACE, evidence="x"), NOW)
    for actor in (OFFICE, LEAD, DCS):
        decide_finding(s, FindingRequest(actor=actor, request_id="f", case_no="C-001",
                                         finding=CampaignFinding.IN_PLACE, evidence="x"), NOW)
    with pytest.raises(NotAuthorizedError):
        decide_close(s, CloseRequest(actor=LEAD, request_id="c"), NOW)
    with pytest.raises(NotAuthorizedError):
        new_campaign(spec(), LookbackPolicy(), NOW, LEAD)


def test_all_visited_closes_and_reminders_count_working_days() -> None:
    s = visiting([cand(1)])
    assert [r.fire_date for r in s.reminders] == [date(2026, 6, 23), date(2026, 7, 1)]  # 5 working days before 6-30
    assert next_wakeup(s) == s.reminders[0].fire_at
    woken = on_wakeup(s, s.reminders[0].fire_at + timedelta(minutes=1))
    assert woken.entries[0].event == "REMINDER" and "C-001" in woken.notices[0].body
    d = decide_finding(woken.state, FindingRequest(actor=OFFICE, request_id="f", case_no="C-001",
                                                   finding=CampaignFinding.IN_PLACE, evidence="到位"), NOW)
    from domain.lookback import after_finding

    closed = after_finding(d.state, NOW)
    assert closed.state.stage is CampaignStage.CLOSED and closed.entries[-1].data["report"]["visited"] == 1
    assert next_wakeup(closed.state) is None


def test_schedule_skips_past_reminders() -> None:
    sched = compute_schedule(ScheduleRequest(campaign_id="x", end=date(2026, 6, 3), working_days_before=[5]), CAL)
    s = new_campaign(spec(), LookbackPolicy(), NOW, OFFICE).state
    applied = apply_schedule(s, sched, NOW).state
    assert [r.done for r in applied.reminders] == [True, False]


def test_read_scoping_denies_by_default() -> None:
    p = LookbackPolicy()
    s = visiting([cand(1), Candidate(case_no="C-9", stage="CLOSED", lead_supervising_units=["市林业局"], programme_id="P1")])
    assert campaign_read(Reader("o", "整改办", (Role.RECTIFICATION_OFFICE,)), p) is CampaignRead.WHOLE
    assert campaign_read(Reader("o", "别处", (Role.RECTIFICATION_OFFICE,)), p) is None
    assert campaign_read(Reader("a", "审计组", (Role.AUDITOR,)), p) is CampaignRead.WHOLE
    for role in (Role.RESPONSIBLE_UNIT, Role.PUBLIC, Role.DISCIPLINE_COMMISSION, Role.SYSTEM, Role.ASSIST_SUPERVISOR):
        assert campaign_read(Reader("u", "蓝山县人民政府", (role,)), p) is None
    lead = Reader("l", "市林业局", (Role.LEAD_SUPERVISOR,))
    assert [i.case_no for i in visible_items(lead, p, s.items)] == ["C-9"]


@pytest.mark.parametrize("field,value,needle", [
    ("evidence", "现场\x00核查", "U+0000"),
    ("evidence", "长" * 5000, "at most"),
    ("case_no", "C-1\x07", "U+0007"),
])
def test_bad_finding_input_is_refused_with_a_clear_error(field: str, value: str, needle: str) -> None:
    kw = dict(actor=OFFICE, request_id="r", case_no="C-1", finding="IN_PLACE", evidence="ok") | {field: value}
    with pytest.raises(ValidationError) as e:
        FindingRequest(**kw)  # type: ignore[arg-type]
    assert field in str(e.value) and needle in str(e.value)


def test_bad_campaign_spec_is_refused() -> None:
    with pytest.raises(ValidationError, match="U\\+0000"):
        spec(name="回头\x00看")
    with pytest.raises(ValidationError, match="before start"):
        spec(end=date(2026, 5, 1))
    with pytest.raises(ValidationError, match="campaign_id"):
        spec(campaign_id="../x")


def test_policy_file_lookback_key_and_its_errors(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import json

    from temporalio.exceptions import ApplicationError

    from activities.lookback_activities import load_lookback_policy

    f = tmp_path / "policy.json"
    f.write_text(json.dumps({"office_unit": "市整改办", "lookback": {"reminder_working_days_before": [10, 3],
                                                                     "reopen_working_days": 20}}), encoding="utf-8")
    p = load_lookback_policy(str(f))
    assert p.reminder_working_days_before == [10, 3] and p.reopen_working_days == 20 and p.office_unit == "市整改办"
    f.write_text(json.dumps({"lookback": {"reminder_working_days_before": [0]}}), encoding="utf-8")
    with pytest.raises(ApplicationError, match="at least 1 working day"):
        load_lookback_policy(str(f))
