"""`casectl admin webhook …`: the per-unit HTTP webhook notice channel (table unit_webhook, on
the database like the other `admin` commands; DATABASE_URL).

    casectl admin webhook set UNIT URL (--secret-stdin | --secret-file FILE) [--timeout S] [--disabled]
    casectl admin webhook list                       units, URLs without their query, never the secret
    casectl admin webhook remove UNIT
    casectl admin webhook failed [--unit UNIT]       notices whose webhook was refused for good (4xx)
    casectl admin webhook retry (KEY … | --unit UNIT) post those again (after fixing the receiver)

A refused webhook (a permanent 4xx) is never retried by itself: `failed` shows it, `retry` re-arms it.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

from domain.notice_channels import check_webhook, redact_url

EXIT_OK, EXIT_USAGE = 0, 2
_cli: Any = None  # admin.cli (or __main__): CliError, _with_db, _out


def _secret(args: argparse.Namespace) -> str:
    if args.secret_file:
        try:
            return Path(args.secret_file).read_text(encoding="utf-8").strip()
        except OSError as e:
            raise _cli.CliError(f"--secret-file: {e}", EXIT_USAGE) from None
    if args.secret_stdin:
        return sys.stdin.readline().strip()
    raise _cli.CliError("give the secret with --secret-stdin or --secret-file (never on the command line)", EXIT_USAGE)


def cmd_set(args: argparse.Namespace) -> int:
    secret = _secret(args)
    problems = check_webhook(args.unit, args.url, secret, args.timeout)
    if problems:
        raise _cli.CliError("webhook refused: " + "; ".join(problems), EXIT_USAGE)

    async def go(conn: Any) -> None:
        await conn.execute(
            """INSERT INTO unit_webhook (unit, url, secret, enabled, timeout_seconds) VALUES ($1, $2, $3, $4, $5)
               ON CONFLICT (unit) DO UPDATE SET url = $2, secret = $3, enabled = $4, timeout_seconds = $5,
                   updated_at = clock_timestamp()""", args.unit, args.url, secret, not args.disabled, args.timeout)

    asyncio.run(_cli._with_db(go))
    data = {"unit": args.unit, "url": redact_url(args.url), "enabled": not args.disabled, "timeout": args.timeout}
    _cli._out(args, data, f"{args.unit}: webhook {redact_url(args.url)} "
                          f"({'enabled' if not args.disabled else 'disabled'}, timeout {args.timeout:g} s)")
    return EXIT_OK


def cmd_list(args: argparse.Namespace) -> int:
    async def go(conn: Any) -> list[dict[str, Any]]:
        rows = await conn.fetch("SELECT unit, url, enabled, timeout_seconds, updated_at FROM unit_webhook ORDER BY unit")
        return [{"unit": r["unit"], "url": redact_url(r["url"]), "enabled": r["enabled"],
                 "timeout": float(r["timeout_seconds"]), "updated_at": r["updated_at"].isoformat()} for r in rows]

    data = asyncio.run(_cli._with_db(go))
    lines = [f"{d['unit']:<20} {'on ' if d['enabled'] else 'off'} {d['timeout']:>5g}s  {d['url']}" for d in data]
    _cli._out(args, data, "\n".join(lines) or "(no webhooks)")
    return EXIT_OK


def cmd_remove(args: argparse.Namespace) -> int:
    async def go(conn: Any) -> bool:
        return await conn.fetchval("DELETE FROM unit_webhook WHERE unit = $1 RETURNING true", args.unit) or False

    if not asyncio.run(_cli._with_db(go)):
        raise _cli.CliError(f"no webhook for unit {args.unit!r}")
    _cli._out(args, {"unit": args.unit, "removed": True}, f"{args.unit}: webhook removed")
    return EXIT_OK


def cmd_failed(args: argparse.Namespace) -> int:
    async def go(conn: Any) -> list[dict[str, Any]]:
        rows = await conn.fetch(
            """SELECT notice_key, case_no, recipient_unit, webhook_status, webhook_error, webhook_to, webhook_failed_at
               FROM outbox WHERE webhook_failed_at IS NOT NULL AND ($1::text IS NULL OR recipient_unit = $1)
               ORDER BY webhook_failed_at""", args.unit)
        return [dict(r) | {"webhook_failed_at": r["webhook_failed_at"].isoformat()} for r in rows]

    data = asyncio.run(_cli._with_db(go))
    lines = [f"{d['webhook_failed_at'][:19]}  {d['recipient_unit']}  {d['notice_key']}  {d['webhook_error']}"
             for d in data]
    _cli._out(args, data, "\n".join(lines) or "(no refused webhooks)")
    return EXIT_OK


def cmd_retry(args: argparse.Namespace) -> int:
    if not args.keys and not args.unit:
        raise _cli.CliError("name notice keys, or --unit", EXIT_USAGE)

    async def go(conn: Any) -> int:
        return await conn.fetchval(
            """WITH r AS (UPDATE outbox SET webhook_failed_at = NULL, webhook_next_at = NULL, status = 'PENDING',
                              delivered_at = NULL, next_attempt_at = clock_timestamp()
                          WHERE webhook_failed_at IS NOT NULL AND webhook_sent_at IS NULL
                            AND (notice_key = ANY($1::text[]) OR recipient_unit = $2) RETURNING 1)
               SELECT count(*)::int FROM r""", args.keys or [], args.unit)

    n = asyncio.run(_cli._with_db(go))
    _cli._out(args, {"rearmed": n}, f"{n} notice(s) will be posted again")
    return EXIT_OK


def configure(asub: Any, parents: list[argparse.ArgumentParser], cli: Any) -> None:
    global _cli
    _cli = cli
    wh = asub.add_parser("webhook", help="HTTP webhook notice channel per unit (SMS gateway, messaging robot)")
    wsub = wh.add_subparsers(dest="webhook_command", required=True, metavar="WEBHOOK_COMMAND")
    s = wsub.add_parser("set", parents=parents, help="set (or replace) a unit's webhook")
    s.add_argument("unit")
    s.add_argument("url")
    s.add_argument("--secret-stdin", action="store_true", help="read the HMAC secret from stdin")
    s.add_argument("--secret-file", help="read the HMAC secret from a file")
    s.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for an answer (default 10)")
    s.add_argument("--disabled", action="store_true", help="store it switched off")
    s.set_defaults(func=cmd_set)
    s = wsub.add_parser("list", parents=parents, help="list the webhooks (no secrets)")
    s.set_defaults(func=cmd_list)
    s = wsub.add_parser("remove", parents=parents, help="remove a unit's webhook")
    s.add_argument("unit")
    s.set_defaults(func=cmd_remove)
    s = wsub.add_parser("failed", parents=parents, help="notices whose webhook was refused for good")
    s.add_argument("--unit")
    s.set_defaults(func=cmd_failed)
    s = wsub.add_parser("retry", parents=parents, help="post refused notices again")
    s.add_argument("keys", nargs="*", metavar="KEY")
    s.add_argument("--unit")
    s.set_defaults(func=cmd_retry)
