"""The import speaks the office's language: the seeds' words for kinds and stages, errors listing
every accepted value in Chinese and English, and the .xlsx template read back by the import."""

from __future__ import annotations

import io

import pytest
from openpyxl import load_workbook

from admin.import_template import TEMPLATE_COLUMNS, template_xlsx
from admin.service import record_from_sheet_row, rows_from_upload
from domain.enums import CaseKind, Stage
from domain.errors import InvalidFilingError
from domain.intake import filing_from_record
from domain.office_terms import check_import_stage, kind_from_term, stage_from_term


@pytest.mark.parametrize(("term", "kind"), [
    ("反馈问题整改任务", CaseKind.FEEDBACK_PROBLEM), ("反馈问题", CaseKind.FEEDBACK_PROBLEM),
    ("反饋問題", CaseKind.FEEDBACK_PROBLEM), ("信访举报交办件", CaseKind.PETITION), ("信访举报件", CaseKind.PETITION),
    ("交办件", CaseKind.PETITION), ("转办件", CaseKind.PETITION), ("群众举报件", CaseKind.PETITION),
    ("警示片披露问题", CaseKind.WARNING_FILM), ("警示片问题", CaseKind.WARNING_FILM),
    ("PETITION", CaseKind.PETITION), ("feedback_problem", CaseKind.FEEDBACK_PROBLEM),
    ("反馈问题 FEEDBACK_PROBLEM", CaseKind.FEEDBACK_PROBLEM), (" 交办件\u3000", CaseKind.PETITION),
    ("信访举报件(PETITION)", CaseKind.PETITION),
])
def test_the_seeds_words_name_a_kind(term: str, kind: CaseKind) -> None:
    assert kind_from_term(term) is kind


def test_an_unknown_kind_lists_every_accepted_value_in_chinese_and_english() -> None:
    with pytest.raises(InvalidFilingError) as e:
        kind_from_term("来信")
    msg = str(e.value)
    assert msg.startswith("unknown case kind '来信' (类型无法识别); accepted 可用:")
    for word in ("FEEDBACK_PROBLEM (feedback problem)", "PETITION (petition / complaint case)",
                 "WARNING_FILM (warning-film problem)", "反馈问题整改任务", "信访举报交办件", "交办件", "警示片披露问题"):
        assert word in msg


@pytest.mark.parametrize(("term", "stage"), [
    ("建档立案", Stage.REGISTERED), ("立案", Stage.REGISTERED), ("整改中", Stage.RECTIFYING),
    ("已交办待签收", Stage.TRANSFERRED), ("验收", Stage.VERIFICATION), ("销号", Stage.CLOSED),
    ("办结销号", Stage.CLOSED), ("长期坚持、防止反弹", Stage.LONG_TERM_MAINTENANCE), ("初審", Stage.PRELIM_REVIEW),
    ("REGISTERED", Stage.REGISTERED), ("公示 PUBLIC_POSTING", Stage.PUBLIC_POSTING),
])
def test_the_seeds_words_name_a_stage(term: str, stage: Stage) -> None:
    assert stage_from_term(term) is stage


def test_an_import_files_new_cases_at_registered_only() -> None:
    assert check_import_stage("建档立案") is Stage.REGISTERED
    with pytest.raises(InvalidFilingError, match=r"整改中 RECTIFYING: 导入只能建档立案 \(an import files new cases"):
        check_import_stage("整改中")
    with pytest.raises(InvalidFilingError, match=r"unknown stage '快好了'.*REGISTERED: 建档立案"):
        check_import_stage("快好了")


def test_engine_and_sample_records_take_the_office_words() -> None:
    f = filing_from_record({"case_no": "T-1", "kind": "信访举报交办件", "title": "群众举报某厂偷排", "stage": "建档立案"})
    assert f.kind is CaseKind.PETITION
    f = filing_from_record({"case_id": "T-2", "case_kind": "警示片披露问题", "title_zh": "警示片披露某河道污染"})
    assert f.kind is CaseKind.WARNING_FILM
    with pytest.raises(InvalidFilingError, match=r"^T-3: unknown case kind 'X件'.*信访举报交办件"):
        filing_from_record({"case_no": "T-3", "kind": "X件", "title": "t"})
    with pytest.raises(InvalidFilingError, match=r"^T-4: unknown case kind 'X件'.*COMPLAINT_DRIVEN_TASK.*交办件"):
        filing_from_record({"case_id": "T-4", "case_kind": "X件"})
    with pytest.raises(InvalidFilingError, match=r"^T-5: 阶段 stage '核查验收' = 核查验收 VERIFICATION"):
        filing_from_record({"case_no": "T-5", "kind": "反馈问题", "title": "t", "stage": "核查验收"})


def test_sheet_rows_keep_engine_values_for_office_words() -> None:
    assert record_from_sheet_row({"案件编号": "X-1", "类型": "反馈问题整改任务", "标题": "t"})["kind"] == "FEEDBACK_PROBLEM"
    assert record_from_sheet_row({"案件编号": "X-2", "类型": "乱写", "标题": "t"})["kind"] == "乱写"  # refused later


def test_the_template_has_the_headers_an_example_row_and_reads_back_as_a_good_filing() -> None:
    content = template_xlsx()
    wb = load_workbook(io.BytesIO(content))
    ws = wb.worksheets[0]
    rows = list(ws.iter_rows(values_only=True))
    assert list(rows[0]) == [h for h, _ in TEMPLATE_COLUMNS] and len(rows) == 2
    assert "类型 kind" in rows[0] and "阶段 stage" in rows[0] and rows[1][1] == "反馈问题整改任务"
    notes = "\n".join(str(c) for row in wb.worksheets[1].iter_rows(values_only=True) for c in row if c)
    assert "信访举报交办件" in notes and "WARNING_FILM" in notes and "持续推进" in notes
    ((label, rec),) = rows_from_upload("import-template.xlsx", content)
    assert label == "row 2" and isinstance(rec, dict)
    f = filing_from_record(rec)
    assert f.case_no == "FB-2027-001" and f.kind is CaseKind.FEEDBACK_PROBLEM
    assert [m.seq for m in f.measures] == [1, 2, 3] and f.lead_supervising_units == ["市住房城乡建设局", "市生态环境局"]
    assert f.deadline is not None and f.deadline.due_date.isoformat() == "2027-06-30" and f.deadline.long_term
