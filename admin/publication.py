"""The publication ledger (what the office made public per programme, 曝光) and the reads the public
site and the console's publication page share. The rules are domain/disclosure.py; this module only
reads and writes PostgreSQL (deploy/sql/020_public_disclosure.sql).
"""

from __future__ import annotations

import json
import secrets
from datetime import UTC, datetime
from typing import Any

import asyncpg

from domain import disclosure as d
from domain.calendar import local_date

ITEM_COLUMNS = ("case_no, title, stage, due_date, responsible_units, detail, "
                "COALESCE(filing ->> 'parent_case_no', '') AS parent_case_no")


async def programme_row(pool: asyncpg.Pool, programme_id: str) -> dict[str, Any] | None:
    r = await pool.fetchrow("SELECT * FROM programme_projection WHERE programme_id = $1", programme_id)
    return _row(r) if r else None


async def programme_rows(pool: asyncpg.Pool) -> list[asyncpg.Record]:
    return await pool.fetch("SELECT * FROM programme_projection ORDER BY created_at, programme_id")


async def item_rows(pool: asyncpg.Pool, programme_id: str) -> list[dict[str, Any]]:
    """The programme's items (top-level cases; a fanned-out item's county children are not listed)."""
    rows = await pool.fetch(f"SELECT {ITEM_COLUMNS} FROM case_projection WHERE programme_id = $1 "
                            "AND COALESCE(filing ->> 'parent_case_no', '') = '' ORDER BY case_no", programme_id)
    return [_row(r) for r in rows]


async def item_row(pool: asyncpg.Pool, programme_id: str, case_no: str) -> dict[str, Any] | None:
    r = await pool.fetchrow(f"SELECT {ITEM_COLUMNS} FROM case_projection WHERE programme_id = $1 AND case_no = $2 "
                            "AND COALESCE(filing ->> 'parent_case_no', '') = ''", programme_id, case_no)
    return _row(r) if r else None


def _row(r: asyncpg.Record) -> dict[str, Any]:
    out = dict(r)
    if isinstance(out.get("detail"), str):
        out["detail"] = json.loads(out["detail"])
    return out


async def ledger_rows(pool: asyncpg.Pool, programme_id: str) -> list[dict[str, Any]]:
    rows = await pool.fetch("SELECT * FROM publication_ledger WHERE programme_id = $1 ORDER BY seq", programme_id)
    return [{**dict(r), "data": json.loads(r["data"]) if isinstance(r["data"], str) else r["data"]} for r in rows]


async def publication(pool: asyncpg.Pool, programme_id: str) -> d.Publication:
    return d.fold(await ledger_rows(pool, programme_id))


def today() -> Any:
    return local_date(datetime.now(UTC))


async def decide(pool: asyncpg.Pool, programme_id: str, *, event: str, user: str, roles: list[str], unit: str,
                 office_unit: str, request_id: str, reason: str = "", options: d.PublicationOptions | None = None,
                 unit_named: str = "", naming_id: str = "") -> int:
    """Record one publication decision after the domain rule allows it; returns its seq.

    The check and the append run in one transaction under the programme's advisory lock, so two
    offices deciding at once see each other's rows. A request id seen before returns its seq
    (idempotent retry). Raises PublicationError (refused, with the reason) or LookupError."""
    d.check_office(roles, unit, office_unit)
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext('publication:' || $1))", programme_id)
        if await conn.fetchval("SELECT 1 FROM programme_projection WHERE programme_id = $1", programme_id) is None:
            raise LookupError(f"no programme {programme_id!r}")
        seen = await conn.fetchval("SELECT seq FROM publication_ledger WHERE programme_id = $1 AND request_id = $2",
                                   programme_id, request_id)
        if seen is not None:
            return int(seen)
        rows = await conn.fetch("SELECT * FROM publication_ledger WHERE programme_id = $1 ORDER BY seq", programme_id)
        pub = d.fold([{**dict(r), "data": json.loads(r["data"]) if isinstance(r["data"], str) else r["data"]}
                      for r in rows])
        match event:
            case "SET_OPTIONS":
                assert options is not None
                data: dict[str, Any] = {"options": options.as_data(), "before": pub.options.as_data()}
                reason = reason.strip()
                if reason:
                    reason = d.check_reason(reason, "公开范围 options")
            case "NAME_UNIT":
                items = [dict(r) for r in await conn.fetch(
                    "SELECT stage, due_date, responsible_units FROM case_projection WHERE programme_id = $1",
                    programme_id)]
                lagging = d.lagging_units(items, today())
                reason = d.check_naming(pub, unit_named, reason, lagging)
                data = {"naming_id": f"N{secrets.token_hex(4)}", "unit": unit_named.strip(),
                        "overdue_items": lagging[unit_named.strip()]}
            case "REVOKE_NAMING":
                reason = d.check_revoke(pub, naming_id, reason)
                data = {"naming_id": naming_id}
            case _:
                raise d.PublicationError(f"unknown publication event {event!r}")
        seq = len(rows) + 1
        await conn.execute(
            "INSERT INTO publication_ledger (programme_id, seq, event, actor_user, actor_role, actor_unit, reason, "
            "request_id, data) VALUES ($1, $2, $3, $4, 'RECTIFICATION_OFFICE', $5, $6, $7, $8::jsonb)",
            programme_id, seq, event, user, unit, reason, request_id, json.dumps(data, ensure_ascii=False))
        return seq


async def office_objections(pool: asyncpg.Pool, programme_id: str) -> list[dict[str, Any]]:
    """Public-site objections of a programme for the office: reference, case, status, when (the
    contact is shown to the office only, on its console page)."""
    rows = await pool.fetch(
        "SELECT objection_ref, case_no, status, created_at, delivered_at, refused_reason, contact, contact_kind "
        "FROM public_objection WHERE programme_id = $1 ORDER BY id DESC LIMIT 200", programme_id)
    return [dict(r) for r in rows]
