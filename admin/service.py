"""Actions, filing and forms shared by the console's HTML pages and its JSON API.

Actions go through `workflows.client.act`, which records refusals. The actor is
always built here from the authenticated user. Reads shown to a user (lists, case
pages, my work, dashboard, export rows, audit pages) are not here: they all go
through `admin.readmodel`, scoped by `domain.visibility`. This module keeps the
request filter (`CaseFilter`) and the export file formats.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg
from pydantic import ValidationError
from temporalio.client import Client

from admin.formtext import FormError, _lines, _picked, _units  # noqa: F401 (FormError re-exported)

# Import and export live in admin/sheets.py; re-exported so `admin.service.export_csv`, ... keep working.
from admin.sheets import (  # noqa: F401, E402
    EXPORT_HEADERS,
    FORMULA_PREFIXES,
    IMPORT_COLUMNS,
    IMPORT_HEADERS_ZH,
    KIND_BY_ZH,
    _cell,
    _check_unzipped,
    _formula_like,
    _no_controls,
    export_csv,
    export_xlsx,
    filing_from_form,
    record_from_sheet_row,
    rows_from_upload,
)
from admin.users import User
from domain.calendar import WorkingCalendar
from domain.deadlines import parse_deadline
from domain.enums import (
    ACTION_LABELS_ZH,
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
from domain.intake import filing_from_record
from domain.lifecycle import ACTIVE_STAGES, RULES_BY_ACTION, allowed_actions, rule_for
from domain.model import CRITERIA_LABELS_ZH, ActionRequest, Actor, CaseFiling, CaseState, criterion_required
from domain.reopen import reopen_allowed
from domain.text import check_text, printable_one_line
from workflows import client as ops
from workflows.contracts import ActionResult
from workflows.reopen import reopen_case

PAGE_SIZE = 50
MAX_PAGE = 1_000_000  # page numbers and sizes past this are refused (400), never an SQL overflow
MAX_FILTER = 200  # characters of a filter value


def _shown(raw: str) -> str:
    """A refused value, safe to echo in an error message."""
    return repr(printable_one_line(raw[:40]) + ("…" if len(raw) > 40 else ""))


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
        if reopen_allowed(state, actor):  # issue 14: an archived case is reopened as a linked new run
            out.setdefault(Action.REOPEN, actor.role)
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
            if action is Action.REOPEN:  # issue 14: live or archived, one path (workflows/reopen.py)
                return await reopen_case(
                    self.client, self.pool, case_no=case_no, actor=req.actor, new_due_date=req.new_due_date,
                    lookback_finding=req.lookback_finding.value if req.lookback_finding else "",
                    reason=req.reason, request_id=req.request_id, task_queue=self.task_queue,
                )
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


