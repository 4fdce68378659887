"""The console's read model of programmes (整改方案): every read of a programme, scoped to the reader.

Who reads what is `domain.programme_scope.programme_read`: the office, the supervision offices
and auditors read the WHOLE programme; a unit working on its cases reads the header and its
OWN figures only (the cases it sees under `domain.visibility`, and its own row of the
per-unit table); anyone else sees no programme, answered like one that does not exist.
"""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import UTC, datetime
from typing import Any

from admin.readmodel import ReadModel
from admin.service import stage_label
from admin.users import User
from domain.enums import DONE_STAGES, RUNG_LABELS_ZH, Role, Rung
from domain.lifecycle import ACTIVE_STAGES
from domain.programme import PROGRAMME_STAGE_LABELS_ZH, TIMER_LABELS_ZH, ProgrammeStage, TimerKind
from domain.programme_scope import ProgrammeRead, counties_of, programme_read

# Case stages grouped the way a dispatch meeting reads them.
PHASES: list[tuple[str, str, tuple[str, ...]]] = [
    ("TO_START", "待签收 not started", ("REGISTERED", "TRANSFERRED")),
    ("RECTIFYING", "整改中 rectifying", ("INVESTIGATING", "RECTIFYING", "REPLY", "DISCLOSURE")),
    ("CLOSING", "销号流程中 closing", ("PRELIM_REVIEW", "PUBLIC_POSTING", "CLOSURE_APPLICATION", "VERIFICATION",
                                       "FILING")),
    ("CLOSED", "已销号 closed", ("CLOSED", "ARCHIVED")),
    ("LONG_TERM", "长期坚持 long-term", ("LONG_TERM_MAINTENANCE",)),
]
PHASE_OF = {s: key for key, _, stages in PHASES for s in stages}
CASE_COLUMNS = "case_no, title, stage, responsible_units, lead_supervising_units, assisting_units, due_date, due_at, " \
               "escalation_level, closed_at, detail"


def _phase_counts() -> dict[str, int]:
    return {key: 0 for key, _, _ in PHASES}


