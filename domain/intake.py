"""Turns import records into case filings, with a clear reason for every refusal.

Two shapes are accepted: the engine's own `CaseFiling` JSON (has `case_no` and
`kind`), and records in the shape of `shared/domain/sample_cases.json` (have
`case_id` and `case_kind`).

The kind may be given in the office's words ("反馈问题整改任务", "信访举报交办件", "交办件",
"警示片披露问题", …; domain/office_terms.py) as well as the engine's English value; a `stage`
(阶段), if given, must be 建档立案 REGISTERED (an import files new cases).
"""

from __future__ import annotations

from datetime import date
from typing import Any

from pydantic import ValidationError

from domain.deadlines import parse_deadline, validate_spec
from domain.enums import CaseKind, DeadlineKind
from domain.errors import DeadlineParseError, InvalidFilingError
from domain.model import CaseFiling, DeadlineSpec, Measure, Milestone
from domain.office_terms import accepted_kinds, check_import_stage, kind_from_term

# Sample-data kinds → engine kinds. Aggregates count many cases and are refused.
SAMPLE_KIND_MAP: dict[str, CaseKind] = {
    "FEEDBACK_PROBLEM": CaseKind.FEEDBACK_PROBLEM,
    "LOOKBACK_FEEDBACK_PROBLEM": CaseKind.FEEDBACK_PROBLEM,
    "LOCAL_RECTIFICATION_TASK": CaseKind.FEEDBACK_PROBLEM,
    "SUPERVISION_TRIGGERED_TASK": CaseKind.FEEDBACK_PROBLEM,
    "INSPECTION_AND_WARNING_FILM_TASK": CaseKind.WARNING_FILM,
    "COMPLAINT_DRIVEN_TASK": CaseKind.PETITION,
}
AGGREGATE_KINDS = {"PETITION_BATCH_AGGREGATE", "PETITION_HANDLING_AGGREGATE", "FEEDBACK_TASK_SET_AGGREGATE"}


def _zh(value: Any) -> str:
    if isinstance(value, dict):
        return str(value.get("zh") or value.get("en") or "")
    return str(value or "")


def _units(value: Any) -> list[str]:
    out: list[str] = []
    for u in value or []:
        name = _zh(u).strip()
        if name and name not in out:
            out.append(name)
    return out


def _measures(items: list[dict[str, Any]] | None) -> list[Measure]:
    measures = []
    for i, m in enumerate(items or [], start=1):
        milestones = []
        for ms in m.get("milestones") or []:
            due = ms.get("date")
            milestones.append(
                Milestone(
                    due_date=date.fromisoformat(due) if due else None,
                    recurrence=ms.get("recurrence"),
                    what=ms.get("what") or "",
                )
            )
        measures.append(Measure(seq=int(m.get("seq") or i), text=_zh(m) or m.get("en", ""), milestones=milestones))
    if len({m.seq for m in measures}) != len(measures):
        # Numbering in the seeds is partly lost; renumber so each measure is addressable.
        measures = [m.model_copy(update={"seq": i}) for i, m in enumerate(measures, start=1)]
    return measures


def _deadline(raw: dict[str, Any] | None) -> DeadlineSpec | None:
    if not raw:
        return None
    kind = raw.get("kind")
    if kind is None:
        text = raw.get("raw_zh")
        return parse_deadline(text) if text else None
    due = raw.get("due_date")
    spec = DeadlineSpec(
        kind=DeadlineKind(kind),
        due_date=date.fromisoformat(due) if due else None,
        long_term=bool(raw.get("long_term")),
        raw_zh=raw.get("raw_zh") or "",
    )
    validate_spec(spec)
    return spec


def filing_from_record(record: dict[str, Any]) -> CaseFiling:
    """One import record as a case filing.

    Raises:
        InvalidFilingError: naming the record and what is wrong with it.
    """
    ident = record.get("case_no") or record.get("case_id") or "<no case number>"
    try:
        if str(record.get("stage") or "").strip():
            check_import_stage(record["stage"])
        if "case_no" in record and "kind" in record:
            record = {k: v for k, v in record.items() if k != "stage"}
            record["kind"] = kind_from_term(record["kind"]).value
            filing = CaseFiling.model_validate(record)
            if filing.deadline is not None:
                validate_spec(filing.deadline)
            return filing
        raw_kind = record.get("case_kind")
        if raw_kind in AGGREGATE_KINDS:
            raise InvalidFilingError(
                f"{ident}: {raw_kind} is an aggregate record (counts of many cases), not one case"
            )
        if raw_kind in SAMPLE_KIND_MAP:
            kind = SAMPLE_KIND_MAP[raw_kind]
        else:
            try:
                kind = kind_from_term(raw_kind)
            except InvalidFilingError:
                raise InvalidFilingError(
                    f"unknown case kind {raw_kind!r} (类型无法识别); accepted 可用: "
                    f"{', '.join(SAMPLE_KIND_MAP)}; {accepted_kinds()}") from None
        ctx = record.get("inspection_context") or {}
        problem = record.get("problem_zh") or record.get("problem_en") or ""
        return CaseFiling(
            case_no=record["case_id"],
            kind=kind,
            title=record.get("title_zh_simplified") or record.get("title_zh") or record.get("title_en") or "",
            problem=problem,
            target=record.get("target_zh") or record.get("target_en") or "",
            measures=_measures(record.get("measures")),
            responsible_units=_units(record.get("responsible_units")),
            lead_supervising_units=_units(record.get("lead_supervising_units")),
            assisting_units=_units(record.get("assisting_supervising_units") or record.get("assisting_units")),
            lead_leader=_zh(record.get("lead_supervising_leader") or record.get("responsible_leader")),
            deadline=_deadline(record.get("deadline")),
            source=record.get("source_kind_zh") or "",
            inspection_round=_zh(ctx.get("round_zh")) if ctx else "",
            jurisdiction=record.get("jurisdiction_zh") or "",
            complaint=problem if kind is CaseKind.PETITION else "",
            programme_id=str(record.get("programme_id") or ""),
        )
    except InvalidFilingError as e:
        if str(e).startswith(f"{ident}:"):
            raise
        raise InvalidFilingError(f"{ident}: {e}") from None
    except KeyError as e:
        raise InvalidFilingError(f"{ident}: missing field {e}") from None
    except (ValidationError, DeadlineParseError, ValueError) as e:
        raise InvalidFilingError(f"{ident}: {_short(e)}") from None


def _short(e: Exception) -> str:
    if isinstance(e, ValidationError):
        return "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'record'}: {err['msg']}" for err in e.errors()
        )
    return str(e)


def records_from_document(doc: Any) -> list[dict[str, Any]]:
    """The records of an import document: a list, or an object with `cases`."""
    if isinstance(doc, list):
        records = doc
    elif isinstance(doc, dict) and isinstance(doc.get("cases"), list):
        records = doc["cases"]
    else:
        raise InvalidFilingError("import document must be a JSON list of cases or an object with a 'cases' list")
    bad = [i for i, r in enumerate(records) if not isinstance(r, dict)]
    if bad:
        raise InvalidFilingError(f"records at positions {bad} are not JSON objects")
    return records
