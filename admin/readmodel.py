"""The console's read model: every read of a case, scoped to the reader.

Every list, case page, API response, export, dashboard figure, my-work list and audit page
of the console (and so of casectl, which reads through the API) is built here, and only
here: no route builds a view of a case on its own. Which cases and which parts of them a
user sees comes from `domain.visibility` (the rules, by role and unit); this module turns
those rules into one SQL condition for lists and figures, and picks the fields of each row
and case view from the parts granted (deny by default: a field no granted part names is
left out).

A case the reader may not see is answered exactly like a case that does not exist (None
here, 404 in the console and the API), so case numbers cannot be probed. A page the
reader's roles do not open at all (the public's dashboard or export) raises ReadDenied (403).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import asyncpg
from temporalio.client import Client

from admin import fanout_view as fv
from admin import readmodel_pages as pages
from admin.readmodel_pages import AuditReport, _last_months  # noqa: F401 - re-exported
from admin.service import CaseFilter, FormError, allowed_actions_for, rung_for_level, stage_label
from admin.stats_config import light_rule_from_env
from admin.users import User
from domain.calendar import WorkingCalendar, count_days, local_date
from domain.enums import (
    ACTION_LABELS_ZH,
    KIND_LABELS_ZH,
    REFERRED_JSONPATH,
    REFERRED_STATUSES,
    ROLE_LABELS_ZH,
    RUNG_LABELS_ZH,
    CaseKind,
    DayCount,
    Role,
    Stage,
    event_label_zh,
)
from domain.lifecycle import ACTIVE_STAGES, stages_waiting_on
from domain.milestones import measures_view
from domain.model import CaseState, ExtensionRequest, PostingState, Referral
from domain.reporting import status as report_status
from domain.statistics import LIGHT_LABELS_ZH, LightRule, light_for
from domain.visibility import (
    FILING_FIELDS,
    ROW_FIELDS,
    CaseFacts,
    HomeUnits,
    Part,
    Reader,
    Scope,
    View,
    ledger_entry_view,
    may_view,
    objections_view,
    parts_for,
    pick,
    scopes_of,
)
from workflows import client as ops

# Whose move each stage is (for 我的待办), from the lifecycle's table.
RU_STAGES = stages_waiting_on(Role.RESPONSIBLE_UNIT)
LEAD_STAGES = stages_waiting_on(Role.LEAD_SUPERVISOR)
OFFICE_STAGES = stages_waiting_on(Role.RECTIFICATION_OFFICE)

LIST_COLUMNS = """case_no, kind, title, stage, stage_entered_at, responsible_units, lead_supervising_units,
    assisting_units, inspection_round, programme_id, due_date, due_at, escalation_level, escalation_max_level, suspended,
    open_referrals, filed_at, closed_at, last_seq, cycle,
    jsonb_path_exists(detail, '""" + REFERRED_JSONPATH + """') AS has_referrals,
    """ + fv.FANOUT_COLUMNS

# Filters that read a part of the case: refused to a reader not granted that part on every case it sees.
FILTER_PARTS: Mapping[str, Part] = {"unit": Part.RECORD, "inspection_round": Part.RECORD,
                                    "overdue": Part.DEADLINE, "rung": Part.DEADLINE}


class ReadDenied(Exception):
    """The reader's roles do not open this kind of page at all (403); the message says which."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass
class LiveView:
    """The parts of a case's live workflow state the reader may see (templates read these)."""

    measures_done: list[int] = field(default_factory=list)
    posting: PostingState | None = None  # objections filtered to what the reader may see
    extension_request: ExtensionRequest | None = None
    referrals: list[Referral] = field(default_factory=list)
    proposals: list[Any] = field(default_factory=list)  # escalation proposals (拟采取措施), with DEADLINE
    suspension: Any = None
    verifications: list[Any] = field(default_factory=list)
    finding: Any = None
    reply: str = ""
    # issue 13: measures with their milestones, status and evidence; the monthly report's status
    measures: list[dict[str, Any]] = field(default_factory=list)
    report: dict[str, Any] = field(default_factory=dict)


def _active() -> list[str]:
    return [s.value for s in ACTIVE_STAGES]


