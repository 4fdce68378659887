"""The console's form handling without a server: every rule's fields, payloads, filters, rows."""

from __future__ import annotations

from datetime import date

import pytest

from admin.service import (
    FIELD_LABELS_ZH,
    CaseFilter,
    FormError,
    build_request,
    export_csv,
    filing_from_form,
    form_fields,
    payload_from_form,
    record_from_sheet_row,
)
from admin.users import UserError, parse_roles
from domain.enums import Action, Role
from domain.lifecycle import RULES
from tests.harness import LEAD, RU


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.action.value)
def test_every_rule_gets_a_form_for_each_field_it_needs(rule) -> None:
    names = [n for n, _ in form_fields(rule.action)]
    assert set(rule.needs) <= set(names)
    assert all(n in FIELD_LABELS_ZH for n in names), "every field has a bilingual label"
    assert all(required for n, required in form_fields(rule.action) if n in rule.needs)


def test_verification_form_becomes_criteria_with_evidence() -> None:
    form = {"eco_restored_met": "on", "eco_restored_evidence": "doc:1\ndoc:2", "pollution_eliminated_met": "on",
            "pollution_eliminated_evidence": "doc:3", "public_satisfied_evidence": "", "reason": " 核查通过 "}
    p = payload_from_form(Action.VERIFY_PASS, form)
    req = build_request(Action.VERIFY_PASS, LEAD, p, "r-1")
    assert req.criteria is not None and req.criteria.eco_restored.evidence == ["doc:1", "doc:2"]
    assert not req.criteria.public_satisfied.met and req.criteria.measures_all_done is None
    assert req.reason == "核查通过" and req.actor == LEAD


def test_required_fields_and_the_actor_never_come_from_the_form() -> None:
    with pytest.raises(FormError, match="required for PRELIM_REJECT"):
        build_request(Action.PRELIM_REJECT, LEAD, payload_from_form(Action.PRELIM_REJECT, {}), "r")
    with pytest.raises(FormError, match="actor comes from the login"):
        build_request(Action.ACKNOWLEDGE, RU, {"actor": {"user_id": "x", "role": "RECTIFICATION_OFFICE"}}, "r")
    with pytest.raises(FormError, match="new_due_date"):
        build_request(Action.REQUEST_EXTENSION, RU, {"new_due_date": "not a date", "reason": "x"}, "r")
    req = build_request(Action.REQUEST_EXTENSION, RU, {"new_due_date": "2027-03-31", "reason": "x"}, "r")
    assert req.new_due_date == date(2027, 3, 31)


def test_amendment_form_parses_units_measures_and_the_deadline() -> None:
    p = payload_from_form(Action.AMEND, {"am_responsible_units": "蓝山县委、县政府\n宁远县人民政府",
                                         "am_measures": "一\n二", "am_deadline": "2027年6月30日"})
    am = p["amendment"]
    assert am["responsible_units"] == ["蓝山县委、县政府", "宁远县人民政府"]
    assert [m["seq"] for m in am["measures"]] == [1, 2] and am["deadline"]["due_date"] == "2027-06-30"
    with pytest.raises(FormError, match="at least one field"):
        payload_from_form(Action.AMEND, {})
    with pytest.raises(FormError, match="deadline"):
        payload_from_form(Action.AMEND, {"am_deadline": "明年"})


def test_sheet_rows_and_the_filing_form() -> None:
    rec = record_from_sheet_row({"案件编号": "X-1", "类型": "信访举报件", "标题": "t", "主体责任单位": "蓝山县委、县政府;市林业局",
                                 "整改时限": date(2027, 1, 31), "unknown column": "ignored"})
    assert rec["kind"] == "PETITION" and rec["responsible_units"] == ["蓝山县委、县政府", "市林业局"]
    assert rec["deadline"]["due_date"] == "2027-01-31" and "unknown column" not in rec
    f = filing_from_form({"case_no": "X-2", "kind": "FEEDBACK_PROBLEM", "title": "标题", "measures": "一\n二"})
    assert [m.text for m in f.measures] == ["一", "二"]
    with pytest.raises(FormError, match="title is required"):
        filing_from_form({"case_no": "X-3", "kind": "FEEDBACK_PROBLEM"})
    with pytest.raises(FormError, match="case_no"):
        filing_from_form({"case_no": "bad no", "kind": "FEEDBACK_PROBLEM", "title": "t"})


def test_filters_name_what_is_wrong() -> None:
    f = CaseFilter.from_params({"stage": "RECTIFYING", "overdue": "1", "rung": "3", "page": "2", "round": "第二轮"})
    where, args = f.where(__import__("datetime").datetime(2026, 1, 1))
    assert "stage = $1" in where and "escalation_level = $" in where and "第二轮" in args
    assert "page=2" in f.query_string() and "page=3" in f.query_string(page=3)
    for bad, msg in [({"stage": "X"}, "unknown stage"), ({"kind": "X"}, "unknown kind"), ({"rung": "9"}, "rung"),
                     ({"page": "two"}, "page must be a number")]:
        with pytest.raises(FormError, match=msg):
            CaseFilter.from_params(bad)


def test_roles_and_csv_export() -> None:
    assert parse_roles("lead_supervisor, RESPONSIBLE_UNIT") == (Role.LEAD_SUPERVISOR, Role.RESPONSIBLE_UNIT)
    for bad in ("", "SYSTEM", "CHIEF"):
        with pytest.raises(UserError):
            parse_roles(bad)
    data = export_csv([{"case_no": "A-1", "responsible_units": ["甲", "乙"], "due_date": date(2027, 1, 1),
                        "suspended": True}])
    assert data.startswith("\ufeff".encode()) and "A-1" in data.decode("utf-8-sig")
    assert "甲、乙" in data.decode("utf-8-sig") and "2027-01-01" in data.decode("utf-8-sig")


def test_escalation_forms_carry_the_proposal_and_the_report_reference() -> None:
    """确认拟采取措施 and 移交问责 forms: proposal id and 追责建议报告 reference reach the request."""
    from domain.model import Actor

    office = Actor(user_id="o", role=Role.RECTIFICATION_OFFICE, unit="整改办")
    assert [n for n, _ in form_fields(Action.CONFIRM_ESCALATION)][:3] == ["proposal_id", "reason", "report_ref"]
    p = payload_from_form(Action.CONFIRM_ESCALATION, {"proposal_id": "P2", "reason": " 同意 ", "report_ref": "报告-1"})
    req = build_request(Action.CONFIRM_ESCALATION, office, p, "r-9")
    assert (req.proposal_id, req.reason, req.report_ref) == ("P2", "同意", "报告-1")
    with pytest.raises(FormError, match="required for DISMISS_ESCALATION"):
        build_request(Action.DISMISS_ESCALATION, office, payload_from_form(Action.DISMISS_ESCALATION, {}), "r")
    p = payload_from_form(Action.DE_ESCALATE, {"reason": "进展明显", "rung": "WARNING", "new_due_date": "2027-01-31"})
    req = build_request(Action.DE_ESCALATE, office, p, "r-10")
    assert (req.rung, req.new_due_date) == ("WARNING", date(2027, 1, 31))
