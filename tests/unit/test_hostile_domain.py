"""Hostile input, the pure parts (issue 10): text hygiene in the models, objection limits,
request signatures, login throttle arithmetic, formula-safe exports, terminal-safe text.

The console and workflow ends of each (the refusal over HTTP or by the validator, and
proof that nothing was recorded) are in tests/admin/test_hostile_input.py.
"""

from __future__ import annotations

import csv
import io
import zipfile
from datetime import datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from admin.auth import stored_username, throttle_delay
from admin.service import CaseFilter, FormError, export_csv, export_xlsx
from domain.enums import Action, Role, Stage
from domain.errors import NotAuthorizedError, RateLimitedError
from domain.model import ActionRequest, Actor, CaseAmendment, CaseFiling, CriterionCheck, Measure
from domain.policy import Policy
from domain.screening import screen
from domain.signing import parse_keys, sign, signed, verify
from domain.text import MAX_LINE, MAX_REASON, MAX_TEXT, control_char, printable_one_line, strip_controls
from tests.unit.factories import OFFICE, PUBLIC, act, drive_to, make_filing, request

# (model, field, multi-line?, limit) for every text field of every request and filing.
ONE_LINE = [("title", MAX_LINE), ("source", MAX_LINE), ("inspection_round", MAX_LINE), ("jurisdiction", MAX_LINE),
            ("lead_leader", 200), ("ladder_profile", 128)]
MULTI_LINE = [("problem", MAX_TEXT), ("target", MAX_TEXT), ("complaint", MAX_TEXT), ("complainant_contact", MAX_REASON)]


def _filing(**fields: Any) -> CaseFiling:
    return CaseFiling.model_validate({**make_filing().model_dump(), **fields})


def _error(e: pytest.ExceptionInfo[ValidationError]) -> str:
    return "; ".join(f"{'.'.join(map(str, x['loc']))}: {x['msg']}" for x in e.value.errors())


@pytest.mark.parametrize("field,limit", ONE_LINE + MULTI_LINE)
def test_every_filing_text_field_refuses_nul_and_escape_naming_the_field(field: str, limit: int) -> None:
    for bad in ("a\x00b", "\x1b[2Jx", "x\x7f", "x\x9b"):
        with pytest.raises(ValidationError) as e:
            _filing(**{field: bad})
        msg = _error(e)
        assert msg.startswith(field) and "control character" in msg and "U+" in msg
    with pytest.raises(ValidationError) as e:
        _filing(**{field: "长" * (limit + 1)})
    assert _error(e).startswith(field) and f"at most {limit}" in _error(e)


@pytest.mark.parametrize("field,limit", MULTI_LINE)
def test_multi_line_fields_keep_newline_and_tab(field: str, limit: int) -> None:
    assert getattr(_filing(**{field: "第一行\r\n第二行\t完"}), field) == "第一行\r\n第二行\t完"


@pytest.mark.parametrize("field,_limit", ONE_LINE)
def test_one_line_fields_refuse_a_line_break(field: str, _limit: int) -> None:
    with pytest.raises(ValidationError) as e:
        _filing(**{field: "上\n下"})
    assert "line break" in _error(e)


def test_lists_and_nested_text_of_a_filing_are_checked() -> None:
    for fields, where in [({"responsible_units": ["好单位", "坏\x00单位"]}, "responsible_units.1"),
                          ({"lead_supervising_units": ["x" * 201]}, "lead_supervising_units.0"),
                          ({"responsible_units": [f"u{i}" for i in range(201)]}, "responsible_units"),
                          ({"measures": [{"seq": 1, "text": "措施\x00"}]}, "measures.0.text"),
                          ({"measures": [{"seq": 1, "text": "m", "milestones": [{"what": "\x1b"}]}]},
                           "measures.0.milestones.0.what"),
                          ({"deadline": {"kind": "DATE", "due_date": "2031-01-01", "raw_zh": "2031\x00"}},
                           "deadline.raw_zh")]:
        with pytest.raises(ValidationError) as e:
            _filing(**fields)
        assert _error(e).startswith(where), _error(e)


def test_control_char_finds_exactly_c0_del_and_c1_at_their_first_position() -> None:
    """The regex check (issue 9: a Python loop per character cost 10 % of a replayed activation)
    against the rule written out: C0, DEL and C1 are forbidden; multi-line text allows \t \n \r."""
    def rule(value: str, multiline: bool) -> tuple[int, str] | None:
        for i, c in enumerate(value):
            if (ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F) and not (multiline and c in "\t\n\r"):
                return i, c
        return None

    for cp in range(0x3000):
        for multiline in (False, True):
            value = f"整改{chr(cp)}x\x01"
            assert control_char(value, multiline) == rule(value, multiline), (hex(cp), multiline)
    assert control_char("", False) is None
    assert control_char("a\tb\nc", True) is None
    assert control_char("a\tb", False) == (1, "\t")


