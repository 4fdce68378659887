"""casectl: the console's actions and listings for scripts and operators.

    casectl login --url http://127.0.0.1:8080 --token cet_…   (stores the token)
    casectl me | list [--overdue --stage S --unit U …] | my-work | show CASE
    casectl act CASE ACTION [--reason … --finding … --new-due-date … --criteria-json … --field k=v]
    casectl file RECORD.json | import FILE.json|FILE.xlsx | export --format xlsx|csv -o FILE | dashboard
      (import exits 3 when any row was refused; the good rows are filed)
    casectl stats [--round R] [--period 2026-H1|2026] [--format xlsx|pdf -o FILE]
    casectl evidence upload CASE FILE… | evidence list CASE | evidence get CASE SHA256 [-o FILE]
    casectl dispatch schedule PROG --day N | run-now PROG [--period YYYY-MM] | list PROG | show PROG PERIOD
    casectl admin create-user | issue-token USER | revoke-tokens USER | list-users | unlock USER   (DATABASE_URL)
    casectl admin webhook set|list|remove|failed|retry   (notice webhooks per unit; admin/cli_webhooks.py)

Every command but `admin …` talks HTTP to the console's JSON API with a per-user
API token (--token, CASECTL_TOKEN, or ~/.config/casectl/token written by `login`);
the server builds the actor from the token. Every command takes --json.

Exit status: 0 done; 1 error (bad input, not found, server unreachable); 2 bad usage;
3 the action (or filing) was refused, with the validator's reason; 4 not authenticated
or not allowed (bad token, auditor writing).
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import os
import sys
from pathlib import Path
from typing import Any

import httpx

from domain.enums import ACTION_LABELS_ZH, STAGE_LABELS_ZH, Action, CaseKind, Stage
from domain.text import strip_controls

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_REFUSED, EXIT_AUTH = 0, 1, 2, 3, 4
DEFAULT_URL = "http://127.0.0.1:8080"

try:
    from audit import cli as audit_cli  # issue 4: `casectl audit …`
except ImportError:
    audit_cli = None


class CliError(Exception):
    def __init__(self, message: str, status: int = EXIT_ERROR, payload: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message, self.status, self.payload = message, status, payload or {}


def token_file() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "casectl" / "token"


def _token(args: argparse.Namespace) -> str:
    if getattr(args, "token", None):
        return args.token
    if os.environ.get("CASECTL_TOKEN"):
        return os.environ["CASECTL_TOKEN"]
    p = token_file()
    if p.exists():
        return p.read_text().split("\n")[0].strip()
    raise CliError("no API token: pass --token, set CASECTL_TOKEN, or run `casectl login --token …` "
                   "(an operator issues one with `casectl admin issue-token USER`)", EXIT_AUTH)


def _url(args: argparse.Namespace) -> str:
    if getattr(args, "url", None):
        return args.url.rstrip("/")
    if os.environ.get("CASECTL_URL"):
        return os.environ["CASECTL_URL"].rstrip("/")
    p = token_file()
    if p.exists():
        lines = p.read_text().split("\n")
        if len(lines) > 1 and lines[1].strip():
            return lines[1].strip().rstrip("/")
    return DEFAULT_URL


def _call(args: argparse.Namespace, method: str, path: str, **kw: Any) -> httpx.Response:
    url = _url(args)
    try:
        r = httpx.request(method, url + path, headers={"Authorization": f"Bearer {_token(args)}"},
                          timeout=60.0, **kw)
    except httpx.HTTPError as e:
        raise CliError(f"cannot reach the console at {url}: {e}") from None
    if r.status_code < 400:
        return r
    try:
        body = r.json()
    except ValueError:
        body = {"error": f"HTTP {r.status_code}", "message": r.text[:300]}
    msg = f"{body.get('error', r.status_code)}: {body.get('message', '')}"
    if r.status_code in (401, 403):
        raise CliError(msg, EXIT_AUTH, body)
    if r.status_code in (409, 422) and body.get("error") not in ("InvalidInput",):
        raise CliError(f"refused: {msg}", EXIT_REFUSED, body)
    raise CliError(msg, EXIT_ERROR, body)


def _safe(text: str) -> str:
    """What reaches the terminal: case text may carry escape sequences; show them, never run them."""
    return strip_controls(text)


def _json_text(data: Any, **kw: Any) -> str:
    # json escapes C0 controls itself; DEL and the C1 range (ensure_ascii=False) are escaped here.
    return "".join(c if not (0x7F <= ord(c) <= 0x9F) else f"\\u{ord(c):04x}" for c in
                   json.dumps(data, ensure_ascii=False, **kw))


def _out(args: argparse.Namespace, data: Any, text: str) -> None:
    if args.json:
        print(_json_text(data, indent=None if args.json_compact else 2))
    else:
        print(_safe(text))


def _stage(s: str) -> str:
    try:
        return f"{STAGE_LABELS_ZH[Stage(s)]} {s}"
    except ValueError:
        return s


def _row_line(c: dict[str, Any]) -> str:
    if c.get("overdue"):
        left = f"逾期{c['overdue_days']}工作日 overdue {c['overdue_days']}wd"
    elif c.get("days_left") is not None:
        left = f"剩{c['days_left']}工作日 {c['days_left']}wd left"
    else:
        left = "-"
    rung = f" [{c['rung_zh']} {c['rung']}]" if c.get("rung") else ""
    return (f"{c['case_no']:<14} {_stage(c['stage']):<28} due {c.get('due_date') or '-':<10} {left}{rung}  "
            f"{'、'.join(c.get('responsible_units') or [])}  {c['title'][:40]}")


# ------------------------------------------------------------------ commands (HTTP)


def cmd_login(args: argparse.Namespace) -> int:
    token = args.token or os.environ.get("CASECTL_TOKEN") or getpass.getpass("API token: ")
    args.token = token
    me = _call(args, "GET", "/api/v1/me").json()
    p = token_file()
    p.parent.mkdir(parents=True, exist_ok=True)
    p.touch(mode=0o600)
    p.chmod(0o600)
    p.write_text(f"{token}\n{_url(args)}\n")
    _out(args, {"user": me, "token_file": str(p)}, f"logged in as {me['username']} ({me['unit']}); token saved to {p}")
    return EXIT_OK


def cmd_me(args: argparse.Namespace) -> int:
    me = _call(args, "GET", "/api/v1/me").json()
    _out(args, me, f"{me['username']} · {me['unit']} · {', '.join(me['roles'])}")
    return EXIT_OK


def _filters(args: argparse.Namespace) -> dict[str, str]:
    q = {"stage": args.stage or "", "kind": args.kind or "", "unit": args.unit or "",
         "round": args.round or "", "q": args.search or "", "overdue": "1" if args.overdue else "",
         "rung": "" if args.rung is None else str(args.rung)}
    return {k: v for k, v in q.items() if v}


def cmd_list(args: argparse.Namespace) -> int:
    params = _filters(args) | {"page": str(args.page), "page_size": str(args.page_size)}
    body = _call(args, "GET", "/api/v1/cases", params=params).json()
    lines = [_row_line(c) for c in body["cases"]]
    pages = max(1, -(-body["total"] // body["page_size"]))
    lines.append(f"{body['total']} cases (page {body['page']}/{pages})")
    _out(args, body, "\n".join(lines))
    return EXIT_OK


def cmd_my_work(args: argparse.Namespace) -> int:
    body = _call(args, "GET", "/api/v1/my-work").json()
    lines = [_row_line(c) for c in body["cases"]] + [f"{len(body['cases'])} cases waiting for your unit"]
    _out(args, body, "\n".join(lines))
    return EXIT_OK


def cmd_show(args: argparse.Namespace) -> int:
    body = _call(args, "GET", f"/api/v1/cases/{args.case}").json()
    c, f, d = body["case"], body.get("filing") or {}, body.get("deadline")
    lines = [
        f"{c['case_no']}  {_stage(c['stage'])}{'  (中止 suspended)' if c.get('suspended') else ''}",
        f"title:        {c['title']}",
        f"kind:         {c['kind']}",
        f"responsible:  {'、'.join(f.get('responsible_units') or [])}",
        f"lead:         {'、'.join(f.get('lead_supervising_units') or [])}",
        f"deadline:     {(f.get('deadline') or {}).get('raw_zh', '-')}",
    ]
    if d:
        e = d["explanation"]
        lines.append(f"due:          {d['due_date']} (end of day, Asia/Shanghai); rule: {e['rule']}; "
                     f"start {e['start']}; holidays skipped: {', '.join(e['holidays_skipped']) or '-'}; "
                     f"calendar {e['calendar_version']}")
    if c.get("rung"):
        lines.append(f"escalation:   {c['rung_zh']} {c['rung']}")
    for p in body.get("escalation_proposals") or []:
        if p["status"] == "PENDING":
            lines.append(f"proposal:     {p['proposal_id']} {p['rung']} (拟采取措施, pending since {p['proposed_at'][:10]}, "
                         f"by {p['proposed_by']}) {p['reason']}")
    lines.append("measures:")
    done = set(body.get("measures_done") or [])
    if body.get("measures"):  # issue 13: with milestones, evidence and the monthly report
        from admin.cli_followup import _measures_text

        lines += ["  " + x for x in _measures_text(body).splitlines()]
    for m in [] if body.get("measures") else f.get("measures") or []:
        lines.append(f"  {m['seq']}. {'[done] ' if m['seq'] in done else ''}{m['text'][:70]}")
    lines.append("actions you may take now:")
    for a in body["allowed_actions"]:
        req = [x["name"] for x in a["fields"] if x["required"]]
        lines.append(f"  {a['action']:<22} {a['label_zh']} (as {a['role']})" + (f"  needs: {', '.join(req)}" if req else ""))
    if not body["allowed_actions"]:
        lines.append("  (none)")
    lines.append("ledger:")
    for e in body["ledger"]:
        move = f" {e['from_stage']}→{e['to_stage']}" if e.get("to_stage") else ""
        lines.append(f"  {e['seq']:>3} {e['at'][:19]} {e['event']:<20} {e['actor_user']} ({e['actor_role']}, "
                     f"{e['actor_unit']}){move} {e.get('reason') or ''}".rstrip())
    _out(args, body, "\n".join(lines))
    return EXIT_OK


def _payload(args: argparse.Namespace) -> dict[str, Any]:
    p: dict[str, Any] = {}
    for name in ("reason", "finding", "rung", "referral_id", "referral_path", "lookback_finding", "objection_id",
                 "proposal_id", "report_ref"):
        v = getattr(args, name)
        if v:
            p[name] = v
    if args.new_due_date:
        p["new_due_date"] = args.new_due_date
    if args.measure is not None:
        p["measure_seq"] = args.measure
    if args.evidence:
        p["evidence"] = args.evidence
    if args.expected_stage:
        p["expected_stage"] = args.expected_stage
    if args.request_id:
        p["request_id"] = args.request_id
    if args.criteria_json:
        p["criteria"] = _json_arg(args.criteria_json, "--criteria-json")
    if args.amendment_json:
        p["amendment"] = _json_arg(args.amendment_json, "--amendment-json")
    for kv in args.field or []:
        if "=" not in kv:
            raise CliError(f"--field {kv!r}: use name=value", EXIT_USAGE)
        k, v = kv.split("=", 1)
        p[k.strip()] = v
    return p


def _json_arg(raw: str, name: str) -> Any:
    text = Path(raw[1:]).read_text(encoding="utf-8") if raw.startswith("@") else raw
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise CliError(f"{name}: not valid JSON: {e}", EXIT_USAGE) from None


def cmd_act(args: argparse.Namespace) -> int:
    try:
        action = Action(args.action.upper())
    except ValueError:
        raise CliError(f"unknown action {args.action!r}; one of: {', '.join(a.value for a in Action)}",
                       EXIT_USAGE) from None
    body = _call(args, "POST", f"/api/v1/cases/{args.case}/actions/{action.value}", json=_payload(args)).json()
    _out(args, body, f"{args.case}: {ACTION_LABELS_ZH[action]} {action.value} done; now {_stage(body['stage'])}"
         + (f", due {body['due_date']}" if body.get("due_date") else ""))
    return EXIT_OK


def cmd_file(args: argparse.Namespace) -> int:
    record = _json_arg("@" + args.record, "record")
    body = _call(args, "POST", "/api/v1/cases", json=record).json()
    _out(args, body, f"{body['case_no']}: filed")
    return EXIT_OK


def cmd_import(args: argparse.Namespace) -> int:
    path = Path(args.file)
    if not path.exists():
        raise CliError(f"no such file: {path}")
    if path.suffix.lower() == ".xlsx":
        from admin.service import FormError, rows_from_upload

        try:
            rows = rows_from_upload(path.name, path.read_bytes())
        except FormError as e:
            raise CliError(str(e)) from None
        bad = [(label, rec) for label, rec in rows if isinstance(rec, str)]
        records = [rec for _, rec in rows if not isinstance(rec, str)]
    else:
        records, bad = _json_arg("@" + str(path), "import file"), []
    if getattr(args, "programme", None):  # issue 13: the rows carry the programme (checked server-side too)
        _call(args, "GET", f"/api/v1/programmes/{args.programme}")
        if isinstance(records, dict) and isinstance(records.get("cases"), list):
            records = records["cases"]
        records = [dict(r, programme_id=args.programme) if isinstance(r, dict) else r for r in records]
    body = _call(args, "POST", "/api/v1/import", json=records).json()
    body["rows"] = [{"row": label, "case_no": "", "filed": False, "reason": why} for label, why in bad] + body["rows"]
    body["refused"] += len(bad)
    lines = [f"{r['row']:<8} {r['case_no'] or '?':<14} " + ("filed" if r["filed"] else f"refused: {r['reason']}")
             for r in body["rows"]]
    lines.append(f"{body['filed']} filed, {body['refused']} refused")
    _out(args, body, "\n".join(lines))
    return EXIT_REFUSED if body["refused"] else EXIT_OK  # issue 13: refused rows exit 3 (with or without --strict)


def cmd_export(args: argparse.Namespace) -> int:
    r = _call(args, "GET", f"/api/v1/export.{args.format}", params=_filters(args))
    out = Path(args.output)
    out.write_bytes(r.content)
    _out(args, {"file": str(out), "bytes": len(r.content), "format": args.format},
         f"wrote {out} ({len(r.content)} bytes, {args.format})")
    return EXIT_OK


def cmd_dashboard(args: argparse.Namespace) -> int:
    d = _call(args, "GET", "/api/v1/dashboard").json()
    lines = [f"{d['total']} cases"]
    lines += [f"  {s['stage_zh']} {s['stage']}: {s['n']}" for s in d["stages"] if s["n"]]
    lines.append(f"overdue: {len(d['overdue'])}; escalated: {len(d['escalated'])}")
    lines.append("closures per month: " + ", ".join(f"{m['month']}={m['n']}" for m in d["closures"] if m["n"]))
    _out(args, d, "\n".join(lines))
    return EXIT_OK


# ------------------------------------------------------------------ operator bootstrap (database)


async def _with_db(fn: Any) -> Any:
    import asyncpg

    from activities.migrate import migrate
    from config import Settings

    url = Settings.from_env().database_url
    try:
        conn = await asyncpg.connect(url)
    except (OSError, asyncpg.PostgresError) as e:
        raise CliError(f"cannot connect to PostgreSQL (DATABASE_URL={url}): {e}") from None
    try:
        await migrate(conn)
        return await fn(conn)
    finally:
        await conn.close()


def cmd_create_user(args: argparse.Namespace) -> int:
    from admin.users import UserError, create_user

    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = getpass.getpass(f"password for {args.username}: ")
        if getpass.getpass("again: ") != password:
            raise CliError("the two passwords differ", EXIT_USAGE)

    async def go(conn: Any) -> Any:
        return await create_user(conn, args.username, password, args.unit, args.roles, args.display_name or "")

    try:
        user, _ = asyncio.run(_with_db(go))
    except UserError as e:
        raise CliError(str(e)) from None
    _out(args, user.to_json(), f"created user {user.username} ({user.unit}; {', '.join(r.value for r in user.roles)})")
    return EXIT_OK


def cmd_issue_token(args: argparse.Namespace) -> int:
    from admin.auth import issue_api_token

    async def go(conn: Any) -> str:
        return await issue_api_token(conn, args.username, args.label or "")

    try:
        token = asyncio.run(_with_db(go))
    except LookupError as e:
        raise CliError(e.args[0]) from None
    _out(args, {"username": args.username, "token": token},
         f"{token}\n(the token for {args.username}; shown once, only its hash is stored)")
    return EXIT_OK


def cmd_list_users(args: argparse.Namespace) -> int:
    from admin.users import list_users

    users = asyncio.run(_with_db(list_users))
    data = [u.to_json() | {"locked_until": u.extra["locked_until"].isoformat() if u.extra["locked_until"] else None}
            for u in users]
    lines = [f"{u['username']:<20} {u['unit']:<20} {','.join(u['roles'])}"
             + (f"  locked until {u['locked_until']}" if u["locked_until"] else "") for u in data]
    _out(args, data, "\n".join(lines) or "(no users)")
    return EXIT_OK


def cmd_revoke_tokens(args: argparse.Namespace) -> int:
    async def go(conn: Any) -> tuple[bool, int]:
        exists = await conn.fetchval("SELECT true FROM console_user WHERE username = $1", args.username)
        n = await conn.fetchval(
            """WITH r AS (UPDATE api_token SET revoked_at = clock_timestamp()
                          WHERE username = $1 AND revoked_at IS NULL RETURNING 1) SELECT count(*) FROM r""",
            args.username,
        )
        return bool(exists), int(n)

    exists, n = asyncio.run(_with_db(go))
    if not exists:
        raise CliError(f"no user {args.username!r}")
    _out(args, {"username": args.username, "revoked": n}, f"revoked {n} API token(s) of {args.username}")
    return EXIT_OK


def cmd_unlock(args: argparse.Namespace) -> int:
    from admin.users import unlock_user

    async def go(conn: Any) -> bool:
        return await unlock_user(conn, args.username, by=os.environ.get("USER", "operator"))

    if not asyncio.run(_with_db(go)):
        raise CliError(f"no user {args.username!r}")
    _out(args, {"username": args.username, "unlocked": True}, f"unlocked {args.username}")
    return EXIT_OK


# ------------------------------------------------------------------ parser


def build_parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(add_help=False)
    top.add_argument("--json", action="store_true", help="machine-readable JSON output")
    top.add_argument("--json-compact", action="store_true", help=argparse.SUPPRESS)
    # The same options after the command name; SUPPRESS keeps a `casectl --json list` from being reset.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="machine-readable JSON output")
    common.add_argument("--json-compact", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    net = argparse.ArgumentParser(add_help=False)
    net.add_argument("--url", help=f"console URL (CASECTL_URL; default {DEFAULT_URL})")
    net.add_argument("--token", help="API token (CASECTL_TOKEN, or ~/.config/casectl/token)")
    filt = argparse.ArgumentParser(add_help=False)
    filt.add_argument("--stage", choices=[s.value for s in Stage])
    filt.add_argument("--kind", choices=[k.value for k in CaseKind])
    filt.add_argument("--unit")
    filt.add_argument("--round", help="inspection round (督察轮次)")
    filt.add_argument("--rung", type=int, help="escalation level 0..8 (0 = not escalated)")
    filt.add_argument("--overdue", action="store_true")
    filt.add_argument("--search", help="case number or title contains")

    p = argparse.ArgumentParser(prog="casectl", description="Inspection-case console from the command line.",
                                parents=[top], epilog="exit: 0 ok, 1 error, 2 usage, 3 refused, 4 auth")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    s = sub.add_parser("login", parents=[common, net], help="check a token and store it for later commands")
    s.set_defaults(func=cmd_login)
    s = sub.add_parser("me", parents=[common, net], help="who the token belongs to")
    s.set_defaults(func=cmd_me)
    s = sub.add_parser("list", parents=[common, net, filt], help="list cases (filters, paging)")
    s.add_argument("--page", type=int, default=1)
    s.add_argument("--page-size", type=int, default=50)
    s.set_defaults(func=cmd_list)
    s = sub.add_parser("my-work", parents=[common, net], help="cases waiting for your unit (我的待办)")
    s.set_defaults(func=cmd_my_work)
    s = sub.add_parser("show", parents=[common, net], help="one case: fields, deadline, actions, ledger")
    s.add_argument("case")
    s.set_defaults(func=cmd_show)
    s = sub.add_parser("act", parents=[common, net], help="take an action on a case")
    s.add_argument("case")
    s.add_argument("action", help="e.g. ACKNOWLEDGE, SUBMIT_COMPLETION, PRELIM_PASS (see `show`)")
    s.add_argument("--reason")
    s.add_argument("--finding", choices=["SUBSTANTIATED", "PARTLY_SUBSTANTIATED", "UNSUBSTANTIATED"])
    s.add_argument("--new-due-date", help="YYYY-MM-DD")
    s.add_argument("--rung")
    s.add_argument("--referral-id")
    s.add_argument("--referral-path")
    s.add_argument("--lookback-finding")
    s.add_argument("--objection-id")
    s.add_argument("--proposal-id", help="escalation proposal (拟采取措施) to confirm or dismiss, e.g. P1")
    s.add_argument("--report-ref", help="追责建议报告 / dossier reference (移交问责)")
    s.add_argument("--measure", type=int, help="measure number (COMPLETE_MEASURE)")
    s.add_argument("--evidence", action="append", help="evidence reference (repeat)")
    s.add_argument("--criteria-json", help="VERIFY_PASS criteria as JSON or @file")
    s.add_argument("--amendment-json", help="AMEND fields as JSON or @file")
    s.add_argument("--expected-stage", choices=[st.value for st in Stage])
    s.add_argument("--request-id", help="idempotency key: retrying with the same id acts once")
    s.add_argument("--field", action="append", help="any other payload field as name=value")
    s.set_defaults(func=cmd_act)
    s = sub.add_parser("file", parents=[common, net], help="file one case from a JSON record (立案)")
    s.add_argument("record", help="JSON file with one case record")
    s.set_defaults(func=cmd_file)
    s = sub.add_parser("import", parents=[common, net], help="file a batch from .json or .xlsx, per-row report")
    s.add_argument("file")
    s.add_argument("--strict", action="store_true",
                   help="kept for scripts: any refused row exits 3 anyway (the good rows are still filed)")
    s.add_argument("--programme", help="file every row into this programme (整改方案), which must exist")
    s.set_defaults(func=cmd_import)
    s = sub.add_parser("export", parents=[common, net, filt], help="export the (filtered) 台账 as .xlsx or .csv")
    s.add_argument("--format", choices=["xlsx", "csv"], default="xlsx")
    s.add_argument("-o", "--output", required=True)
    s.set_defaults(func=cmd_export)
    s = sub.add_parser("dashboard", parents=[common, net], help="counts by stage, overdue, closures per month")
    s.set_defaults(func=cmd_dashboard)

    adm = sub.add_parser("admin", help="operator bootstrap on the database (DATABASE_URL)")
    asub = adm.add_subparsers(dest="admin_command", required=True, metavar="ADMIN_COMMAND")
    s = asub.add_parser("create-user", parents=[common], help="create a user (the first one, or any)")
    s.add_argument("username")
    s.add_argument("--unit", required=True, help="the one unit the user belongs to")
    s.add_argument("--roles", required=True, help="comma-separated: RECTIFICATION_OFFICE, LEAD_SUPERVISOR, …")
    s.add_argument("--display-name")
    s.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    s.set_defaults(func=cmd_create_user)
    s = asub.add_parser("issue-token", parents=[common], help="issue an API token (shown once)")
    s.add_argument("username")
    s.add_argument("--label")
    s.set_defaults(func=cmd_issue_token)
    s = asub.add_parser("list-users", parents=[common], help="list users")
    s.set_defaults(func=cmd_list_users)
    s = asub.add_parser("revoke-tokens", parents=[common], help="revoke every API token of a user")
    s.add_argument("username")
    s.set_defaults(func=cmd_revoke_tokens)
    s = asub.add_parser("unlock", parents=[common], help="lift a login lock-out")
    s.add_argument("username")
    s.set_defaults(func=cmd_unlock)
    from admin import cli_webhooks  # issue 13: the webhook notice channel

    cli_webhooks.configure(asub, [common], sys.modules[__name__])

    from admin import cli_evidence

    cli_evidence.configure(sub, [common, net], sys.modules[__name__])
    from admin import cli_runtime  # issue 9: casectl runtime | unblock

    cli_runtime.configure(sub, [common, net], sys.modules[__name__])
    from admin import cli_stats

    cli_stats.configure(sub, [common, net], sys.modules[__name__])
    from admin import cli_dispatch  # issue 13: casectl dispatch schedule|run-now|list|show

    cli_dispatch.configure(sub, [common, net], sys.modules[__name__])
    from admin import cli_programme  # issue 13: casectl programme …

    cli_programme.configure(sub, [common, net], sys.modules[__name__])
    from admin import cli_followup  # issue 13: measures, milestones, monthly report

    cli_followup.configure(sub, [common, net], sys.modules[__name__])
    from admin import cli_lookback  # issue 14: casectl lookback …

    cli_lookback.configure(sub, [common, net], sys.modules[__name__])
    if audit_cli is not None:
        audit_cli.configure(sub.add_parser("audit", help="audit the ledger and workflow histories"))
    return p


def run(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:
        return int(e.code or 0) if e.code in (0, None) else EXIT_USAGE
    for name in ("json", "json_compact"):
        if not hasattr(args, name):
            setattr(args, name, False)
    try:
        return int(args.func(args))
    except CliError as e:
        if getattr(args, "json", False):
            print(_json_text({"error": e.payload.get("error", "error"), "message": e.message, "status": e.status}))
        print(_safe(f"casectl: {e.message}"), file=sys.stderr)
        return e.status
    except KeyboardInterrupt:
        return 130


def main(argv: list[str] | None = None) -> None:
    status = run(argv)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)  # sdk-python#300 (admin commands load modules that import the Temporal SDK)


if __name__ == "__main__":
    main()
