"""casectl stats: the leadership statistics (统计, issue 13) through the console's API, so it
shows exactly what the token's user may see (a unit: only its own cases' figures)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

_cli: Any = None  # admin.cli, set by configure (avoids an import cycle)


def _rate(v: Any) -> str:
    return "-" if v is None else f"{v}%"


def cmd_stats(args: argparse.Namespace) -> int:
    params = {k: v for k, v in (("round", args.round), ("programme", args.programme), ("period", args.period),
                                          ("light", args.light)) if v}
    if args.format:
        if not args.output:
            raise _cli.CliError("--format needs --output FILE", _cli.EXIT_USAGE)
        r = _cli._call(args, "GET", f"/api/v1/statistics/export.{args.format}", params=params)
        out = Path(args.output)
        out.write_bytes(r.content)
        _cli._out(args, {"file": str(out), "bytes": len(r.content), "format": args.format},
                  f"wrote {out} ({len(r.content)} bytes, {args.format})")
        return _cli.EXIT_OK
    d = _cli._call(args, "GET", "/api/v1/statistics", params=params).json()
    p = d["period"]
    lines = [f"as of {d['today']}: {d['total']} cases, {d['done']} done, completion {_rate(d['rate'])}"]
    lines.append("lights: " + ", ".join(f"{x['label_zh']} {x['light']}={x['n']}" for x in d["lights"]))
    lines.append(f"period {p['key']} ({p['label_zh']}): {p['total_at_end']} cases at end, {p['done_at_end']} done, "
                 f"rate {_rate(p['rate_at_end'])}, {p['closures_in_period']} closures, "
                 f"{p['escalations_in_period']} escalations")
    lines.append("closures per month: " + ", ".join(f"{m['month']}={m['n']}" for m in p["closures_per_month"]))
    for title, rows in (("by round", d["by_round"]), ("by unit", d["by_unit"]), ("by county", d["by_county"])):
        if rows:
            lines.append(f"{title}:")
            lines += [f"  {r['name']}: {r['done']}/{r['total']} {_rate(r['rate'])}  red {r['RED']} "
                      f"yellow {r['YELLOW']} green {r['GREEN']}" for r in rows]
    if d["cases"]:
        lines.append("cases:")
        lines += [f"  {c['case_no']:<14} {c.get('light_zh', '')} {c.get('due_date') or '-'}  {c['title'][:40]}"
                  for c in d["cases"]]
    _cli._out(args, d, "\n".join(lines))
    return _cli.EXIT_OK


def configure(sub: Any, parents: list[argparse.ArgumentParser], cli: Any) -> None:
    global _cli
    _cli = cli
    s = sub.add_parser("stats", parents=parents,
                       help="leadership statistics: 红黄绿灯, completion by round/unit/county, half-year and year")
    s.add_argument("--round", default="", help="one inspection round (督察轮次)")
    s.add_argument("--programme", default="", help="one programme (整改方案) by its id")
    s.add_argument("--period", default="", help="YYYY-H1, YYYY-H2 or YYYY (default: the current half-year)")
    s.add_argument("--light", default="", help="list the cases with this light (RED, YELLOW, GREEN, NO_DEADLINE, DONE)")
    s.add_argument("--format", choices=("xlsx", "pdf"), help="export the summary instead (with -o FILE)")
    s.add_argument("-o", "--output", help="file to write the export to")
    s.set_defaults(func=cmd_stats)
