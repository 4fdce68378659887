"""Read scoping as domain data (domain/visibility.py): who sees which cases and which parts."""

from __future__ import annotations

import pytest

from domain.enums import Role, Stage
from domain.visibility import (
    FILING_FIELDS,
    READ_RULES,
    ROW_FIELDS,
    CaseFacts,
    HomeUnits,
    Part,
    Reader,
    View,
    ledger_entry_view,
    may_view,
    objections_view,
    parts_for,
    pick,
)

HOME = HomeUnits(office="整改办", discipline="纪委监委")
CASE = CaseFacts(stage=Stage.RECTIFYING.value, responsible_units=("蓝山县人民政府",),
                 lead_supervising_units=("市生态环境局", "市林业局"), assisting_units=("市水利局",))
REFERRED = CaseFacts(stage=Stage.RECTIFYING.value, responsible_units=("蓝山县人民政府",),
                     lead_supervising_units=("市生态环境局",), has_referrals=True)
POSTING = CaseFacts(stage=Stage.PUBLIC_POSTING.value, responsible_units=("蓝山县人民政府",),
                    lead_supervising_units=("市生态环境局",))


def reader(role: Role, unit: str, user: str = "u1") -> Reader:
    return Reader(user_id=user, unit=unit, roles=(role,))


OFFICE = reader(Role.RECTIFICATION_OFFICE, "整改办")
AUDITOR = reader(Role.AUDITOR, "审计组")
RU = reader(Role.RESPONSIBLE_UNIT, "蓝山县人民政府")
OTHER_RU = reader(Role.RESPONSIBLE_UNIT, "宁远县人民政府")
LEAD = reader(Role.LEAD_SUPERVISOR, "市林业局")
ASSIST = reader(Role.ASSIST_SUPERVISOR, "市水利局")
DISC = reader(Role.DISCIPLINE_COMMISSION, "纪委监委")
PUBLIC = reader(Role.PUBLIC, "公众", user="citizen")


@pytest.mark.parametrize(("who", "facts", "sees"), [
    (OFFICE, CASE, True), (AUDITOR, CASE, True), (RU, CASE, True), (OTHER_RU, CASE, False),
    (LEAD, CASE, True), (reader(Role.LEAD_SUPERVISOR, "市发改委"), CASE, False), (ASSIST, CASE, True),
    (DISC, CASE, False), (DISC, REFERRED, True), (PUBLIC, CASE, False), (PUBLIC, REFERRED, False),
    (PUBLIC, POSTING, True), (OTHER_RU, POSTING, False),
])
def test_which_cases_each_role_sees(who: Reader, facts: CaseFacts, sees: bool) -> None:
    assert bool(parts_for(who, facts, HOME)) is sees


def test_sensitive_parts_only_for_the_roles_that_need_them() -> None:
    assert Part.CONTACT in parts_for(OFFICE, CASE, HOME) and Part.CONTACT in parts_for(RU, CASE, HOME)
    for who in (AUDITOR, LEAD, ASSIST):
        assert Part.CONTACT not in parts_for(who, CASE, HOME)
    assert Part.CONTACT not in parts_for(DISC, REFERRED, HOME)
    for who in (OFFICE, AUDITOR):
        assert {Part.REFERRALS, Part.REFUSALS, Part.HISTORY} <= parts_for(who, CASE, HOME)
    assert Part.REFERRALS in parts_for(DISC, REFERRED, HOME)
    assert not {Part.REFUSALS, Part.HISTORY} & parts_for(DISC, REFERRED, HOME)
    for who in (RU, LEAD, ASSIST):
        assert not {Part.REFERRALS, Part.REFUSALS, Part.HISTORY} & parts_for(who, CASE, HOME)
    assert parts_for(PUBLIC, POSTING, HOME) == {Part.SUMMARY, Part.POSTING, Part.OWN_OBJECTIONS}


def test_deny_by_default_for_roles_without_a_rule() -> None:
    assert Role.SYSTEM not in READ_RULES
    sysr = reader(Role.SYSTEM, "整改办")
    assert parts_for(sysr, CASE, HOME) == frozenset()
    assert not any(may_view(sysr, v, HOME) for v in View)
    nobody = Reader(user_id="x", unit="整改办", roles=())
    assert parts_for(nobody, CASE, HOME) == frozenset() and not may_view(nobody, View.CASE_LIST, HOME)


def test_office_and_discipline_read_only_from_their_home_unit() -> None:
    assert parts_for(reader(Role.RECTIFICATION_OFFICE, "蓝山县人民政府"), CASE, HOME) == frozenset()
    assert parts_for(reader(Role.DISCIPLINE_COMMISSION, "市林业局"), REFERRED, HOME) == frozenset()
    assert not may_view(reader(Role.RECTIFICATION_OFFICE, "蓝山县人民政府"), View.DASHBOARD, HOME)


def test_a_user_with_several_roles_gets_the_union_per_case() -> None:
    both = Reader(user_id="x", unit="蓝山县人民政府", roles=(Role.RESPONSIBLE_UNIT, Role.PUBLIC))
    assert Part.CONTACT in parts_for(both, CASE, HOME)
    other_posting = CaseFacts(stage=Stage.PUBLIC_POSTING.value, responsible_units=("宁远县人民政府",))
    assert parts_for(both, other_posting, HOME) == {Part.SUMMARY, Part.POSTING, Part.OWN_OBJECTIONS}


