"""domain/disclosure.py: what the public site shows and accepts (issue 14, part "public")."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from domain import disclosure as d

NOW = datetime(2026, 12, 1, 4, 0, tzinfo=UTC)
ROW = {"case_no": "FB-01", "title": "尾矿库治理", "stage": "RECTIFYING", "due_date": date(2026, 11, 30),
       "responsible_units": ["市生态环境局"], "detail": {"internal": "x"}, "inspection_round": "二轮",
       "escalation_level": 3, "filing": {"complainant_contact": "13800138000"}}


def test_public_item_carries_only_public_fields_and_the_office_options_add_only_listed_ones() -> None:
    plain = d.public_item(ROW, d.PublicationOptions(), date(2026, 12, 1))
    assert set(plain) == {"item_no", "title", "stage_zh", "stage_en", "completed", "posting_open"}
    assert plain["stage_zh"] == "整改中" and plain["completed"] is False
    full = d.public_item(ROW, d.PublicationOptions(show_due_dates=True, show_units=True), date(2026, 12, 1))
    assert full["overdue"] is True and full["units"] == ["市生态环境局"]
    assert set(full) <= set(d.PUBLIC_ITEM_FIELDS)
    assert d.public_item({**ROW, "stage": "LONG_TERM_MAINTENANCE"}, d.PublicationOptions(), date(2026, 12, 1))[
        "completed"] is True


def test_every_stage_has_a_public_term() -> None:
    from domain.enums import Stage
    assert set(d.PUBLIC_STAGE_TERMS) == set(Stage)


def test_the_plan_is_published_only_when_chosen() -> None:
    prog = {"programme_id": "P", "name": "n", "locality": "l", "inspection_round": "r", "feedback_date": date(2021, 7, 16),
            "plan_ref": "x政发〔2021〕1号", "detail": {"plan_text": "方案"}, "plan_submitted_at": NOW}
    assert "plan_text" not in d.public_programme(prog, d.PublicationOptions(), [])
    assert d.public_programme(prog, d.PublicationOptions(publish_plan=True), [])["plan_text"] == "方案"


def test_posting_window_paused_while_an_objection_awaits_a_ruling() -> None:
    detail = {"posting": {"started_at": (NOW - timedelta(days=2)).isoformat(), "ends_at": None,
                          "remaining_seconds": 3600 * 24 * 5,
                          "objections": [{"objection_id": "O1", "at": NOW.isoformat(), "by": "secret-user",
                                          "text": "secret text", "ruling": None}]}}
    [n] = d.posting_notices(detail, NOW)
    assert n["paused"] and n["open"] and n["remaining_hours"] == 120.0
    assert set(n["objections"][0]) == {"objection_id", "at", "ruling", "ruling_zh", "ruled_at"}
    assert d.accepts_objections("PUBLIC_POSTING", detail, NOW)
    ended = {"posting": {"started_at": (NOW - timedelta(days=8)).isoformat(),
                         "ends_at": (NOW - timedelta(days=1)).isoformat(), "objections": []}}
    assert not d.accepts_objections("PUBLIC_POSTING", ended, NOW)
    assert not d.accepts_objections("RECTIFYING", detail, NOW)


@pytest.mark.parametrize("contact,kind,norm", [("13800138000", "PHONE", "13800138000"),
                                               ("+86 13800138000", "PHONE", "13800138000"),
                                               ("0731-12345678", "PHONE", "073112345678"),
                                               ("Zhang.San@Example.cn", "EMAIL", "zhang.san@example.cn")])
def test_contact_is_validated_and_normalised(contact: str, kind: str, norm: str) -> None:
    o = d.check_objection("整改后仍有渗滤液外排现象", contact)
    assert (o.contact_kind, o.contact) == (kind, norm)


@pytest.mark.parametrize("text,contact,field,words", [
    ("整改后仍有渗滤液外排现象", "", "contact", "required"),
    ("整改后仍有渗滤液外排现象", "12345", "contact", "not a valid"),
    ("整改后仍有渗滤液外排现象", "a@b.cn\x00", "contact", "U+0000"),
    ("太短", "13800138000", "text", "too short"),
    ("x" * 2001, "13800138000", "text", "too long"),
    ("整改后仍有渗滤液\x00外排现象", "13800138000", "text", "NUL"),
    ("整改后仍有渗滤液\x1b[31m外排现象", "13800138000", "text", "ESC"),
])
def test_bad_objection_input_names_the_field(text: str, contact: str, field: str, words: str) -> None:
    with pytest.raises(d.ObjectionInputError) as e:
        d.check_objection(text, contact)
    assert e.value.field.startswith(field) and words in str(e.value)


def test_rate_rule_names_the_limit() -> None:
    lim = d.RateLimits(per_address=2, per_contact=1)
    assert d.rate_refusal(lim, 1, 0) is None
    assert "per-address" in (d.rate_refusal(lim, 2, 0) or "") and "1 hour" in (d.rate_refusal(lim, 2, 0) or "")
    assert "per-contact" in (d.rate_refusal(lim, 0, 1) or "") and "1 day" in (d.rate_refusal(lim, 0, 1) or "")


def test_form_token_is_tied_to_item_and_time() -> None:
    key = b"k" * 32
    tok = d.form_token(key, "FB-01", NOW)
    d.check_form_token(key, "FB-01", tok, NOW + timedelta(minutes=10))
    for item, at, words in [("FB-02", NOW, "does not belong"), ("FB-01", NOW + timedelta(hours=3), "expired")]:
        with pytest.raises(d.ObjectionInputError, match=words):
            d.check_form_token(key, item, tok, at)
    with pytest.raises(d.ObjectionInputError, match="missing"):
        d.check_form_token(key, "FB-01", "", NOW)


def test_publication_ledger_folds_options_namings_and_revocations() -> None:
    rows = [{"event": "SET_OPTIONS", "at": NOW, "data": {"options": {"show_units": True}}},
            {"event": "NAME_UNIT", "at": NOW, "actor_user": "office", "reason": "逾期三项",
             "data": {"naming_id": "N1", "unit": "蓝山县"}},
            {"event": "NAME_UNIT", "at": NOW, "actor_user": "office", "reason": "逾期",
             "data": {"naming_id": "N2", "unit": "xx县"}},
            {"event": "REVOKE_NAMING", "at": NOW, "reason": "已整改", "data": {"naming_id": "N1"}}]
    pub = d.fold(rows)
    assert pub.options == d.PublicationOptions(show_units=True)
    assert [n.unit for n in pub.active_namings()] == ["xx县"]
    assert pub.namings[0].revoke_reason == "已整改"


def test_only_a_lagging_unit_may_be_named_by_the_office_with_a_reason() -> None:
    rows = [ROW, {**ROW, "responsible_units": ["蓝山县"], "stage": "CLOSED"}]
    lag = d.lagging_units(rows, date(2026, 12, 1))
    assert lag == {"市生态环境局": 1}
    pub = d.Publication()
    assert d.check_naming(pub, "市生态环境局", "逾期未完成", lag) == "逾期未完成"
    with pytest.raises(d.PublicationError, match="no overdue item"):
        d.check_naming(pub, "蓝山县", "x", lag)
    with pytest.raises(d.PublicationError, match="reason is required"):
        d.check_naming(pub, "市生态环境局", " ", lag)
    with pytest.raises(d.PublicationError, match="rectification office"):
        d.check_office(["RESPONSIBLE_UNIT"], "整改办", "整改办")
    with pytest.raises(d.PublicationError, match="is not the rectification office"):
        d.check_office(["RECTIFICATION_OFFICE"], "别的单位", "整改办")