def _denied_view(view: View) -> str:
    return {
        View.CASE_LIST: "您的角色不能查看案件台账 (your role has no case list)",
        View.EXPORT: "您的角色不能导出台账 (your role may not export the ledger)",
        View.DASHBOARD: "您的角色不能查看统计 (your role has no dashboard)",
        View.MY_WORK: "您的角色没有待办 (your role has no work list)",
        View.AUDIT: "仅审计人员和整改办可查看审计页 (the audit pages are for auditors and the office)",
        View.RUNTIME: "运行监控仅限整改办与审计人员 (the runtime page is for the office and auditors)",
    }[view]


@dataclass
class ReadModel:
    pool: asyncpg.Pool
    client: Client
    calendar: WorkingCalendar
    home: HomeUnits = field(default_factory=HomeUnits)
    # The 红黄绿灯 rule (domain/statistics.py; STATS_YELLOW_WORKING_DAYS): every row carries its light.
    light_rule: LightRule = field(default_factory=light_rule_from_env)

    # ------------------------------------------------------------ who reads

    @staticmethod
    def reader(user: User) -> Reader:
        return Reader(user_id=user.username, unit=user.unit, roles=tuple(user.roles))

    def may_view(self, user: User, view: View) -> bool:
        return may_view(self.reader(user), view, self.home)

    def views(self, user: User) -> set[str]:
        """The kinds of page this user may open (the navigation shows only these)."""
        return {v.value for v in View if self.may_view(user, v)}

    def require(self, user: User, view: View) -> Reader:
        if not self.may_view(user, view):
            raise ReadDenied(_denied_view(view))
        return self.reader(user)

    def parts(self, reader: Reader, facts: CaseFacts) -> frozenset[Part]:
        return parts_for(reader, facts, self.home)

    def scope_sql(self, reader: Reader, args: list[Any], limited: bool = True) -> str:
        """One SQL condition on case_projection selecting exactly the cases the reader may see.

        `limited=False` leaves out the cases seen only in part (a county's view of the parent of
        its child: its summary), for filters and figures over a case's record or deadline."""
        conds: list[str] = []

        def arg(v: Any) -> str:
            args.append(v)
            return f"${len(args)}"

        scopes = scopes_of(reader, self.home, limited)
        if Scope.ALL in scopes:
            return "TRUE"
        if reader.unit and Scope.RESPONSIBLE in scopes:
            conds.append(f"responsible_units @> ARRAY[{arg(reader.unit)}]::text[]")  # GIN-indexed
        if reader.unit and Scope.LEAD in scopes:
            conds.append(f"{arg(reader.unit)} = ANY(lead_supervising_units)")
        if reader.unit and Scope.ASSIST in scopes:
            conds.append(f"{arg(reader.unit)} = ANY(assisting_units)")
        if Scope.REFERRED in scopes:
            # a path-B draft is not yet referred, a returned one never was
            conds.append(f"jsonb_path_exists(detail, '{REFERRED_JSONPATH}')")
        if Scope.POSTING in scopes:
            conds.append(f"stage = {arg(Stage.PUBLIC_POSTING.value)}")
        if reader.unit and Scope.CHILD_RESPONSIBLE in scopes:
            conds.append(fv.CHILD_RESPONSIBLE_SQL.format(arg=arg(reader.unit)))
        return "(" + " OR ".join(conds) + ")" if conds else "FALSE"

    def common_parts(self, reader: Reader) -> frozenset[Part]:
        """The parts granted on every case the reader sees (what filters and sort orders may use)."""
        from domain.visibility import active_rules

        rules = [rule for _role, rule in active_rules(reader, self.home)]
        if not rules:
            return frozenset()
        out = set(rules[0].parts)
        for r in rules[1:]:
            out &= r.parts
        return frozenset(out)

    # ------------------------------------------------------------ rows

    def today(self) -> date:
        return local_date(datetime.now(UTC))

    def days_info(self, due: date | None, stage: str) -> dict[str, Any]:
        """Working days left (or overdue) on a due date, counted from today (Asia/Shanghai)."""
        try:
            active = Stage(stage) in ACTIVE_STAGES
        except ValueError:
            active = False
        if due is None or not active:
            return {"days_left": None, "overdue_days": None, "overdue": False}
        today = self.today()
        if due >= today:
            return {"days_left": count_days(self.calendar, today + timedelta(days=1), due + timedelta(days=1),
                                            DayCount.WORKING), "overdue_days": None, "overdue": False}
        return {"days_left": None, "overdue": True,
                "overdue_days": count_days(self.calendar, due + timedelta(days=1), today + timedelta(days=1),
                                           DayCount.WORKING)}

    def _full_row(self, r: Mapping[str, Any]) -> dict[str, Any]:
        d = dict(r)
        d.update(self.days_info(d.get("due_date"), d["stage"]))
        try:
            light = light_for(d["stage"], d.get("due_date"), self.today(), self.calendar, self.light_rule)
            d["light"], d["light_zh"] = light.value, LIGHT_LABELS_ZH[light]
        except ValueError:  # a stage this version does not know: no light rather than a wrong one
            d["light"], d["light_zh"] = None, ""
        rung = rung_for_level(d.get("escalation_level") or 0)
        d["rung"] = rung.value if rung else None
        d["rung_zh"] = RUNG_LABELS_ZH[rung] if rung else ""
        d["stage_zh"] = stage_label(d["stage"])
        fv.label_row(d)  # 县级自查 / 市级核查 on fanned-out items (issue 13)
        try:
            d["kind_zh"] = KIND_LABELS_ZH[CaseKind(d["kind"])]
        except ValueError:
            d["kind_zh"] = d["kind"]
        return d

    @staticmethod
    def facts(r: Mapping[str, Any]) -> CaseFacts:
        detail = r.get("detail")
        if isinstance(detail, str):
            detail = json.loads(detail)
        has_ref = r.get("has_referrals")
        if has_ref is None:
            has_ref = any(ref.get("status") in REFERRED_STATUSES for ref in (detail or {}).get("referrals") or [])
        return CaseFacts(
            stage=str(r.get("stage") or ""),
            responsible_units=tuple(r.get("responsible_units") or ()),
            lead_supervising_units=tuple(r.get("lead_supervising_units") or ()),
            assisting_units=tuple(r.get("assisting_units") or ()),
            has_referrals=bool(has_ref),
            child_units=fv.child_units(r, detail),
        )

    def rows(self, reader: Reader, records: list[asyncpg.Record]) -> list[dict[str, Any]]:
        """Case rows as this reader may see them: invisible rows dropped, hidden fields left out."""
        out = []
        for r in records:
            parts = self.parts(reader, self.facts(r))
            if parts:
                out.append(pick(self._full_row(r), ROW_FIELDS, parts))
        return out

    def _where(self, reader: Reader, f: CaseFilter) -> tuple[str, list[Any]]:
        common = self.common_parts(reader)
        used = {"unit": bool(f.unit), "inspection_round": bool(f.inspection_round), "overdue": bool(f.overdue),
                "rung": f.rung is not None}
        for name, part in FILTER_PARTS.items():
            if used[name] and part not in common:
                raise FormError(f"filter {name!r} is not available to your role")
        where, args = f.where(datetime.now(UTC))
        # A filter on a record or deadline field does not run over cases seen only in summary.
        scope = self.scope_sql(reader, args, limited=not any(used.values()))
        return (f"{where} AND {scope}" if where else f" WHERE {scope}"), args

    def _order(self, reader: Reader) -> str:
        if Part.DEADLINE in self.common_parts(reader):
            return "ORDER BY (due_at IS NULL), due_at, case_no"
        return "ORDER BY case_no"

    # ------------------------------------------------------------ lists

    async def list_cases(self, user: User, f: CaseFilter) -> tuple[list[dict[str, Any]], int]:
        reader = self.require(user, View.CASE_LIST)
        where, args = self._where(reader, f)
        total = await self.pool.fetchval(f"SELECT count(*) FROM case_projection{where}", *args)
        recs = await self.pool.fetch(
            f"""SELECT {LIST_COLUMNS} FROM case_projection{where} {self._order(reader)}
                LIMIT {int(f.page_size)} OFFSET {int((f.page - 1) * f.page_size)}""",
            *args,
        )
        return self.rows(reader, recs), int(total)

    async def export_rows(self, user: User, f: CaseFilter) -> list[dict[str, Any]]:
        reader = self.require(user, View.EXPORT)
        where, args = self._where(reader, f)
        recs = await self.pool.fetch(f"SELECT {LIST_COLUMNS} FROM case_projection{where} {self._order(reader)}",
                                     *args)
        return self.rows(reader, recs)

    async def filter_options(self, user: User) -> dict[str, list[str]]:
        """Units and rounds to filter by, from the cases the user sees (none without RECORD)."""
        reader = self.require(user, View.CASE_LIST)
        if Part.RECORD not in self.common_parts(reader):
            return {"units": [], "rounds": []}
        args: list[Any] = []
        scope = self.scope_sql(reader, args, limited=False)
        units = await self.pool.fetch(
            f"""SELECT DISTINCT u FROM case_projection,
               unnest(responsible_units || lead_supervising_units || assisting_units) AS u WHERE {scope} ORDER BY u""",
            *args)
        rounds = await self.pool.fetch(
            f"""SELECT DISTINCT inspection_round FROM case_projection WHERE inspection_round <> '' AND {scope}
                ORDER BY 1""", *args)
        return {"units": [r[0] for r in units], "rounds": [r[0] for r in rounds]}

    async def my_work(self, user: User) -> list[dict[str, Any]]:
        """Cases waiting for an action by this user's unit, most urgent first (only cases it sees)."""
        reader = self.require(user, View.MY_WORK)
        roles = set(user.roles)
        conds: list[str] = []
        args: list[Any] = [user.unit]
        if Role.RESPONSIBLE_UNIT in roles:
            args.append([s.value for s in RU_STAGES])
            conds.append(f"(stage = ANY(${len(args)}) AND $1 = ANY(responsible_units))")
            # Issue 13: a county's child case in 初审 waits for the county's self-check (县级自查).
            conds.append(f"(stage = 'PRELIM_REVIEW' AND {fv.IS_CHILD_SQL} AND $1 = ANY(responsible_units))")
        if Role.LEAD_SUPERVISOR in roles:
            # Any listed lead reviews; only the first-listed lead verifies (domain.lifecycle.authorize).
            args.append([s.value for s in LEAD_STAGES if s is not Stage.VERIFICATION])
            conds.append(f"(stage = ANY(${len(args)}) AND $1 = ANY(lead_supervising_units)"
                         f" AND NOT (stage = 'PRELIM_REVIEW' AND {fv.IS_CHILD_SQL}))")  # the county's self-check
            conds.append("(stage = 'VERIFICATION' AND lead_supervising_units[1] = $1)")
            conds.append("(jsonb_typeof(detail->'extension_request') = 'object' AND $1 = ANY(lead_supervising_units))")
        if Role.RECTIFICATION_OFFICE in roles:
            args.append([s.value for s in OFFICE_STAGES])
            conds.append(f"(stage = ANY(${len(args)}))")
            conds.append(
                "(stage = 'PUBLIC_POSTING' AND "
                "jsonb_path_exists(detail, '$.posting.objections[*] ? (@.ruling == null)'))"
            )
        if roles & {Role.RECTIFICATION_OFFICE, Role.SUPERVISION_OFFICE}:
            # Escalation proposals (拟采取措施) awaiting confirmation or dismissal (domain/escalation.py).
            conds.append("jsonb_path_exists(detail, '$.escalation.proposals[*] ? (@.status == \"PENDING\")')")
        if Role.RECTIFICATION_OFFICE in roles:
            # Path-B referrals drafted by a lead supervising unit, awaiting the office's verification.
            conds.append("jsonb_path_exists(detail, '$.referrals[*] ? (@.status == \"DRAFT\")')")
        if Role.DISCIPLINE_COMMISSION in roles:
            conds.append("(open_referrals > 0)")
        if Role.PUBLIC in roles:  # the postings open for objection
            conds.append("(stage = 'PUBLIC_POSTING')")
        if not conds:
            return []
        scope = self.scope_sql(reader, args)
        order = ("ORDER BY (due_at IS NULL), due_at, escalation_level DESC, case_no"
                 if Part.DEADLINE in self.common_parts(reader) else "ORDER BY case_no")
        recs = await self.pool.fetch(
            f"""SELECT {LIST_COLUMNS} FROM case_projection WHERE $1::text IS NOT NULL AND ({' OR '.join(conds)})
                AND {scope} {order} LIMIT 500""",
            *args,
        )
        return self.rows(reader, recs)

    # ------------------------------------------------------------ one case

    async def _projection(self, case_no: str) -> dict[str, Any] | None:
        r = await self.pool.fetchrow("SELECT * FROM case_projection WHERE case_no = $1", case_no)
        if r is None:
            return None
        d = dict(r)
        for k in ("filing", "detail", "deadline"):
            if isinstance(d.get(k), str):
                d[k] = json.loads(d[k])
        return d

    async def parts_of(self, user: User, case_no: str) -> frozenset[Part]:
        """The parts of this case the user sees; empty when it does not exist or is not theirs to see."""
        proj = await self._projection(case_no)
        if proj is None:
            return self.parts(self.reader(user), CaseFacts(stage="")) if case_no else frozenset()
        return self.parts(self.reader(user), self.facts(proj))

    async def may_see(self, user: User, case_no: str) -> bool:
        proj = await self._projection(case_no)
        return proj is not None and bool(self.parts(self.reader(user), self.facts(proj)))

    async def _live_state(self, case_no: str) -> CaseState | None:
        try:
            return await ops.get_state(self.client, case_no)
        except Exception:  # archived beyond retention, or Temporal unreachable: the projection still shows
            # issue 14: an archived case's kept final state (its REOPEN button), if any
            from activities.reopen_activities import current_archived_state
            return await current_archived_state(self.pool, case_no)

    async def _ledger(self, case_no: str, parts: frozenset[Part]) -> list[dict[str, Any]]:
        if Part.LEDGER not in parts:
            return []
        rows = await self.pool.fetch(
            """SELECT seq, event, actor_user, actor_role, actor_unit, at, from_stage, to_stage, reason, data
               FROM ledger WHERE case_no = $1 ORDER BY seq""",
            case_no,
        )
        out = []
        for r in rows:
            d = dict(r)
            d["data"] = json.loads(d["data"]) if isinstance(d["data"], str) else d["data"]
            d = ledger_entry_view(d, parts)
            if d is None:
                continue
            d["event_zh"] = event_label_zh(d["event"])
            d["from_zh"], d["to_zh"] = stage_label(d["from_stage"]), stage_label(d["to_stage"])
            try:
                d["role_zh"] = ROLE_LABELS_ZH[Role(d["actor_role"])]
            except ValueError:
                d["role_zh"] = d["actor_role"]
            out.append(d)
        return out

    def _live_view(self, state: CaseState, reader: Reader, parts: frozenset[Part]) -> LiveView:
        v = LiveView()
        if Part.PROGRESS in parts:
            v.measures_done = list(state.measures_done)
            v.extension_request = state.extension_request
            v.suspension = state.suspension
            v.verifications = list(state.verifications)
            v.finding = state.finding
            v.reply = state.reply
            if state.followup is not None:
                v.measures = measures_view(state)
                v.report = report_status(state, datetime.now(UTC))
        if Part.POSTING in parts and state.posting is not None:
            objs = objections_view([o.model_dump() for o in state.posting.objections], reader, parts)
            keep = {o["objection_id"] for o in objs}
            v.posting = state.posting.model_copy(
                update={"objections": [o for o in state.posting.objections if o.objection_id in keep]})
        if Part.REFERRALS in parts:
            v.referrals = list(state.referrals)
        if Part.DEADLINE in parts:  # the escalation rung and schedule; a report reference is a referral detail
            v.proposals = [p if Part.REFERRALS in parts else p.model_copy(update={"report_ref": ""})
                           for p in state.escalation.proposals]
        return v

    async def case_view(self, user: User, case_no: str) -> dict[str, Any] | None:
        """One case as this user may see it; None when it does not exist or is not theirs to see."""
        proj = await self._projection(case_no)
        if proj is None:
            return None
        reader = self.reader(user)
        parts = self.parts(reader, self.facts(proj))
        if not parts:
            return None
        state = await self._live_state(case_no)
        filing = state.filing.model_dump(mode="json") if state else (proj.get("filing") or {})
        deadline = None
        if Part.DEADLINE in parts:
            deadline = state.deadline.model_dump(mode="json") if state and state.deadline else proj.get("deadline")
        refusals: list[dict[str, Any]] = []
        if Part.REFUSALS in parts:
            refusals = [dict(r) for r in await self.pool.fetch(
                """SELECT at, action, actor_user, actor_role, actor_unit, error_type, message FROM refused_action
                   WHERE case_no = $1 ORDER BY at DESC LIMIT 20""", case_no)]
        return {
            **await self._fanout_view(reader, proj, parts),
            "case": pick(self._full_row(proj), ROW_FIELDS, parts),
            "filing": pick(filing, FILING_FIELDS, parts),
            "state": self._live_view(state, reader, parts) if state is not None else None,
            "deadline": deadline,
            "ledger": await self._ledger(case_no, parts),
            "allowed": allowed_actions_for(user, state),
            "refusals": refusals,
            "parts": sorted(p.value for p in parts),
        }

    async def _fanout_view(self, reader: Reader, proj: Mapping[str, Any], parts: frozenset[Part]) -> dict[str, Any]:
        """A parent's children (each only if the reader sees it) and fan-out summary; a child's parent."""
        fanout = (proj.get("detail") or {}).get("fanout")
        children: list[dict[str, Any]] = []
        if fanout:
            args: list[Any] = [proj["case_no"]]
            scope = self.scope_sql(reader, args)
            recs = await self.pool.fetch(
                f"SELECT {LIST_COLUMNS} FROM case_projection WHERE {fv.CHILDREN_SQL.format(arg='$1')} AND {scope} "
                "ORDER BY case_no", *args)
            children = fv.annotate_children(self.rows(reader, recs), fanout)
        parent_no = ((proj.get("filing") or {}).get("parent_case_no")) or ""
        parent = None
        if parent_no:
            pproj = await self._projection(parent_no)
            if pproj is not None and self.parts(reader, self.facts(pproj)):
                parent = {"case_no": parent_no, "title": pproj["title"], "stage": pproj["stage"],
                          "stage_zh": self._full_row(pproj)["stage_zh"]}
        return {"children": children, "fanout": fv.fanout_summary(fanout, parts), "parent": parent}

    @staticmethod
    def case_api(view: dict[str, Any], form_fields: Any) -> dict[str, Any]:
        """The JSON of `GET /api/v1/cases/<no>` from a case view (casectl show reads it)."""
        out = {k: view[k] for k in ("case", "filing", "deadline", "ledger", "refusals", "parts", "children", "fanout",
                                    "parent")}
        out["allowed_actions"] = [
            {"action": a.value, "label_zh": ACTION_LABELS_ZH[a], "role": r.value,
             "fields": [{"name": n, "required": req} for n, req in form_fields(a)]}
            for a, r in view["allowed"].items()]
        live: LiveView | None = view["state"]
        out["live"] = live is not None
        if live is not None:
            out["measures_done"] = live.measures_done
            out["measures"] = live.measures
            out["monthly_report"] = live.report
            out["referrals"] = [r.model_dump(mode="json") for r in live.referrals]
            out["escalation_proposals"] = [p.model_dump(mode="json") for p in live.proposals]
            out["posting"] = live.posting.model_dump(mode="json") if live.posting else None
            out["extension_request"] = (live.extension_request.model_dump(mode="json")
                                        if live.extension_request else None)
        return out

    # ------------------------------------------------------------ dashboard and audit pages
    # (admin/readmodel_pages.py)

    async def dashboard(self, user: User) -> dict[str, Any]:
        """Figures over the cases this user sees."""
        return await pages.dashboard(self, user)

    async def audit_index(self, user: User) -> list[dict[str, Any]]:
        """Cases with archived workflow runs, among those the user sees."""
        return await pages.audit_index(self, user)

    async def audit_report(self, user: User, case_no: str, verify: bool = True) -> AuditReport | None:
        """The auditor's view of a case (see admin/readmodel_pages.py)."""
        return await pages.audit_report(self, user, case_no, verify)