def test_every_request_text_field_refuses_control_characters() -> None:
    base = {"action": Action.TRANSFER, "actor": OFFICE, "request_id": "r-1"}
    cases = [({"reason": "ok\x00"}, "reason"), ({"request_id": "r\x00"}, "request_id"),
             ({"referral_id": "R1\x1b"}, "referral_id"), ({"objection_id": "O1\x07"}, "objection_id"),
             ({"evidence": ["doc:1", "doc\x00"]}, "evidence.1"), ({"reason": "x" * (MAX_REASON + 1)}, "reason"),
             ({"actor": {"user_id": "u\x00", "role": "PUBLIC"}}, "actor.user_id"),
             ({"actor": {"user_id": "u", "role": "PUBLIC", "unit": "\x1b]0;title\x07"}}, "actor.unit"),
             ({"amendment": {"title": "新\x00标题"}}, "amendment.title"),
             ({"amendment": {"problem": "p\x0c"}}, "amendment.problem"),
             ({"criteria": {"eco_restored": {"met": True, "note": "\x00"},
                            "pollution_eliminated": {"met": True}, "public_satisfied": {"met": True}}},
              "criteria.eco_restored.note")]
    for fields, where in cases:
        with pytest.raises(ValidationError) as e:
            ActionRequest.model_validate({**base, **fields})
        assert _error(e).startswith(where), (fields, _error(e))
    ok = ActionRequest.model_validate({**base, "reason": "第一行\n第二行\t附件"})
    assert ok.reason.count("\n") == 1
    assert CaseAmendment(title="正常标题").title == "正常标题"
    assert CriterionCheck(met=True, note="多行\n说明").note
    assert Measure(seq=1, text="多行\n措施").text


@pytest.mark.parametrize("params,msg", [
    ({"page": str(2**70)}, "page must be at most"),
    ({"page_size": "99999999999999999999"}, "page_size must be at most"),
    ({"page": "-1" + "0" * 30}, "page must be at most"),
    ({"q": "湘江\x00"}, "filter q"),
    ({"unit": "\x1b[31m"}, "filter unit"),
    ({"round": "x" * 201}, "filter round"),
    ({"stage": "NOPE\x00"}, "filter stage"),
    ({"stage": "NOPE\x1b"}, "filter stage"),
    ({"kind": "X" * 300}, "filter kind"),
])
def test_filters_and_paging_are_bounded(params: dict[str, str], msg: str) -> None:
    with pytest.raises(FormError) as e:
        CaseFilter.from_params(params)
    assert msg in str(e.value) and "\x00" not in str(e.value) and "\x1b" not in str(e.value)
    assert CaseFilter.from_params({"page": "1000000", "page_size": "100000"}).page_size == 500


# ------------------------------------------------------------------ objections


def _posting() -> tuple[Any, datetime]:
    state, now = drive_to(Stage.PUBLIC_POSTING)
    assert state.posting is not None
    return state, now


def test_one_open_objection_per_person_then_refused_saying_why() -> None:
    state, now = _posting()
    screen(state, request(Action.OBJECT, PUBLIC, reason="异味"), now)
    state = act(state, Action.OBJECT, PUBLIC, now, reason="异味")
    with pytest.raises(RateLimitedError) as e:
        screen(state, request(Action.OBJECT, PUBLIC, reason="再次异议"), now)
    assert "already has 1 open objection" in str(e.value) and "O1" in str(e.value)
    other = Actor(user_id="citizen-2", role=Role.PUBLIC)
    screen(state, request(Action.OBJECT, other, reason="另一人的异议"), now)  # others are not blocked


def test_objections_a_day_are_limited_and_the_limit_is_policy() -> None:
    state, now = _posting()
    for i in range(3):
        screen(state, request(Action.OBJECT, PUBLIC, reason=f"异议{i}"), now)
        state = act(state, Action.OBJECT, PUBLIC, now, reason=f"异议{i}")
        state = act(state, Action.DISMISS_OBJECTION, OFFICE, now, reason="无关")
        now += timedelta(minutes=5)
    with pytest.raises(RateLimitedError) as e:
        screen(state, request(Action.OBJECT, PUBLIC, reason="第四次"), now)
    assert "at most 3 a day" in str(e.value) and "next possible at" in str(e.value)
    screen(state, request(Action.OBJECT, PUBLIC, reason="第二天"), now + timedelta(days=1))
    state.policy = Policy(max_objections_per_person_per_day=5, max_open_objections_per_person=2)
    screen(state, request(Action.OBJECT, PUBLIC, reason="放宽后"), now)


