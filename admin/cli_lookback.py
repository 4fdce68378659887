"""`casectl lookback …`: look-back campaigns (回头看, issue 14).

    casectl lookback list
    casectl lookback show ID
    casectl lookback create --id ID --name NAME --start YYYY-MM-DD --end YYYY-MM-DD [--basis TEXT]
                            [--unannounced] [--programme P]
    casectl lookback select ID [--unit U …] [--county C] [--round R] [--programme P] [--sample N] [--seed S]
    casectl lookback finding ID CASE_NO --finding IN_PLACE|REBOUND|NOT_IN_PLACE|FAKE --evidence TEXT
                             [--evidence-ref R …] [--new-due-date YYYY-MM-DD] [--request-id R]
    casectl lookback close ID [--reason R]
    casectl lookback report ID --format xlsx|pdf -o FILE

Same token, URL, --json and exit statuses as every other casectl command (3: refused).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any
from urllib.parse import quote

_cli: Any = None  # casectl's module, set by `configure`


def _path(args: argparse.Namespace, tail: str = "") -> str:
    return f"/api/v1/lookbacks/{quote(args.id, safe='')}{tail}"


def cmd_list(args: argparse.Namespace) -> int:
    body = _cli._call(args, "GET", "/api/v1/lookbacks").json()
    lines = [f"{c['campaign_id']:<20} {c['stage']:<9} {c['visited']}/{c['selected']} visited  "
             f"{c['start_date']}..{c['end_date']}  {c['name']}" for c in body["lookbacks"]]
    _cli._out(args, body, "\n".join(lines) or "no look-back campaigns")
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    v = _cli._call(args, "GET", _path(args)).json()
    f = v["figures"]
    lines = [f"{v['campaign_id']}  {v['name']}  {v['stage']}  {v['start_date']}..{v['end_date']}"
             + ("  unannounced" if v["unannounced"] else ""),
             f"  selected {f['selected']} (of {v['population']}), visited {f['visited']}, unvisited {f['unvisited']}, "
             f"reopened {f['reopened']}, referrals proposed {f['referrals_proposed']}"]
    for i in v["items"]:
        lines.append(f"    {i['case_no']:<16} {i['finding'] or 'UNVISITED':<13} {i['reopen'] or '':<9} "
                     f"{i['referral_proposed'] or ''}")
    _cli._out(args, v, "\n".join(lines))
    return 0


def cmd_create(args: argparse.Namespace) -> int:
    body = {"campaign_id": args.id, "name": args.name, "basis": args.basis or "", "unannounced": args.unannounced,
            "start": args.start, "end": args.end, "programme_id": args.programme or ""}
    out = _cli._call(args, "POST", "/api/v1/lookbacks", json=body).json()
    _cli._out(args, out, f"{out['campaign_id']}: created")
    return 0


def _op(args: argparse.Namespace, op: str, body: dict[str, Any]) -> int:
    if getattr(args, "request_id", None):
        body["request_id"] = args.request_id
    out = _cli._call(args, "POST", _path(args, f"/{op}"), json=body).json()
    _cli._out(args, out, f"{out['campaign_id']}: {op} accepted, {out['stage']}, "
                         f"{out['selected'] - out['unvisited']}/{out['selected']} visited")
    return 0


def cmd_select(args: argparse.Namespace) -> int:
    return _op(args, "select", {"units": args.unit or [], "county": args.county or "", "inspection_round": args.round or "",
                                "programme_id": args.programme or "", "sample_size": args.sample, "seed": args.seed})


def cmd_finding(args: argparse.Namespace) -> int:
    return _op(args, "finding", {"case_no": args.case_no, "finding": args.finding, "evidence": args.evidence,
                                 "evidence_refs": args.evidence_ref or [], "new_due_date": args.new_due_date or ""})


def cmd_close(args: argparse.Namespace) -> int:
    return _op(args, "close", {"reason": args.reason or ""})


def cmd_report(args: argparse.Namespace) -> int:
    resp = _cli._call(args, "GET", _path(args, f"/report.{args.format}"))
    Path(args.output).write_bytes(resp.content)
    _cli._out(args, {"written": args.output, "bytes": len(resp.content)}, f"{args.output}: {len(resp.content)} bytes")
    return 0


def configure(sub: Any, parents: list[argparse.ArgumentParser], cli_module: Any) -> None:
    global _cli
    _cli = cli_module
    p = sub.add_parser("lookback", help="look-back campaigns (回头看): list, show, create, select, finding, close, report")
    ps = p.add_subparsers(dest="lookback_command", required=True, metavar="LOOKBACK_COMMAND")
    s = ps.add_parser("list", parents=parents, help="the campaigns you may see")
    s.set_defaults(func=cmd_list)
    s = ps.add_parser("show", parents=parents, help="selection, findings, unvisited")
    s.add_argument("id")
    s.set_defaults(func=cmd_show)
    s = ps.add_parser("create", parents=parents, help="define a campaign (the office)")
    s.add_argument("--id", required=True, help="campaign id (letters, digits, . _ -)")
    s.add_argument("--name", required=True)
    s.add_argument("--basis", help="its basis (依据)")
    s.add_argument("--unannounced", action="store_true", help="四不两直 / 明察暗访")
    s.add_argument("--start", required=True)
    s.add_argument("--end", required=True)
    s.add_argument("--programme", help="programme id (整改方案)")
    s.set_defaults(func=cmd_create)
    s = ps.add_parser("select", parents=parents, help="select the cases, once (the office)")
    s.add_argument("id")
    s.add_argument("--unit", action="append", help="responsible unit (repeat)")
    s.add_argument("--county")
    s.add_argument("--round", help="inspection round")
    s.add_argument("--programme")
    s.add_argument("--sample", type=int, help="a random sample of this many")
    s.add_argument("--seed", type=int, help="the sample's seed (recorded; drawn when absent)")
    s.add_argument("--request-id")
    s.set_defaults(func=cmd_select)
    s = ps.add_parser("finding", parents=parents, help="record the one finding of a selected case")
    s.add_argument("id")
    s.add_argument("case_no")
    s.add_argument("--finding", required=True, choices=["IN_PLACE", "REBOUND", "NOT_IN_PLACE", "FAKE"])
    s.add_argument("--evidence", required=True, help="what was found (核查情况)")
    s.add_argument("--evidence-ref", action="append", help="evidence reference (repeat)")
    s.add_argument("--new-due-date", help="the reopened case's deadline (default: policy working days)")
    s.add_argument("--request-id")
    s.set_defaults(func=cmd_finding)
    s = ps.add_parser("close", parents=parents, help="end the campaign (the office)")
    s.add_argument("id")
    s.add_argument("--reason")
    s.add_argument("--request-id")
    s.set_defaults(func=cmd_close)
    s = ps.add_parser("report", parents=parents, help="download the report")
    s.add_argument("id")
    s.add_argument("--format", choices=["xlsx", "pdf"], default="xlsx")
    s.add_argument("-o", "--output", required=True)
    s.set_defaults(func=cmd_report)
