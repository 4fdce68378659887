"""`casectl dispatch …`: the monthly dispatch (月度调度) of a programme.

    casectl dispatch schedule PROGRAMME --day N      create or update the monthly Schedule (office)
    casectl dispatch schedule PROGRAMME --delete     remove it (the reports stay)
    casectl dispatch run-now PROGRAMME [--period YYYY-MM]   dispatch a month now (default: this month);
                                                     exit 3 when that month was dispatched already
    casectl dispatch list PROGRAMME                  the reports (and the Schedule, for the office)
    casectl dispatch show PROGRAMME PERIOD [-o FILE.xlsx|FILE.html]   figures per unit, or the file

A responsible unit sees only its own rows (and gets files of its own rows).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any
from urllib.parse import quote

EXIT_OK = 0
_cli: Any = None  # casectl's module (set by configure): _call, _out, CliError


def _path(programme: str) -> str:
    return f"/api/v1/programmes/{quote(programme, safe='')}/dispatch"


def cmd_schedule(args: argparse.Namespace) -> int:
    if args.delete:
        body = _cli._call(args, "DELETE", _path(args.programme) + "/schedule").json()
        _cli._out(args, body, "已删除 deleted" if body["deleted"] else "没有调度计划 no schedule")
        return EXIT_OK
    if args.day is None:
        raise _cli.CliError("give --day N (1..28) or --delete", 2)
    body = _cli._call(args, "PUT", _path(args.programme) + "/schedule", json={"day_of_month": args.day}).json()
    _cli._out(args, body, f"{body['schedule_id']}: {body['status']}, 每月 {body['day_of_month']} 日 09:00 北京时间")
    return EXIT_OK


def cmd_run_now(args: argparse.Namespace) -> int:
    payload = {"period": args.period} if args.period else {}
    r = _cli._call(args, "POST", _path(args.programme) + "/run", json=payload)
    body = r.json()
    res = body.get("result")
    text = (f"{body['workflow_id']}: {res['units']} 单位 units, {res['cases']} 案件 cases, "
            f"{res['notices']} 通知 notices" if res else f"{body['workflow_id']}: started (still running)")
    _cli._out(args, body, text)
    return EXIT_OK


def cmd_list(args: argparse.Namespace) -> int:
    body = _cli._call(args, "GET", _path(args.programme)).json()
    lines = []
    if body.get("schedule"):
        s = body["schedule"]
        lines.append(f"调度计划 schedule: day {s['day_of_month']} {s['hour']:02d}:00 {s['time_zone']}"
                     f"{' (paused)' if s['paused'] else ''}; next {', '.join(s['next_action_times'][:1])}")
    for r in body["reports"]:
        t = r.get("totals")
        figures = (f" 在办 open {t['open']} 逾期 overdue {t['overdue']} 本月到期 due {t['due_this_month']} "
                   f"本月销号 closed {t['closed_this_month']}") if t else ""
        lines.append(f"{r['period']}  {r['generated_at'][:16]}  {'、'.join(r['units'])}{figures}")
    _cli._out(args, body, "\n".join(lines) or "无调度报告 no reports")
    return EXIT_OK


def cmd_show(args: argparse.Namespace) -> int:
    if args.output:
        fmt = Path(args.output).suffix.lstrip(".").lower()
        if fmt not in ("xlsx", "html"):
            raise _cli.CliError("-o must name a .xlsx or .html file", 2)
        r = _cli._call(args, "GET", f"{_path(args.programme)}/{quote(args.period)}.{fmt}")
        Path(args.output).write_bytes(r.content)
        _cli._out(args, {"written": args.output, "bytes": len(r.content)}, f"{args.output}: {len(r.content)} bytes")
        return EXIT_OK
    body = _cli._call(args, "GET", f"{_path(args.programme)}/{quote(args.period)}").json()
    lines = [f"{body['programme_id']} {body['period']} (as of {body['as_of'][:16]})"]
    for u in [*body["units"], body["totals"]]:
        lines.append(f"{u['unit']}: 在办 {u['open']} 本月到期 {u['due_this_month']} 逾期 {u['overdue']} "
                     f"升级 {u['escalated']} 本月销号 {u['closed_this_month']} 无时限 {u['no_timer']} "
                     f"未报进展 {u['no_report']}")
    _cli._out(args, body, "\n".join(lines))
    return EXIT_OK


def configure(sub: Any, parents: list[argparse.ArgumentParser], cli: Any) -> None:
    global _cli
    _cli = cli
    d = sub.add_parser("dispatch", help="monthly dispatch (月度调度) of a programme: schedule, run-now, list, show")
    dsub = d.add_subparsers(dest="dispatch_command", required=True, metavar="DISPATCH_COMMAND")
    s = dsub.add_parser("schedule", parents=parents, help="create/update (--day N) or --delete the Schedule")
    s.add_argument("programme")
    s.add_argument("--day", type=int, help="day of month 1..28 (09:00 Asia/Shanghai)")
    s.add_argument("--delete", action="store_true")
    s.set_defaults(func=cmd_schedule)
    s = dsub.add_parser("run-now", parents=parents, help="dispatch a month now (once per month)")
    s.add_argument("programme")
    s.add_argument("--period", help="YYYY-MM (default: this month, Asia/Shanghai)")
    s.set_defaults(func=cmd_run_now)
    s = dsub.add_parser("list", parents=parents, help="the programme's dispatch reports")
    s.add_argument("programme")
    s.set_defaults(func=cmd_list)
    s = dsub.add_parser("show", parents=parents, help="one report's figures, or -o FILE.xlsx|FILE.html")
    s.add_argument("programme")
    s.add_argument("period")
    s.add_argument("-o", "--output")
    s.set_defaults(func=cmd_show)
