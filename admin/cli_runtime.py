"""casectl runtime / unblock (issue 9): blocked cases and the escalation watchdog's findings
(运行监控, the console's /runtime), and the rectification office's UNBLOCK, through the console's
API (GET /api/v1/runtime, POST /api/v1/cases/{case}/unblock)."""

from __future__ import annotations

import argparse
from typing import Any

_cli: Any = None  # admin.cli, set by configure (avoids an import cycle)


def cmd_runtime(args: argparse.Namespace) -> int:
    """Blocked cases and the escalation watchdog's findings (运行监控, the console's /runtime)."""
    body = _cli._call(args, "GET", "/api/v1/runtime").json()
    lines = [f"阻塞案件 blocked cases: {len(body['blocked'])}"]
    for b in body["blocked"]:
        lines.append(f"  {b['case_no']:<14} since {b['blocked_at'][:19]}  {b['activity']}  {b['error_type']}: "
                     f"{b['message'][:160]}  (step: {b['origin']})")
    open_nudges = [n for n in body["nudges"] if not n.get("healed_at")]
    lines.append(f"监督巡检 watchdog findings not healed: {len(open_nudges)} (of {len(body['nudges'])} shown)")
    for n in open_nudges:
        lines.append(f"  {n['case_no']:<14} {n['what']} due {n['wake_at'][:19]}, late {n['late_seconds']:.0f} s, "
                     f"nudged {n['nudges']}x" + (f", last error: {n['last_error'][:120]}" if n.get("last_error") else ""))
    if body["blocked"]:
        lines.append("fix the cause, then: casectl unblock CASE --reason '...' [--mode RETRY|DISCARD]")
    _cli._out(args, body, "\n".join(lines))
    return _cli.EXIT_OK


def cmd_unblock(args: argparse.Namespace) -> int:
    payload = {"mode": args.mode, "reason": args.reason or ""}
    if args.request_id:
        payload["request_id"] = args.request_id
    body = _cli._call(args, "POST", f"/api/v1/cases/{args.case}/unblock", json=payload).json()
    what = {"UNBLOCKED": "unblocked; the case moves on", "BLOCKED": "the retried step failed again: still blocked"}
    _cli._out(args, body, f"{args.case}: 解除阻塞 UNBLOCK {args.mode}: {what.get(body['outcome'], body['outcome'])}")
    return _cli.EXIT_OK if body["outcome"] == "UNBLOCKED" else _cli.EXIT_REFUSED


def configure(sub: Any, parents: list[argparse.ArgumentParser], cli: Any) -> None:
    global _cli
    _cli = cli
    s = sub.add_parser("runtime", parents=parents,
                       help="blocked cases and the escalation watchdog's findings (运行监控; office, auditors)")
    s.set_defaults(func=cmd_runtime)
    s = sub.add_parser("unblock", parents=parents, help="UNBLOCK a blocked case once its cause is fixed (整改办 only)")
    s.add_argument("case")
    s.add_argument("--reason", required=True, help="what was fixed (recorded in the ledger)")
    s.add_argument("--mode", type=str.upper, choices=["RETRY", "DISCARD"], default="RETRY",
                   help="RETRY the held step (default) or DISCARD it, the case staying as recorded")
    s.add_argument("--request-id", help="idempotency key: retrying with the same id acts once")
    s.set_defaults(func=cmd_unblock)
