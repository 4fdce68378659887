"""The console's dashboard and audit pages, read through the read model's scope.

Split out of admin/readmodel.py; `ReadModel.dashboard`, `.audit_index` and `.audit_report`
call these with themselves as `rm`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

from admin.users import User
from domain.enums import STAGE_LABELS_ZH, Stage
from domain.visibility import Part, View

if TYPE_CHECKING:
    from admin.readmodel import ReadModel


@dataclass
class AuditReport:
    case_no: str
    runs: list[Any]  # audit.history.RunHistory, oldest first
    entries: list[Any]  # audit.timeline.TimelineEntry
    verdict: Any  # audit.verify.CaseVerdict, or None when not asked for
    error: str = ""




async def dashboard(rm: ReadModel, user: User) -> dict[str, Any]:
    """Figures over the cases this user sees."""
    from admin.readmodel import LIST_COLUMNS, _active

    reader = rm.require(user, View.DASHBOARD)
    now = datetime.now(UTC)

    def scoped(*base: Any, limited: bool = True) -> tuple[str, list[Any]]:
        args = list(base)
        return rm.scope_sql(reader, args, limited), args

    scope, args = scoped()
    by_stage = await rm.pool.fetch(
        f"SELECT stage, count(*) AS n FROM case_projection WHERE {scope} GROUP BY stage", *args)
    stage_counts = {r["stage"]: r["n"] for r in by_stage}
    by_unit: list[Any] = []
    if Part.RECORD in rm.common_parts(reader):
        scope, args = scoped(now, _active(), limited=False)  # units are the record's
        by_unit = await rm.pool.fetch(
            f"""SELECT u AS unit, count(*) AS total,
                      count(*) FILTER (WHERE stage = ANY($2)) AS open,
                      count(*) FILTER (WHERE due_at < $1 AND stage = ANY($2)) AS overdue,
                      count(*) FILTER (WHERE escalation_level > 0) AS escalated
               FROM case_projection, unnest(responsible_units) AS u WHERE {scope}
               GROUP BY u ORDER BY overdue DESC, open DESC, u""",
            *args,
        )
    scope, args = scoped(now, _active())
    overdue = await rm.pool.fetch(
        f"""SELECT {LIST_COLUMNS} FROM case_projection WHERE due_at < $1 AND stage = ANY($2) AND {scope}
            ORDER BY due_at LIMIT 50""", *args)
    scope, args = scoped()
    escalated = await rm.pool.fetch(
        f"""SELECT {LIST_COLUMNS} FROM case_projection WHERE escalation_level > 0 AND {scope}
            ORDER BY escalation_level DESC, due_at LIMIT 50""", *args)
    scope, args = scoped()
    months = await rm.pool.fetch(
        f"""SELECT to_char(date_trunc('month', l.at AT TIME ZONE 'Asia/Shanghai'), 'YYYY-MM') AS month,
                   count(*) AS n
           FROM ledger l WHERE l.to_stage = 'CLOSED'
             AND l.case_no IN (SELECT case_no FROM case_projection WHERE {scope})
           GROUP BY 1 ORDER BY 1""", *args)
    closures = _last_months([(r["month"], r["n"]) for r in months], rm.today(), 12)
    return {
        "total": sum(stage_counts.values()),
        "stages": [{"stage": s.value, "stage_zh": STAGE_LABELS_ZH[s], "n": stage_counts.get(s.value, 0)}
                   for s in Stage],
        "units": [dict(r) for r in by_unit],
        "overdue": rm.rows(reader, overdue),
        "escalated": rm.rows(reader, escalated),
        "closures": closures,
    }


async def audit_index(rm: ReadModel, user: User) -> list[dict[str, Any]]:
    """Cases with archived workflow runs, among those the user sees."""
    reader = rm.require(user, View.AUDIT)
    args: list[Any] = []
    scope = rm.scope_sql(reader, args)
    cond = "" if scope == "TRUE" else f"WHERE case_no IN (SELECT case_no FROM case_projection WHERE {scope})"
    rows = await rm.pool.fetch(
        f"""SELECT case_no, count(*) AS runs, sum(event_count) AS events, max(close_time) AS last_close
           FROM history_archive {cond} GROUP BY case_no ORDER BY max(close_time) DESC LIMIT 200""", *args)
    return [dict(r) for r in rows]

async def audit_report(rm: ReadModel, user: User, case_no: str, verify: bool = True) -> AuditReport | None:
    """The auditor's view of a case: its runs and a timeline derived from the histories
    (archive first, Temporal as fallback), and the ledger's chain and cross-check.
    None when there is no history or the case is not the user's to audit."""
    from audit.archive import load_histories
    from audit.history import HistoryError
    from audit.timeline import build_timeline_from_runs
    from audit.verify import verify_case

    rm.require(user, View.AUDIT)
    if Part.HISTORY not in await rm.parts_of(user, case_no):
        return None
    try:
        runs = await load_histories(rm.pool, rm.client, case_no)
    except HistoryError as e:  # an archived history was altered: say so, show nothing from it
        return AuditReport(case_no=case_no, runs=[], entries=[], verdict=None, error=str(e))
    if not runs:
        return None
    verdict = await verify_case(rm.pool, rm.client, case_no) if verify else None
    return AuditReport(case_no=case_no, runs=runs, entries=build_timeline_from_runs(runs), verdict=verdict)


def _last_months(counts: list[tuple[str, int]], today: date, n: int) -> list[dict[str, Any]]:
    by = dict(counts)
    out = []
    last = max([f"{today.year:04d}-{today.month:02d}", *by])  # a closure dated ahead (a moved clock) shows too
    y, m = int(last[:4]), int(last[5:7])
    for _ in range(n):
        key = f"{y:04d}-{m:02d}"
        out.append({"month": key, "n": by.get(key, 0)})
        y, m = (y, m - 1) if m > 1 else (y - 1, 12)
    return list(reversed(out))
