"""Actions, filing and forms shared by the console's HTML pages and its JSON API.

Actions go through `workflows.client.act`, which records refusals. The actor is
always built here from the authenticated user. Reads shown to a user (lists, case
pages, my work, dashboard, export rows, audit pages) are not here: they all go
through `admin.readmodel`, scoped by `domain.visibility`. This module keeps the
request filter (`CaseFilter`) and the export file formats.
"""

from __future__ import annotations

import csv
import io
import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
from pydantic import ValidationError
from temporalio.client import Client

from admin.users import User
from domain.calendar import WorkingCalendar
from domain.deadlines import parse_deadline
from domain.enums import (
    ACTION_LABELS_ZH,
    KIND_LABELS_ZH,
    RUNG_ORDER,
    STAGE_LABELS_ZH,
    Action,
    CaseKind,
    Role,
    Rung,
    Stage,
    event_label_zh,
)
from domain.errors import CaseError, InvalidFilingError
from domain.intake import filing_from_record, records_from_document
from domain.lifecycle import ACTIVE_STAGES, RULES_BY_ACTION, allowed_actions, rule_for
from domain.model import CRITERIA_LABELS_ZH, ActionRequest, Actor, CaseFiling, CaseState, criterion_required
from domain.office_terms import kind_from_term
from domain.text import MAX_TEXT, check_text, control_char, printable_one_line, strip_controls
from workflows import client as ops
from workflows.contracts import ActionResult

PAGE_SIZE = 50
MAX_PAGE = 1_000_000  # page numbers and sizes past this are refused (400), never an SQL overflow
MAX_FILTER = 200  # characters of a filter value


def _shown(raw: str) -> str:
    """A refused value, safe to echo in an error message."""
    return repr(printable_one_line(raw[:40]) + ("…" if len(raw) > 40 else ""))


class FormError(ValueError):
    """A field of an action or filing form is missing or malformed; the message names it."""


class ActionRefused(Exception):
    """The action was refused (by the console's own check or the workflow's validator)."""

    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(f"{error_type}: {message}")
        self.error_type, self.message = error_type, message


async def check_evidence_references(pool: asyncpg.Pool, case_no: str, req: ActionRequest) -> None:
    """An action's `evidence:` references must be well formed and name files of this case."""
    from admin.evidence_store import check_references
    from domain.evidence import EvidenceError

    try:
        await check_references(pool, case_no, req)
    except EvidenceError as e:
        raise ActionRefused("InvalidInput", str(e)) from None


def stage_label(stage: str | Stage | None) -> str:
    if not stage:
        return ""
    try:
        return STAGE_LABELS_ZH[Stage(stage)]
    except ValueError:
        return str(stage)


event_label = event_label_zh


def rung_for_level(level: int) -> Rung | None:
    order = list(RUNG_ORDER)
    return order[level - 1] if 1 <= level <= len(order) else None


def allowed_actions_for(user: User, state: CaseState | None) -> dict[Action, Role]:
    """The actions this user may take now on a case, each with the role it will be taken in."""
    if state is None or user.read_only:
        return {}
    out: dict[Action, Role] = {}
    for actor in user.actors():
        for a in allowed_actions(state, actor):
            out.setdefault(a, actor.role)
    return dict(sorted(out.items(), key=lambda kv: list(Action).index(kv[0])))


# ------------------------------------------------------------------ filters


