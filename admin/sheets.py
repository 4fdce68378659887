"""Import and export sheets of the console and casectl (split out of admin/service.py): rows of an
uploaded .xlsx/.csv/.json become filing records, the case list becomes .csv/.xlsx (formula-safe).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from admin.formtext import FormError, _lines, _units
from domain.deadlines import parse_deadline
from domain.enums import (
    KIND_LABELS_ZH,
)
from domain.errors import CaseError, InvalidFilingError
from domain.intake import filing_from_record, records_from_document
from domain.model import CaseFiling
from domain.office_terms import kind_from_term
from domain.text import MAX_TEXT, control_char, strip_controls

IMPORT_COLUMNS = (
    "case_no", "kind", "title", "problem", "target", "measures", "responsible_units", "lead_supervising_units",
    "assisting_units", "deadline", "inspection_round", "jurisdiction", "source", "lead_leader", "ladder_profile",
    "complaint", "stage", "programme_id",
)
IMPORT_HEADERS_ZH = {
    "案件编号": "case_no", "类型": "kind", "标题": "title", "问题": "problem", "整改目标": "target",
    "整改措施": "measures", "主体责任单位": "responsible_units", "牵头督导单位": "lead_supervising_units",
    "配合督导单位": "assisting_units", "整改时限": "deadline", "督察轮次": "inspection_round", "辖区": "jurisdiction",
    "来源": "source", "牵头督导领导": "lead_leader", "督办梯度": "ladder_profile", "举报内容": "complaint",
    "阶段": "stage",  # issue 13: only 建档立案 (domain/office_terms.py)
    "整改方案": "programme_id", "整改方案编号": "programme_id",  # issue 13: the programme a case belongs to
}
KIND_BY_ZH = {v: k.value for k, v in KIND_LABELS_ZH.items()}


def record_from_sheet_row(values: dict[str, Any]) -> dict[str, Any]:
    """One .xlsx row (header → cell) as an engine filing record, for `filing_from_record`."""
    rec: dict[str, Any] = {}
    for header, cell in values.items():
        key = IMPORT_HEADERS_ZH.get(str(header).strip().split(" ")[0], str(header).strip().lower())
        if key not in IMPORT_COLUMNS or cell is None or str(cell).strip() == "":
            continue
        if isinstance(cell, datetime | date) and key == "deadline":
            d = cell.date() if isinstance(cell, datetime) else cell
            cell = f"{d.year}年{d.month}月{d.day}日"
        rec[key] = str(cell).strip() if not isinstance(cell, int | float) else str(cell)
    if "kind" in rec:  # the office's words (domain/office_terms.py); unknown ones are refused by the intake
        try:
            rec["kind"] = kind_from_term(rec["kind"]).value
        except InvalidFilingError:
            pass
    if "measures" in rec:
        rec["measures"] = [{"seq": i, "text": t} for i, t in enumerate(_lines(rec["measures"]), start=1)]
    for key in ("responsible_units", "lead_supervising_units", "assisting_units"):
        if key in rec:
            rec[key] = _units(rec[key])
    if "deadline" in rec:
        try:
            rec["deadline"] = parse_deadline(rec["deadline"]).model_dump(mode="json")
        except CaseError as e:
            raise FormError(f"{rec.get('case_no') or '?'}: 整改时限 deadline {rec['deadline']!r}: {e}") from None
    return rec


def rows_from_upload(filename: str, content: bytes, max_rows: int = 2000,
                     max_unzipped: int = 50 * 1024 * 1024) -> list[tuple[str, dict[str, Any] | str]]:
    """Rows of an uploaded .xlsx or .json batch; unreadable rows carry their error text.

    Bounded (issue 10): at most `max_rows` rows, an .xlsx at most `max_unzipped` bytes once
    unzipped (checked before openpyxl reads it), no cell longer than MAX_TEXT characters.
    CPU-bound: the console calls it in a worker thread.

    Raises:
        FormError: the file as a whole cannot be read, or passes a limit (named).
    """
    name = filename.lower()
    if name.endswith(".json"):
        try:
            doc = json.loads(content.decode("utf-8"))
            records = records_from_document(doc)
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise FormError(f"{filename}: not valid UTF-8 JSON: {e}") from None
        except InvalidFilingError as e:
            raise FormError(f"{filename}: {e}") from None
        if len(records) > max_rows:
            raise FormError(f"{filename}: {len(records)} records; at most {max_rows} per import "
                            "(CONSOLE_IMPORT_MAX_ROWS): split the file")
        return [(f"#{i}", r) for i, r in enumerate(records, start=1)]
    if name.endswith(".xlsx"):
        from openpyxl import load_workbook

        _check_unzipped(filename, content, max_unzipped)
        try:
            wb = load_workbook(io.BytesIO(content), read_only=True, data_only=True)
        except Exception as e:
            raise FormError(f"{filename}: not a readable .xlsx workbook: {e}") from None
        ws = wb.worksheets[0]
        it = ws.iter_rows(values_only=True)
        header = next(it, None)
        if not header:
            raise FormError(f"{filename}: the first sheet is empty (need a header row)")
        keys = [str(h or "").strip() for h in header]
        known = [k for k in keys if IMPORT_HEADERS_ZH.get(k.split(" ")[0], k.lower()) in IMPORT_COLUMNS]
        if not any(IMPORT_HEADERS_ZH.get(k.split(" ")[0], k.lower()) == "case_no" for k in known):
            raise FormError(f"{filename}: header row has no case_no (案件编号) column; columns: {', '.join(keys)}")
        out: list[tuple[str, dict[str, Any] | str]] = []
        for n, row in enumerate(it, start=2):
            if n - 1 > max_rows:
                raise FormError(f"{filename}: more than {max_rows} rows; at most {max_rows} per import "
                                "(CONSOLE_IMPORT_MAX_ROWS): split the file")
            if row is None or all(c is None or str(c).strip() == "" for c in row):
                continue
            long = next((i for i, c in enumerate(row) if isinstance(c, str) and len(c) > MAX_TEXT), None)
            if long is not None:
                out.append((f"row {n}", f"column {long + 1} has {len(row[long])} characters; "
                                         f"a cell holds at most {MAX_TEXT}"))
                continue
            try:
                out.append((f"row {n}", record_from_sheet_row(dict(zip(keys, row, strict=False)))))
            except FormError as e:
                out.append((f"row {n}", str(e)))
        return out
    raise FormError(f"{filename}: upload a .xlsx or .json file")


def _check_unzipped(filename: str, content: bytes, max_unzipped: int) -> None:
    """Refuse an .xlsx whose parts add up to more than `max_unzipped` bytes (a zip bomb)."""
    import zipfile

    try:
        with zipfile.ZipFile(io.BytesIO(content)) as z:
            total = sum(i.file_size for i in z.infolist())
    except zipfile.BadZipFile as e:
        raise FormError(f"{filename}: not a readable .xlsx workbook: {e}") from None
    if total > max_unzipped:
        raise FormError(f"{filename}: {total // (1024 * 1024)} MiB once unzipped; at most "
                        f"{max_unzipped // (1024 * 1024)} MiB (CONSOLE_IMPORT_MAX_UNZIPPED_BYTES)")


# A spreadsheet runs text starting with one of these as a formula (CSV/formula injection).
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def _no_controls(v: str) -> str:
    """Control characters (other than tab, CR, newline) shown as \\xNN: stored before the models
    refused them, they would otherwise make openpyxl refuse the whole export."""
    return v if control_char(v, multiline=True) is None else strip_controls(v)


def _formula_like(v: Any) -> bool:
    return isinstance(v, str) and v.startswith(FORMULA_PREFIXES)


EXPORT_HEADERS = (
    ("case_no", "案件编号 Case no."), ("kind_zh", "类型 Kind"), ("title", "标题 Title"), ("stage_zh", "阶段 Stage"),
    ("stage", "Stage (EN)"), ("responsible_units", "主体责任单位 Responsible units"),
    ("lead_supervising_units", "牵头督导单位 Lead supervising units"), ("inspection_round", "督察轮次 Round"),
    ("due_date", "整改时限 Due date"), ("days_left", "剩余工作日 Working days left"),
    ("overdue_days", "逾期工作日 Working days overdue"), ("rung_zh", "督办措施 Escalation rung"),
    ("suspended", "中止 Suspended"), ("filed_at", "立案时间 Filed at (北京时间)"), ("closed_at", "销号时间 Closed at (北京时间)"),
)


def _cell(v: Any) -> Any:
    if isinstance(v, str):
        return _no_controls(v)
    if isinstance(v, list):
        return "、".join(_no_controls(str(x)) for x in v)
    if isinstance(v, datetime):
        return v.astimezone(ZoneInfo("Asia/Shanghai")).strftime("%Y-%m-%d %H:%M")
    if isinstance(v, date):
        return v.isoformat()
    if isinstance(v, bool):
        return "是" if v else ""
    return "" if v is None else v


def export_csv(rows: list[dict[str, Any]]) -> bytes:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow([h for _, h in EXPORT_HEADERS])
    for r in rows:  # text a spreadsheet would run as a formula gets a leading apostrophe
        w.writerow([("'" + c) if _formula_like(c) else c for c in (_cell(r.get(k)) for k, _ in EXPORT_HEADERS)])
    return ("\ufeff" + buf.getvalue()).encode("utf-8")  # BOM: Excel opens it as UTF-8


def export_xlsx(rows: list[dict[str, Any]]) -> bytes:
    from openpyxl import Workbook
    from openpyxl.styles import Font

    wb = Workbook()
    ws = wb.active
    ws.title = "台账"
    ws.append([h for _, h in EXPORT_HEADERS])
    for c in ws[1]:
        c.font = Font(bold=True)
    for r in rows:
        ws.append([_cell(r.get(k)) for k, _ in EXPORT_HEADERS])
        for c in ws[ws.max_row]:
            if _formula_like(c.value):
                c.data_type = "s"  # written as text, never as a formula
    ws.freeze_panes = "A2"
    for col, width in zip("ABCDEFGHIJKLMNO", (14, 10, 50, 12, 18, 30, 30, 28, 12, 10, 10, 10, 6, 20, 20), strict=True):
        ws.column_dimensions[col].width = width
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def filing_from_form(form: Mapping[str, Any]) -> CaseFiling:
    """A case from the filing form; FormError names the bad field."""
    rec = {k: form.get(k) for k in IMPORT_COLUMNS if str(form.get(k) or "").strip()}
    rec = record_from_sheet_row(rec)
    for key in ("case_no", "kind", "title"):
        if not rec.get(key):
            raise FormError(f"{key} is required")
    try:
        return filing_from_record(rec)
    except InvalidFilingError as e:
        raise FormError(str(e)) from None

