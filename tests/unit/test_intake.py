"""Import records → case filings (domain.intake), over the shared sample data and hand-made records."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from domain.decide import decide, missing_for_transfer, new_case
from domain.enums import Action, CaseKind, DeadlineKind
from domain.errors import IncompleteCaseError, InvalidFilingError
from domain.intake import (
    AGGREGATE_KINDS,
    SAMPLE_KIND_MAP,
    filing_from_record,
    records_from_document,
)
from domain.model import CaseFiling
from domain.policy import Policy
from tests.unit.factories import NOW, OFFICE, make_filing, request

SAMPLE = Path("/work/shared/domain/sample_cases.json")


def _sample_records() -> list[dict[str, Any]]:
    return records_from_document(json.loads(SAMPLE.read_text(encoding="utf-8")))


RECORDS = _sample_records()


def test_sample_document_has_records():
    """The shared sample document yields its list of case records."""
    assert len(RECORDS) == 32
    assert all("case_id" in r for r in RECORDS)


@pytest.mark.parametrize("record", RECORDS, ids=[r["case_id"] for r in RECORDS])
def test_every_sample_record_is_filed_or_refused_with_a_reason(record: dict[str, Any]):
    """Each sample record becomes a valid filing, or an InvalidFilingError naming it and why."""
    try:
        filing = filing_from_record(record)
    except InvalidFilingError as e:
        assert str(e).startswith(f"{record['case_id']}: ")
        assert len(str(e)) > len(record["case_id"]) + 10
        return
    assert filing.case_no == record["case_id"]
    assert filing.kind is SAMPLE_KIND_MAP[record["case_kind"]]
    assert filing.title
    assert CaseFiling.model_validate(filing.model_dump()) == filing
    assert len({m.seq for m in filing.measures}) == len(filing.measures)


@pytest.mark.parametrize(
    "record", [r for r in RECORDS if r["case_kind"] in AGGREGATE_KINDS],
    ids=[r["case_id"] for r in RECORDS if r["case_kind"] in AGGREGATE_KINDS],
)
def test_aggregate_sample_records_are_refused(record: dict[str, Any]):
    """PETITION_BATCH/HANDLING and FEEDBACK_TASK_SET aggregates count many cases and are refused."""
    with pytest.raises(InvalidFilingError, match="aggregate"):
        filing_from_record(record)


def test_sample_contains_the_expected_mix_of_filed_and_refused_records():
    """27 sample records are filed and the 5 aggregates refused."""
    filed, refused = [], []
    for r in RECORDS:
        try:
            filed.append(filing_from_record(r).case_no)
        except InvalidFilingError:
            refused.append(r["case_id"])

    assert sorted(refused) == ["AG-01", "AG-02", "PT-01", "PT-02", "PT-04"]
    assert len(filed) == 27


def test_sample_records_become_cases_and_transfer_exactly_when_complete():
    """Every filed sample record opens a case; TRANSFER succeeds iff nothing is missing for transfer."""
    for r in RECORDS:
        if r["case_kind"] in AGGREGATE_KINDS:
            continue
        filing = filing_from_record(r)
        state = new_case(filing, Policy(), NOW, OFFICE).state
        missing = missing_for_transfer(filing)
        if missing:
            with pytest.raises(IncompleteCaseError):
                decide(state, request(Action.TRANSFER, OFFICE), NOW)
        else:
            assert decide(state, request(Action.TRANSFER, OFFICE), NOW).state.stage.value == "TRANSFERRED"


def test_sample_deadlines_are_parsed_into_the_documented_kinds():
    """FB-01 is 立行立改 (IMMEDIATE_AND_ONGOING) and FB-03 a date then long-term."""
    by_id = {r["case_id"]: r for r in RECORDS}

    fb01 = filing_from_record(by_id["FB-01"])
    fb03 = filing_from_record(by_id["FB-03"])

    assert fb01.deadline is not None and fb01.deadline.kind is DeadlineKind.IMMEDIATE_AND_ONGOING
    assert fb03.deadline is not None and fb03.deadline.kind is DeadlineKind.DATE_THEN_LONG_TERM
    assert fb03.deadline.long_term


def test_sample_units_use_their_chinese_names():
    """Units given as {zh, en} objects are filed by their Chinese name, first-listed first."""
    fb01 = filing_from_record(next(r for r in RECORDS if r["case_id"] == "FB-01"))

    assert fb01.responsible_units[:2] == ["市委", "市政府"]
    assert fb01.lead_supervising_units[0] == "市委办"


def test_complaint_driven_sample_record_is_a_petition_with_its_complaint():
    """COMPLAINT_DRIVEN_TASK files as a PETITION whose complaint is the problem text."""
    rec = next(r for r in RECORDS if r["case_kind"] == "COMPLAINT_DRIVEN_TASK")

    filing = filing_from_record(rec)

    assert filing.kind is CaseKind.PETITION
    assert filing.complaint and filing.complaint == filing.problem


def test_engine_shaped_record_round_trips():
    """A record in the engine's own CaseFiling JSON shape files back to an equal filing."""
    original = make_filing()
    record = json.loads(original.model_dump_json())

    assert filing_from_record(record) == original