class ProgrammeReads:
    def __init__(self, reads: ReadModel) -> None:
        self.reads = reads
        self.pool = reads.pool

    def access(self, user: User) -> tuple[ProgrammeRead | None, str, list[Any]]:
        """(what the user reads, the SQL condition on case_projection for its cases, its args)."""
        reader = self.reads.reader(user)
        read, _scopes = programme_read(reader, self.reads.home)
        if read is None:
            return None, "FALSE", []
        if read is ProgrammeRead.WHOLE:
            return read, "TRUE", []
        args: list[Any] = []
        return read, self.reads.scope_sql(reader, args), args

    def may_read(self, user: User) -> bool:
        return self.access(user)[0] is not None

    async def list(self, user: User) -> list[dict[str, Any]]:
        read, scope, args = self.access(user)
        if read is None:
            return []
        rows = [dict(r) for r in await self.pool.fetch(
            "SELECT * FROM programme_projection ORDER BY created_at DESC LIMIT 500")]
        if read is ProgrammeRead.WHOLE:
            for r in rows:
                r["stage_zh"] = PROGRAMME_STAGE_LABELS_ZH.get(ProgrammeStage(r["stage"]), r["stage"])
            return rows
        n = len(args)
        own = await self.pool.fetch(
            f"""SELECT programme_id, count(*) AS total,
                       count(*) FILTER (WHERE stage = ANY(${n + 1})) AS done
                FROM case_projection WHERE programme_id <> '' AND {scope} GROUP BY programme_id""",
            *args, sorted(s.value for s in DONE_STAGES))
        mine = {r["programme_id"]: r for r in own}
        out = []
        for r in rows:
            if r["programme_id"] in mine:
                out.append(self._header(r) | {"total_cases": mine[r["programme_id"]]["total"],
                                              "done_cases": mine[r["programme_id"]]["done"]})
        return out

    @staticmethod
    def _header(r: dict[str, Any]) -> dict[str, Any]:
        keep = ("programme_id", "name", "inspection_round", "locality", "counties", "stage", "feedback_date",
                "plan_ref", "plan_submitted_at", "created_at", "completed_at")
        out = {k: r[k] for k in keep}
        out["stage_zh"] = PROGRAMME_STAGE_LABELS_ZH.get(ProgrammeStage(r["stage"]), r["stage"])
        return out

    async def view(self, user: User, programme_id: str) -> dict[str, Any] | None:
        """One programme as this user may see it; None when it does not exist or is not theirs."""
        read, scope, args = self.access(user)
        if read is None:
            return None
        r = await self.pool.fetchrow("SELECT * FROM programme_projection WHERE programme_id = $1", programme_id)
        if r is None:
            return None
        proj = dict(r)
        proj["detail"] = json.loads(proj["detail"]) if isinstance(proj["detail"], str) else proj["detail"]
        n = len(args)
        cases = [dict(c) for c in await self.pool.fetch(
            f"SELECT {CASE_COLUMNS} FROM case_projection WHERE programme_id = ${n + 1} AND {scope} ORDER BY case_no",
            *args, programme_id)]
        if read is ProgrammeRead.OWN and not cases:
            return None  # not one of its cases is in this programme: nothing of it is shown
        out = self._header(proj)
        out["read"] = read.value
        out.update(self._figures(cases, proj["counties"], user, read))
        if read is ProgrammeRead.WHOLE:
            out["report"] = self._report(proj)
            out["ledger"] = await self._ledger(programme_id)
            out["dispatch"] = await self._dispatch(programme_id)
        return out

    def _figures(self, cases: list[dict[str, Any]], counties: list[str], user: User,
                 read: ProgrammeRead) -> dict[str, Any]:
        now = datetime.now(UTC)
        active = {s.value for s in ACTIVE_STAGES}
        by_unit: dict[str, dict[str, int]] = defaultdict(lambda: _phase_counts() | {"total": 0, "overdue": 0,
                                                                                     "escalated": 0})
        by_county: dict[str, dict[str, int]] = defaultdict(lambda: _phase_counts() | {"total": 0, "overdue": 0,
                                                                                       "escalated": 0})
        overdue, escalated, no_timer = [], [], 0
        for c in cases:
            c["stage_zh"] = stage_label(c["stage"])
            c["overdue"] = bool(c["due_at"] and c["due_at"] < now and c["stage"] in active)
            c["rung_zh"] = _rung_zh(c["escalation_level"])
            phase = PHASE_OF.get(c["stage"], "RECTIFYING")
            for bucket in ([by_unit[u] for u in c["responsible_units"]]
                           + [by_county[k] for k in counties_of(c["responsible_units"], counties)]):
                bucket[phase] += 1
                bucket["total"] += 1
                bucket["overdue"] += c["overdue"]
                bucket["escalated"] += c["escalation_level"] > 0
            if c["overdue"]:
                overdue.append(c)
            if c["escalation_level"] > 0:
                escalated.append(c)
            if c["due_at"] is None and c["stage"] in active:
                no_timer += 1
        units = sorted(by_unit.items(), key=lambda kv: (-kv[1]["overdue"], -kv[1]["total"], kv[0]))
        if read is ProgrammeRead.OWN and Role.RESPONSIBLE_UNIT in user.roles:  # a unit sees its own row only
            units = [(u, f) for u, f in units if u == user.unit]
        stages: dict[str, int] = defaultdict(int)
        for c in cases:
            stages[c["stage"]] += 1
        return {
            "phases": [(k, label) for k, label, _ in PHASES],
            "units": [{"unit": u} | f for u, f in units],
            "counties": [{"county": k} | f for k, f in sorted(by_county.items())],
            "by_stage": [{"stage": s, "stage_zh": stage_label(s), "n": n} for s, n in sorted(stages.items())],
            "total": len(cases), "done": sum(PHASE_OF.get(c["stage"]) in ("CLOSED", "LONG_TERM") for c in cases),
            "overdue": overdue[:200], "escalated": sorted(escalated, key=lambda c: -c["escalation_level"])[:200],
            "no_timer": no_timer,
        }

    def _report(self, proj: dict[str, Any]) -> dict[str, Any]:
        d = proj["detail"]
        today = self.reads.today()
        out: dict[str, Any] = {"timers": []}
        for kind in (TimerKind.PLAN, TimerKind.REPORT):
            t = d.get("plan_timer" if kind is TimerKind.PLAN else "report_timer")
            if not t:
                continue
            due = datetime.fromisoformat(t["due_date"]).date()
            fired = [s for s in t["steps"] if s.get("fired_at")]
            out["timers"].append({
                "kind": kind.value, "label": TIMER_LABELS_ZH[kind], "due_date": due, "explanation": t["explanation"],
                "done": t["stopped_at"] is not None, "on_time": t["on_time"],
                "days_left": (due - today).days, "rung_zh": _rung_zh_of(t.get("rung")), "rung": t.get("rung"),
                "fired": fired, "schedule": t["steps"]})
        out["submitted_at"], out["reference"] = proj["report_submitted_at"], proj["report_ref"]
        out["evidence"] = d.get("report_evidence") or []
        out["due_date"] = proj["report_due_date"]
        return out

    async def _ledger(self, programme_id: str) -> list[dict[str, Any]]:
        rows = await self.pool.fetch(
            """SELECT seq, event, actor_user, actor_role, actor_unit, at, reason, data, row_hash
               FROM programme_ledger WHERE programme_id = $1 ORDER BY seq DESC LIMIT 300""", programme_id)
        return [dict(r) | {"data": json.loads(r["data"]) if isinstance(r["data"], str) else r["data"]} for r in rows]

    async def _dispatch(self, programme_id: str) -> dict[str, Any]:
        """The monthly dispatch reports (月度调度, another part of issue 13), when their table exists."""
        exists = await self.pool.fetchval("SELECT to_regclass('dispatch_report') IS NOT NULL")
        if not exists:
            return {"available": False, "rows": []}
        rows = await self.pool.fetch(
            "SELECT * FROM dispatch_report WHERE programme_id = $1 ORDER BY period DESC LIMIT 36", programme_id)
        shown = []
        for r in rows:
            d = dict(r)
            shown.append({"period": d.pop("period", ""),
                          "fields": {k: v for k, v in d.items() if k != "programme_id" and not isinstance(v, bytes)
                                     and len(str(v)) < 300}})
        return {"available": True, "rows": shown}


def _rung_zh(level: int) -> str:
    from admin.service import rung_for_level

    rung = rung_for_level(level or 0)
    return RUNG_LABELS_ZH[rung] if rung else ""


def _rung_zh_of(value: str | None) -> str:
    try:
        return RUNG_LABELS_ZH[Rung(value)] if value else ""
    except ValueError:
        return value or ""