@dataclass
class CaseFilter:
    stage: str = ""
    kind: str = ""
    unit: str = ""
    overdue: bool = False
    rung: int | None = None  # escalation level; 0 = not escalated
    inspection_round: str = ""
    q: str = ""
    page: int = 1
    page_size: int = PAGE_SIZE

    @classmethod
    def from_params(cls, p: Mapping[str, str]) -> CaseFilter:
        def opt_int(name: str) -> int | None:
            raw = (p.get(name) or "").strip()
            if raw == "":
                return None
            try:
                value = int(raw)
            except ValueError:
                raise FormError(f"{name} must be a number, not {_shown(raw)}") from None
            if not -MAX_PAGE <= value <= MAX_PAGE:
                raise FormError(f"{name} must be at most {MAX_PAGE}, not {_shown(raw)}")
            return value

        for name in ("stage", "kind", "unit", "round", "inspection_round", "q"):
            raw = p.get(name) or ""
            try:
                check_text(raw, MAX_FILTER, multiline=False)
            except ValueError as e:
                raise FormError(f"filter {name}: {e}") from None

        f = cls(
            stage=(p.get("stage") or "").strip(),
            kind=(p.get("kind") or "").strip(),
            unit=(p.get("unit") or "").strip(),
            overdue=(p.get("overdue") or "").lower() in ("1", "true", "on", "yes"),
            rung=opt_int("rung"),
            inspection_round=(p.get("round") or p.get("inspection_round") or "").strip(),
            q=(p.get("q") or "").strip(),
            page=max(1, opt_int("page") or 1),
            page_size=min(500, max(1, opt_int("page_size") or PAGE_SIZE)),
        )
        if f.stage and f.stage not in Stage.__members__:
            raise FormError(f"unknown stage {_shown(f.stage)}")
        if f.kind and f.kind not in CaseKind.__members__:
            raise FormError(f"unknown kind {_shown(f.kind)}")
        if f.rung is not None and not 0 <= f.rung <= len(RUNG_ORDER):
            raise FormError(f"rung must be 0..{len(RUNG_ORDER)}")
        return f

    def where(self, now: datetime) -> tuple[str, list[Any]]:
        conds, args = [], []

        def arg(v: Any) -> str:
            args.append(v)
            return f"${len(args)}"

        if self.stage:
            conds.append(f"stage = {arg(self.stage)}")
        if self.kind:
            conds.append(f"kind = {arg(self.kind)}")
        if self.unit:
            a = arg(self.unit)
            conds.append(f"({a} = ANY(responsible_units) OR {a} = ANY(lead_supervising_units) "
                         f"OR {a} = ANY(assisting_units))")
        if self.overdue:
            conds.append(f"due_at IS NOT NULL AND due_at < {arg(now)} AND stage = ANY({arg(_active())})")
        if self.rung is not None:
            conds.append(f"escalation_level = {arg(self.rung)}")
        if self.inspection_round:
            conds.append(f"inspection_round = {arg(self.inspection_round)}")
        if self.q:
            a = arg(f"%{self.q}%")
            conds.append(f"(case_no ILIKE {a} OR title ILIKE {a})")
        return (" WHERE " + " AND ".join(conds)) if conds else "", args

    def query_string(self, **override: Any) -> str:
        from urllib.parse import urlencode

        d = {"stage": self.stage, "kind": self.kind, "unit": self.unit, "overdue": "1" if self.overdue else "",
             "rung": "" if self.rung is None else str(self.rung), "round": self.inspection_round, "q": self.q,
             "page": str(self.page), "page_size": "" if self.page_size == PAGE_SIZE else str(self.page_size)}
        d.update({k: str(v) for k, v in override.items()})
        return urlencode({k: v for k, v in d.items() if v not in ("", None)})


def _active() -> list[str]:
    return [s.value for s in ACTIVE_STAGES]