# ------------------------------------------------------------------ signatures


def test_signed_requests_verify_and_any_change_breaks_the_signature() -> None:
    keys = parse_keys("k-new, k-old")
    assert keys == (b"k-new", b"k-old")
    req = signed("C-1", request(Action.TRANSFER, OFFICE, reason="交办"), keys)
    assert req.signature and req.signature.startswith("v1=")
    verify("C-1", req, keys)
    verify("C-1", req.model_copy(update={"signature": sign("C-1", req, b"k-old")}), keys)  # rotation
    verify("C-1", request(Action.TRANSFER, OFFICE), ())  # no key configured: nothing required
    forged_actor = Actor(user_id="office-1", role=Role.RECTIFICATION_OFFICE, unit="另一个单位")
    for bad, why in [(req.model_copy(update={"signature": None}), "not signed"),
                     (req.model_copy(update={"actor": forged_actor}), "bad signature"),
                     (req.model_copy(update={"reason": "改过的理由"}), "bad signature"),
                     (req.model_copy(update={"request_id": "other"}), "bad signature"),
                     (req.model_copy(update={"signature": sign("C-1", req, b"guess")}), "bad signature")]:
        with pytest.raises(NotAuthorizedError) as e:
            verify("C-1", bad, keys)
        assert why in str(e.value)
    with pytest.raises(NotAuthorizedError):
        verify("C-2", req, keys)  # another case


# ------------------------------------------------------------------ login, exports, terminal


def test_throttle_delays_grow_and_are_capped() -> None:
    assert [throttle_delay(n, 3, 1000, 60) for n in range(8)] == [0, 0, 0, 1, 2, 4, 8, 16]
    assert throttle_delay(50, 3, 1000, 60) == 60
    assert throttle_delay(10**6, 3, 1000, 60) == 60
    assert stored_username("x" * 10_000 + "\x00") == "x" * 64
    assert stored_username("evil\x00\x1b[2J") == "evil\\x00\\x1b[2J"


HOSTILE = ["=HYPERLINK(\"http://evil\",\"点我\")", "=cmd|' /C calc'!A0", "+SUM(1,2)", "-2+3", "@SUM(A1)",
           "\t=1+1", "\r=1+1"]


def _rows() -> list[dict[str, Any]]:
    return [{"case_no": f"X-{i}", "title": t, "stage": "REGISTERED", "stage_zh": "已登记", "responsible_units": [t],
             "kind_zh": "问题"} for i, t in enumerate(HOSTILE)]


def test_csv_export_writes_formula_text_with_a_leading_apostrophe() -> None:
    rows = list(csv.reader(io.StringIO(export_csv(_rows()).decode("utf-8-sig"))))
    titles = [r[2] for r in rows[1:]]
    assert titles == ["'" + t for t in HOSTILE]
    assert [r[5] for r in rows[1:]] == ["'" + t for t in HOSTILE]
    assert rows[1][0] == "X-0"  # ordinary text untouched


def test_xlsx_export_writes_formula_text_as_strings_never_formulas() -> None:
    data = export_xlsx(_rows())
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        sheet = z.read("xl/worksheets/sheet1.xml").decode()
    assert "<f>" not in sheet and "<f " not in sheet
    from openpyxl import load_workbook

    ws = load_workbook(io.BytesIO(data)).active
    titles = [ws.cell(row=i + 2, column=3) for i in range(len(HOSTILE))]
    # (XML reads a stored CR back as a newline)
    assert [c.value for c in titles] == [t.replace("\r", "\n") for t in HOSTILE]
    assert all(c.data_type == "s" for c in titles)


def test_exports_survive_control_characters_stored_before_the_models_refused_them() -> None:
    rows = [{"case_no": "OLD-1", "title": "旧标题\x1b[2J\x00", "responsible_units": ["单位\x07"]}]
    from openpyxl import load_workbook

    ws = load_workbook(io.BytesIO(export_xlsx(rows))).active
    assert ws.cell(row=2, column=3).value == "旧标题\\x1b[2J\\x00"
    assert "单位\\x07" in export_csv(rows).decode("utf-8-sig")


def test_terminal_text_shows_escapes_instead_of_running_them() -> None:
    assert strip_controls("标题\x1b[31m红\x07\n下一行\x9b") == "标题\\x1b[31m红\\x07\n下一行\\x9b"
    assert printable_one_line("a\nb\x00") == "a\\nb\\x00"