def test_pages_by_role() -> None:
    assert all(may_view(OFFICE, v, HOME) for v in View)
    assert all(may_view(AUDITOR, v, HOME) for v in View)
    for who in (RU, LEAD, ASSIST, DISC):
        assert may_view(who, View.CASE_LIST, HOME) and may_view(who, View.DASHBOARD, HOME)
        assert not may_view(who, View.AUDIT, HOME)
    assert may_view(PUBLIC, View.CASE_LIST, HOME) and may_view(PUBLIC, View.MY_WORK, HOME)
    assert not may_view(PUBLIC, View.EXPORT, HOME) and not may_view(PUBLIC, View.DASHBOARD, HOME)
    assert not may_view(PUBLIC, View.AUDIT, HOME)


def test_field_picking_drops_hidden_and_unknown_fields() -> None:
    filing = {"case_no": "X-1", "kind": "PETITION", "title": "t", "problem": "p", "complaint": "c",
              "complainant_contact": "张三 13800000000", "something_new": "?"}
    assert pick(filing, FILING_FIELDS, parts_for(PUBLIC, POSTING, HOME)) == {"case_no": "X-1", "kind": "PETITION",
                                                                            "title": "t"}
    lead = pick(filing, FILING_FIELDS, parts_for(LEAD, CASE, HOME))
    assert "complainant_contact" not in lead and lead["complaint"] == "c" and "something_new" not in lead
    assert pick(filing, FILING_FIELDS, parts_for(RU, CASE, HOME))["complainant_contact"] == "张三 13800000000"
    row = {"case_no": "X-1", "title": "t", "stage": "PUBLIC_POSTING", "due_date": "2027-01-01",
           "responsible_units": ["a"], "open_referrals": 1, "has_referrals": True}
    assert pick(row, ROW_FIELDS, parts_for(PUBLIC, POSTING, HOME)) == {"case_no": "X-1", "title": "t",
                                                                      "stage": "PUBLIC_POSTING"}
    assert "open_referrals" not in pick(row, ROW_FIELDS, parts_for(RU, CASE, HOME))
    assert "has_referrals" not in pick(row, ROW_FIELDS, parts_for(OFFICE, CASE, HOME))


def test_referral_ledger_entries_are_withheld_from_units() -> None:
    entry = {"seq": 5, "event": "REFER_ACCOUNTABILITY", "reason": "县长张某某履职不力", "data": {"referral_id": "X-R1"}}
    ru = ledger_entry_view(entry, parts_for(RU, CASE, HOME))
    assert ru is not None and ru["reason"] == "" and ru["data"] == {} and ru["withheld"]
    accepted = ledger_entry_view({"seq": 6, "event": "SOMETHING", "reason": "r", "data": {"referral_id": "X-R1"}},
                                 parts_for(LEAD, CASE, HOME))
    assert accepted is not None and accepted["reason"] == ""
    assert ledger_entry_view(entry, parts_for(DISC, REFERRED, HOME))["reason"] == "县长张某某履职不力"  # type: ignore[index]
    assert ledger_entry_view(entry, parts_for(PUBLIC, POSTING, HOME)) is None
    plain = {"seq": 2, "event": "TRANSFER", "reason": "交办", "data": {}}
    assert ledger_entry_view(plain, parts_for(RU, CASE, HOME)) == plain


def test_the_public_sees_only_its_own_objections() -> None:
    objs = [{"objection_id": "O1", "by": "citizen", "text": "仍有异味"}, {"objection_id": "O2", "by": "other", "text": "x"}]
    assert [o["objection_id"] for o in objections_view(objs, PUBLIC, parts_for(PUBLIC, POSTING, HOME))] == ["O1"]
    assert len(objections_view(objs, OFFICE, parts_for(OFFICE, POSTING, HOME))) == 2
    assert objections_view(objs, DISC, frozenset({Part.SUMMARY})) == []


def test_a_referral_notice_tells_the_responsible_unit_of_it_but_not_why() -> None:
    """Notices are read too: the referral's reason (naming an official) reaches only the roles that
    may read referral details; a responsible unit notified of a referral is told it was made, not why."""
    from domain.decide import _Builder, decide
    from domain.enums import Action, ReferralPath
    from tests.unit.factories import OFFICE as OFFICE_ACTOR
    from tests.unit.factories import request, state_in

    s, now = state_in(Stage.RECTIFYING)
    d = decide(s, request(Action.REFER_ACCOUNTABILITY, OFFICE_ACTOR, referral_path=ReferralPath.PERFORMANCE,
                          reason="县长张某某履职不力", report_ref="追责建议报告-1"), now)
    assert d.notices and d.entries[-1].reason == "县长张某某履职不力", "the ledger keeps the reason"
    for n in d.notices:
        assert ("县长张某某履职不力" in n.body) is (Part.REFERRALS in READ_RULES[n.recipient_role].parts)
    b = _Builder(s, now)  # the same entry addressed to the responsible unit and the discipline commission
    b.notify(d.entries[-1], (Role.RESPONSIBLE_UNIT, Role.DISCIPLINE_COMMISSION), "subject")
    by_role = {n.recipient_role: n.body for n in b.notices}
    assert "县长张某某履职不力" in by_role[Role.DISCIPLINE_COMMISSION]
    assert "县长张某某履职不力" not in by_role[Role.RESPONSIBLE_UNIT]
    assert s.case_no in by_role[Role.RESPONSIBLE_UNIT] and "移交问责" in by_role[Role.RESPONSIBLE_UNIT]
