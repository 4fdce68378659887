"""`casectl programme …`: the rectification programmes (整改方案, issue 13).

    casectl programme list
    casectl programme show ID
    casectl programme create --id ID --name NAME --round ROUND --locality L --feedback-date YYYY-MM-DD
                             [--county C …] [--plan-text T | --plan-text @FILE] [--plan-ref REF] [--submit-plan REF]
    casectl programme submit-plan ID --reference REF [--evidence E …] [--note N] [--request-id R]
    casectl programme submit-report ID --reference REF [--evidence E …] [--note N] [--request-id R]

Same token, URL, --json and exit statuses as every other casectl command (3: refused).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any
from urllib.parse import quote

_cli: Any = None  # casectl's module, set by `configure`


def _call(args: argparse.Namespace, method: str, path: str, **kw: Any) -> Any:
    return _cli._call(args, method, path, **kw).json()


def cmd_list(args: argparse.Namespace) -> int:
    body = _call(args, "GET", "/api/v1/programmes")
    lines = [f"{p['programme_id']:<16} {p['stage']:<18} {p.get('done_cases', 0)}/{p.get('total_cases', 0)} done  "
             f"report due {p.get('report_due_date') or '-'}  {p['name']}" for p in body["programmes"]]
    _cli._out(args, body, "\n".join(lines) or "no programmes")
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    v = _call(args, "GET", f"/api/v1/programmes/{quote(args.id, safe='')}")
    lines = [f"{v['programme_id']}  {v['name']}", f"  {v['inspection_round']} · {v['locality']} · {v['stage']}",
             f"  cases {v['total']} (done {v['done']}), overdue {len(v['overdue'])}, escalated {len(v['escalated'])}"]
    for t in (v.get("report") or {}).get("timers", []):
        state = ("on time" if t["on_time"] else "late") if t["done"] else (
            f"{t['days_left']} days left" if t["days_left"] >= 0 else f"{-t['days_left']} days overdue")
        lines.append(f"  {t['kind']:<7} due {t['due_date']}  {state}" + (f"  [{t['rung']}]" if t.get("rung") else ""))
    lines.append("  per unit:")
    for u in v["units"]:
        lines.append(f"    {u['unit']:<24} total {u['total']:>3}  closed {u['CLOSED']:>3}  overdue {u['overdue']:>3}")
    lines.append("  per county:")
    for c in v["counties"]:
        lines.append(f"    {c['county']:<24} total {c['total']:>3}  closed {c['CLOSED']:>3}  overdue {c['overdue']:>3}")
    _cli._out(args, v, "\n".join(lines))
    return 0


def cmd_create(args: argparse.Namespace) -> int:
    plan_text = args.plan_text or ""
    if plan_text.startswith("@"):
        plan_text = Path(plan_text[1:]).read_text(encoding="utf-8")
    body: dict[str, Any] = {"programme_id": args.id, "name": args.name, "inspection_round": args.round,
                            "locality": args.locality, "counties": args.county or [],
                            "feedback_date": args.feedback_date, "plan_text": plan_text, "plan_ref": args.plan_ref or ""}
    if args.submit_plan:
        body["submit_plan"] = args.submit_plan
    out = _call(args, "POST", "/api/v1/programmes", json=body)
    _cli._out(args, out, f"{out['programme_id']}: created")
    return 0


def _act(args: argparse.Namespace, action: str) -> int:
    body = {"reference": args.reference, "evidence": args.evidence or [], "note": args.note or ""}
    if args.request_id:
        body["request_id"] = args.request_id
    out = _call(args, "POST", f"/api/v1/programmes/{quote(args.id, safe='')}/actions/{action}", json=body)
    extra = f", six-month report due {out['report_due_date']}" if out.get("report_due_date") else ""
    _cli._out(args, out, f"{out['programme_id']}: {action} accepted, now {out['stage']}{extra}")
    return 0


def configure(sub: Any, parents: list[argparse.ArgumentParser], cli_module: Any) -> None:
    global _cli
    _cli = cli_module
    p = sub.add_parser("programme", help="rectification programmes (整改方案): list, show, create, submit")
    ps = p.add_subparsers(dest="programme_command", required=True, metavar="PROGRAMME_COMMAND")
    s = ps.add_parser("list", parents=parents, help="the programmes you may see")
    s.set_defaults(func=cmd_list)
    s = ps.add_parser("show", parents=parents, help="progress per unit and county, the six-month report")
    s.add_argument("id")
    s.set_defaults(func=cmd_show)
    s = ps.add_parser("create", parents=parents, help="create a programme from the feedback (the office)")
    s.add_argument("--id", required=True, help="programme id, e.g. R2-XXCITY (letters, digits, . _ -)")
    s.add_argument("--name", required=True)
    s.add_argument("--round", required=True, help="inspection round (督察轮次)")
    s.add_argument("--locality", required=True)
    s.add_argument("--county", action="append", help="a county of the locality (repeat)")
    s.add_argument("--feedback-date", required=True, help="YYYY-MM-DD the feedback was received")
    s.add_argument("--plan-text", help="the plan's text, or @FILE")
    s.add_argument("--plan-ref", help="the plan's document reference")
    s.add_argument("--submit-plan", metavar="REF", help="submit the plan at once with this reference")
    s.set_defaults(func=cmd_create)
    for name, action in (("submit-plan", "SUBMIT_PLAN"), ("submit-report", "SUBMIT_REPORT")):
        s = ps.add_parser(name, parents=parents, help=f"{action} (the office)")
        s.add_argument("id")
        s.add_argument("--reference", required=True, help="document reference (文号)")
        s.add_argument("--evidence", action="append", help="evidence reference (repeat)")
        s.add_argument("--note")
        s.add_argument("--request-id", help="idempotency key: retrying with the same id acts once")
        s.set_defaults(func=lambda a, _action=action: _act(a, _action))