@dataclass
class Service:
    pool: asyncpg.Pool
    client: Client
    task_queue: str
    calendar: WorkingCalendar
    office_unit: str = "整改办"

    # ------------------------------------------------------------ reading (for acting only)
    # Every read shown to a user goes through admin.readmodel (scoped by domain.visibility).

    async def live_state(self, case_no: str) -> CaseState | None:
        try:
            return await ops.get_state(self.client, case_no)
        except Exception:  # archived beyond retention, or Temporal unreachable
            return None

    # ------------------------------------------------------------ acting

    async def perform(
        self, user: User, case_no: str, action: Action, payload: Mapping[str, Any], request_id: str | None = None
    ) -> ActionResult:
        """Take one action as this user; raises ActionRefused with the reason when refused.

        The role is the one of the user's roles the rule needs; the workflow's
        validator checks the actor again.
        """
        rid = request_id or f"console-{uuid.uuid4().hex}"
        rule = rule_for(action)
        candidates = [r for r in user.roles if r in rule.roles and r is not Role.AUDITOR]
        if user.read_only or not candidates:
            role = user.roles[0]
            why = (f"user {user.username} ({', '.join(r.value for r in user.roles)}, {user.unit}) may not "
                   f"{action.value}: " + ("auditors only read" if user.read_only else
                   "allowed roles are " + ", ".join(sorted(r.value for r in rule.roles))))
            req = ActionRequest(action=action, actor=Actor(user_id=user.username, role=role, unit=user.unit),
                                request_id=rid)
            await ops.record_refusal(self.pool, case_no, req, "NotAuthorizedError", why)
            raise ActionRefused("NotAuthorizedError", why)
        role = candidates[0]
        if len(candidates) > 1:
            state = await self.live_state(case_no)
            if state is not None:
                for r in candidates:
                    if action in allowed_actions(state, user.actor(r)):
                        role = r
                        break
        try:
            req = build_request(action, user.actor(role), payload, rid)
        except FormError as e:
            raise ActionRefused("InvalidInput", str(e)) from None
        await check_evidence_references(self.pool, case_no, req)
        try:
            return await ops.act(self.client, case_no, req, pool=self.pool)
        except ops.ActionRefusedError as e:
            raise ActionRefused(e.error_type, e.message) from None

    # ------------------------------------------------------------ filing

    def office_actor(self, user: User) -> Actor:
        if Role.RECTIFICATION_OFFICE not in user.roles:
            raise ActionRefused("NotAuthorizedError", "only the rectification office (整改办) files cases")
        return user.actor(Role.RECTIFICATION_OFFICE)

    async def file_one(self, user: User, filing: CaseFiling) -> ops.FilingOutcome:
        actor = self.office_actor(user)
        outcome = await ops.file_case(self.client, filing, actor, self.task_queue)
        if outcome.filed:
            await self.wait_for_projection(filing.case_no)
        return outcome

    async def wait_for_projection(self, case_no: str, timeout: float = 10.0) -> bool:
        """Wait until the worker has written the new case's projection row (FILED)."""
        import asyncio

        loop = asyncio.get_running_loop()
        end = loop.time() + timeout
        while loop.time() < end:
            if await self.pool.fetchval("SELECT true FROM case_projection WHERE case_no = $1", case_no):
                return True
            await asyncio.sleep(0.1)
        return False

    async def import_rows(self, user: User, rows: list[tuple[str, dict[str, Any] | str]]) -> list[dict[str, Any]]:
        """Validate every row, then file the good ones; one report line per row.

        `rows` holds (row label, record) or (row label, error text) for rows that
        could not even be read. Each filing is one workflow start, idempotent by
        case number, so a row is either filed or not: never half-filed.
        """
        actor = self.office_actor(user)
        report: list[dict[str, Any]] = []
        good: list[tuple[int, CaseFiling]] = []
        seen: dict[str, str] = {}
        for label, rec in rows:
            entry: dict[str, Any] = {"row": label, "case_no": "", "filed": False, "reason": ""}
            report.append(entry)
            if isinstance(rec, str):
                entry["reason"] = rec
                continue
            entry["case_no"] = str(rec.get("case_no") or rec.get("case_id") or "")
            try:
                f = filing_from_record(rec)
            except InvalidFilingError as e:
                entry["reason"] = str(e)
                continue
            if f.case_no in seen:
                entry["reason"] = f"case number {f.case_no} appears twice (also row {seen[f.case_no]})"
                continue
            seen[f.case_no] = label
            good.append((len(report) - 1, f))
        good = await self._known_programmes(good, report)
        outcomes = await ops.file_cases(self.client, [f for _, f in good], actor, self.task_queue)
        for (i, _), o in zip(good, outcomes, strict=True):
            report[i]["filed"], report[i]["reason"] = o.filed, o.reason
        return report


    async def _known_programmes(self, good: list[tuple[int, CaseFiling]],
                                report: list[dict[str, Any]]) -> list[tuple[int, CaseFiling]]:
        """Rows naming a programme that does not exist are refused, naming it (issue 13)."""
        wanted = sorted({f.programme_id for _, f in good if f.programme_id})
        if not wanted:
            return good
        known = {r[0] for r in await self.pool.fetch(
            "SELECT programme_id FROM programme_projection WHERE programme_id = ANY($1)", wanted)}
        keep = []
        for i, f in good:
            if f.programme_id and f.programme_id not in known:
                report[i]["reason"] = (f"{f.case_no}: 整改方案 programme_id {f.programme_id!r} does not exist "
                                       "(create it first: casectl programme create)")
            else:
                keep.append((i, f))
        return keep


# ------------------------------------------------------------------ action forms

# What the form collects for each `needs` entry of a rule (and optional extras per action).
OPTIONAL_FIELDS: dict[Action, tuple[str, ...]] = {
    Action.APPROVE_EXTENSION: ("new_due_date",),
    Action.PRELIM_REJECT: ("new_due_date",),
    Action.VERIFY_FAIL: ("new_due_date",),
    Action.UPHOLD_OBJECTION: ("new_due_date", "objection_id"),
    Action.DISMISS_OBJECTION: ("objection_id",),
    Action.REOPEN: ("new_due_date",),
    # Escalation (domain/escalation.py): a referral needs its 追责建议报告 / dossier reference.
    Action.APPLY_RUNG: ("report_ref",),
    Action.CONFIRM_ESCALATION: ("report_ref",),
    Action.REFER_ACCOUNTABILITY: ("report_ref",),
    Action.DE_ESCALATE: ("rung", "new_due_date"),
}
FIELD_LABELS_ZH = {
    "reason": "理由/说明 (reason)",
    "finding": "核实结论 (finding)",
    "new_due_date": "期限 (due date)",
    "rung": "督办措施 (rung)",
    "referral_path": "移交类型 (referral path)",
    "referral_id": "移交编号 (referral)",
    "measure_seq": "措施 (measure)",
    "lookback_finding": "回头看发现 (look-back finding)",
    "objection_id": "异议 (objection)",
    "proposal_id": "拟采取措施 (escalation proposal)",
    "report_ref": "追责建议报告/案卷编号 (accountability report or dossier reference; 移交问责 only)",
    "criteria": "验收标准 (closure criteria)",
    "amendment": "补正内容 (amendment)",
    "evidence": "佐证材料 (evidence references, one per line)",
    "child_case_no": "抽查子案件 (spot-checked child case)",
}