def test_engine_shaped_petition_round_trips():
    """A petition filing round-trips through its JSON as well."""
    original = make_filing(CaseKind.PETITION)

    assert filing_from_record(json.loads(original.model_dump_json())) == original


def test_bad_engine_record_names_its_case_number():
    """An engine-shaped record with an unknown kind is refused naming the case number and field."""
    with pytest.raises(InvalidFilingError, match=r"^BAD-7: .*kind"):
        filing_from_record({"case_no": "BAD-7", "kind": "NOT_A_KIND", "title": "x"})


def test_engine_record_with_an_inconsistent_deadline_is_refused():
    """A DATE deadline without its date is refused at intake, naming the case."""
    rec = json.loads(make_filing(case_no="BAD-8").model_dump_json())
    rec["deadline"] = {"kind": "DATE", "due_date": None}

    with pytest.raises(InvalidFilingError, match="BAD-8"):
        filing_from_record(rec)


def test_engine_record_with_an_invalid_case_number_is_refused():
    """Case numbers are restricted to letters, digits, dot, underscore and dash."""
    with pytest.raises(InvalidFilingError, match="case_no"):
        filing_from_record({"case_no": "案件 1", "kind": "PETITION", "title": "x"})


def test_sample_shaped_record_with_an_unknown_kind_is_refused():
    """An unknown case_kind is refused naming the record."""
    with pytest.raises(InvalidFilingError, match=r"^X-1: unknown case kind"):
        filing_from_record({"case_id": "X-1", "case_kind": "SOMETHING_ELSE"})


def test_sample_shaped_record_with_an_unparsable_deadline_is_refused():
    """A deadline text that is no known form is refused naming the record."""
    rec = {"case_id": "X-2", "case_kind": "FEEDBACK_PROBLEM", "title_zh": "标题", "deadline": {"raw_zh": "尽快"}}

    with pytest.raises(InvalidFilingError, match="^X-2: "):
        filing_from_record(rec)


def test_sample_shaped_record_without_a_title_is_refused():
    """A sample-shaped record with no title in any language is refused naming the record."""
    with pytest.raises(InvalidFilingError, match="^X-3: .*title"):
        filing_from_record({"case_id": "X-3", "case_kind": "FEEDBACK_PROBLEM"})


def test_record_without_any_case_number_is_refused_with_a_placeholder():
    """A record naming no case at all is refused, and says so."""
    with pytest.raises(InvalidFilingError, match="no case number"):
        filing_from_record({"case_kind": "FEEDBACK_PROBLEM", "title_zh": "x"})


def test_duplicate_measure_numbers_are_renumbered():
    """Sample measures with repeated seq numbers are renumbered 1..n so each is addressable."""
    rec = {
        "case_id": "X-4", "case_kind": "FEEDBACK_PROBLEM", "title_zh": "标题",
        "measures": [{"seq": 1, "zh": "措施甲"}, {"seq": 1, "zh": "措施乙"}, {"zh": "措施丙"}],
    }

    filing = filing_from_record(rec)

    assert [(m.seq, m.text) for m in filing.measures] == [(1, "措施甲"), (2, "措施乙"), (3, "措施丙")]


@pytest.mark.parametrize("doc", [{"cases": "nope"}, "text", 42, {"other": []}])
def test_import_document_must_be_a_list_or_have_a_cases_list(doc: Any):
    """A document that is neither a list nor {cases: [...]} is refused."""
    with pytest.raises(InvalidFilingError):
        records_from_document(doc)


def test_import_document_records_must_be_objects():
    """Non-object records are refused, naming their positions."""
    with pytest.raises(InvalidFilingError, match=r"\[1\]"):
        records_from_document([{"case_id": "A"}, "B"])


def test_import_document_may_be_a_plain_list():
    """A bare JSON list is accepted as the records."""
    assert records_from_document([{"case_id": "A"}]) == [{"case_id": "A"}]
