"""casectl commands for measures, milestones and the monthly progress report (issue 13).

    casectl measures FB-14                               # measures, milestones, status, evidence, monthly report
    casectl complete-measure FB-14 2 --evidence evidence:sha256:… [--evidence doc:…] [--reason …]
    casectl report-progress FB-14 --reason "本月进展…" [--evidence …]

`complete-measure` and `report-progress` are `act … COMPLETE_MEASURE` / `act … REPORT_PROGRESS`
with their fields named; the console's workflow validator decides (exit 3 when refused).
"""

from __future__ import annotations

import argparse
from typing import Any

_cli: Any = None

STATUS_EN = {"DONE": "done", "NOT_TIMED": "not timed", "ESCALATED": "escalated", "REMINDED": "reminded",
             "SCHEDULED": "scheduled", "PAUSED": "paused"}


def _measures_text(body: dict[str, Any]) -> str:
    lines = []
    for m in body.get("measures") or []:
        state = "done" if m["done_with_evidence"] else ("done, no evidence" if m["done"] else "open")
        lines.append(f"{m['seq']}. [{state}] {m['text'][:70]}")
        if m["evidence"]:
            lines.append(f"     evidence: {', '.join(m['evidence'])}")
        for x in m["milestones"]:
            when = x["due_date"] or x["recurrence"] or ""
            rungs = f" rungs: {', '.join(x['rungs_fired'])}" if x["rungs_fired"] else ""
            remind = f" reminder {x['remind_date']}" if x["remind_date"] else ""
            lines.append(f"     {x['key']} {when} {x['what'][:50]} [{STATUS_EN.get(x['status'], x['status'])}]"
                         f"{remind}{rungs}")
    r = body.get("monthly_report") or {}
    if r.get("timed"):
        lines.append(f"monthly report (月度调度报告): {r['period']} due {r['due_date'] or '-'}"
                     f" (reminder {r['remind_date'] or '-'}); last {r['last_period'] or '-'};"
                     f" this month {'in' if r['this_month_in'] else 'NOT in'}"
                     + (f"; rungs: {', '.join(r['rungs_fired'])}" if r["rungs_fired"] else ""))
    elif not body.get("measures"):
        lines.append("(no measure or report timers: the case predates them, or you may not see its progress)")
    return "\n".join(lines)


def cmd_measures(args: argparse.Namespace) -> int:
    body = _cli._call(args, "GET", f"/api/v1/cases/{args.case}").json()
    data = {"measures": body.get("measures") or [], "monthly_report": body.get("monthly_report") or {}}
    _cli._out(args, data, _measures_text(body))
    return _cli.EXIT_OK


def _act(args: argparse.Namespace, action: str, payload: dict[str, Any]) -> int:
    if args.reason:
        payload["reason"] = args.reason
    if args.evidence:
        payload["evidence"] = args.evidence
    body = _cli._call(args, "POST", f"/api/v1/cases/{args.case}/actions/{action}", json=payload).json()
    _cli._out(args, body, f"{args.case}: {action} done; now {_cli._stage(body['stage'])}")
    return _cli.EXIT_OK


def cmd_complete_measure(args: argparse.Namespace) -> int:
    return _act(args, "COMPLETE_MEASURE", {"measure_seq": args.measure})


def cmd_report_progress(args: argparse.Namespace) -> int:
    return _act(args, "REPORT_PROGRESS", {})


def configure(sub: Any, parents: list[argparse.ArgumentParser], cli: Any) -> None:
    global _cli
    _cli = cli
    s = sub.add_parser("measures", parents=parents, help="measures, milestones, evidence and the monthly report")
    s.add_argument("case")
    s.set_defaults(func=cmd_measures)
    s = sub.add_parser("complete-measure", parents=parents, help="mark a measure done with its evidence (佐证材料)")
    s.add_argument("case")
    s.add_argument("measure", type=int, help="measure number")
    s.add_argument("--evidence", action="append", required=True, help="evidence reference (repeat)")
    s.add_argument("--reason")
    s.set_defaults(func=cmd_complete_measure)
    s = sub.add_parser("report-progress", parents=parents, help="submit this month's progress report (月度调度报告)")
    s.add_argument("case")
    s.add_argument("--reason", required=True, help="what was done this month")
    s.add_argument("--evidence", action="append", help="evidence reference (repeat)")
    s.set_defaults(func=cmd_report_progress)