def form_fields(action: Action) -> list[tuple[str, bool]]:
    """(field name, required) for an action's form, in display order."""
    rule = RULES_BY_ACTION[action]
    fields = [(n, True) for n in rule.needs]
    fields += [(n, False) for n in OPTIONAL_FIELDS.get(action, ()) if n not in rule.needs]
    if "reason" not in rule.needs:
        fields.append(("reason", False))
    fields.append(("evidence", False))
    return fields


def _lines(raw: Any) -> list[str]:
    if raw is None:
        return []
    if isinstance(raw, list):
        return [str(x).strip() for x in raw if str(x).strip()]
    return [x.strip() for x in str(raw).replace("\r", "").replace(";", "\n").replace(";", "\n").split("\n")
            if x.strip()]


def _units(raw: Any) -> list[str]:
    """Unit names, one per line (or separated by ';'). Not split on 、 or commas: names contain them
    (e.g. 蓝山县委、县政府 is one responsible unit)."""
    out: list[str] = []
    for u in _lines(raw):
        if u not in out:
            out.append(u)
    return out


def _picked(form: Mapping[str, Any], name: str) -> list[str]:
    """Evidence files ticked in a form (checkboxes sharing one name): their references."""
    values = form.getlist(name) if hasattr(form, "getlist") else _lines(form.get(name))
    return [str(v).strip() for v in values if str(v).strip()]


def payload_from_form(action: Action, form: Mapping[str, Any]) -> dict[str, Any]:
    """Turn the fields of an HTML action form into the JSON shape of an action payload."""
    out: dict[str, Any] = {}
    for name, _required in form_fields(action):
        if name == "criteria":
            crit: dict[str, Any] = {}
            for key in CRITERIA_LABELS_ZH:
                met = form.get(f"{key}_met") in ("on", "true", "1")
                ev = _lines(form.get(f"{key}_evidence")) + _picked(form, f"{key}_evidence_file")
                if not criterion_required(key) and not met and not ev:
                    continue
                crit[key] = {"met": met, "evidence": ev, "note": str(form.get(f"{key}_note") or "")}
            out["criteria"] = crit
        elif name == "amendment":
            am: dict[str, Any] = {}
            for key in ("title", "problem", "target", "lead_leader"):
                v = str(form.get(f"am_{key}") or "").strip()
                if v:
                    am[key] = v
            for key in ("responsible_units", "lead_supervising_units", "assisting_units"):
                if str(form.get(f"am_{key}") or "").strip():
                    am[key] = _units(form.get(f"am_{key}"))
            if measures := _lines(form.get("am_measures")):
                am["measures"] = [{"seq": i, "text": t} for i, t in enumerate(measures, start=1)]
            if raw := str(form.get("am_deadline") or "").strip():
                try:
                    am["deadline"] = parse_deadline(raw).model_dump(mode="json")
                except CaseError as e:
                    raise FormError(f"整改时限 deadline: {e}") from None
            if not am:
                raise FormError("amendment: fill in at least one field to complete (补正内容为空)")
            out["amendment"] = am
        elif name == "evidence":
            out["evidence"] = _lines(form.get("evidence")) + _picked(form, "evidence_file")
        else:
            v = str(form.get(name) or "").strip()
            if v:
                out[name] = v
    return out


def build_request(action: Action, actor: Actor, payload: Mapping[str, Any], request_id: str) -> ActionRequest:
    """An ActionRequest from a payload; the actor never comes from the payload."""
    if "actor" in payload:
        raise FormError("the actor comes from the login or API token, not from the request")
    body = {k: v for k, v in payload.items() if k not in ("action", "request_id", "csrf_token")}
    for name, required in form_fields(action):
        if required and name != "evidence" and body.get(name) in (None, "", [], {}):
            raise FormError(f"{FIELD_LABELS_ZH.get(name, name)} is required for {action.value} "
                            f"({ACTION_LABELS_ZH[action]})")
    try:
        return ActionRequest.model_validate({**body, "action": action, "actor": actor, "request_id": request_id})
    except ValidationError as e:
        msgs = "; ".join(f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in e.errors())
        raise FormError(msgs) from None


# ------------------------------------------------------------------ import and export

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

