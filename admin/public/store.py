"""The public site's writes: objections stored first, then delivered to the case as an OBJECT
action by a system actor of Role.PUBLIC; the rate limits counted in PostgreSQL (so every
public-site process agrees); receipts looked up; the form key shared through PostgreSQL.
"""

from __future__ import annotations

import json
import secrets
import string
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg
import structlog

from domain import disclosure as d
from domain.enums import Action, Role
from domain.model import ActionRequest, Actor

log = structlog.get_logger("admin.public")
RECEIPT_ALPHABET = string.ascii_uppercase.replace("O", "").replace("I", "") + "23456789"
PUBLIC_UNIT = "公众"


def new_receipt() -> str:
    """16 characters from 32 symbols: 80 random bits, unguessable; grouped for reading aloud."""
    raw = "".join(secrets.choice(RECEIPT_ALPHABET) for _ in range(16))
    return "-".join(raw[i:i + 4] for i in range(0, 16, 4))


def normalise_receipt(value: str) -> str:
    raw = "".join(c for c in (value or "").upper() if c in RECEIPT_ALPHABET)[:16]
    return "-".join(raw[i:i + 4] for i in range(0, len(raw), 4))


async def form_key(pool: asyncpg.Pool) -> bytes:
    await pool.execute("INSERT INTO public_site_key (id, key) VALUES (1, $1) ON CONFLICT (id) DO NOTHING",
                       secrets.token_bytes(32))
    return bytes(await pool.fetchval("SELECT key FROM public_site_key WHERE id = 1"))


@dataclass(frozen=True)
class Lodged:
    receipt: str
    objection_ref: str
    row_id: int


class RateLimited(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


async def lodge(pool: asyncpg.Pool, programme_id: str, case_no: str, obj: d.ObjectionInput, address: str,
                limits: d.RateLimits) -> Lodged:
    """Store one objection if the rate limits allow it (counted and inserted under advisory locks
    on the address and the contact, so concurrent processes cannot both pass the last slot)."""
    now = datetime.now(UTC)
    async with pool.acquire() as conn, conn.transaction():
        for k in sorted({f"addr:{address}", f"contact:{obj.contact}"}):
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext('public-objection:' || $1))", k)
        by_addr = await conn.fetchval("SELECT count(*) FROM public_objection WHERE address = $1 AND created_at > $2",
                                      address, now - limits.address_window)
        by_contact = await conn.fetchval("SELECT count(*) FROM public_objection WHERE contact = $1 "
                                         "AND created_at > $2", obj.contact, now - limits.contact_window)
        refusal = d.rate_refusal(limits, by_addr, by_contact)
        if refusal:
            raise RateLimited(refusal)
        receipt = new_receipt()
        ref = f"PO-{secrets.token_hex(4).upper()}"
        row_id = await conn.fetchval(
            "INSERT INTO public_objection (receipt, objection_ref, programme_id, case_no, text, contact, contact_kind, "
            "address) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
            receipt, ref, programme_id, case_no, obj.text, obj.contact, obj.contact_kind, address)
    return Lodged(receipt, ref, row_id)


async def deliver(pool: asyncpg.Pool, client: Any, row_id: int, signing_keys: tuple[bytes, ...] | None = None
                  ) -> str:
    """Send a stored objection to its case (OBJECT by the public-site actor; the text only, never
    the contact). Returns the row's status after: DELIVERED, REFUSED (with the engine's reason) or
    STORED (the engine did not answer: tried again later by `deliver_pending`)."""
    from workflows.client import ActionRefusedError, act

    r = await pool.fetchrow("SELECT * FROM public_objection WHERE id = $1", row_id)
    if r is None or r["status"] != "STORED":
        return r["status"] if r else "MISSING"
    req = ActionRequest(action=Action.OBJECT, actor=Actor(user_id=d.public_actor_id(r["objection_ref"]),
                                                          role=Role.PUBLIC, unit=PUBLIC_UNIT),
                        request_id=f"public-{r['objection_ref']}", reason=r["text"])
    try:
        await act(client, r["case_no"], req, pool=pool, signing_keys=signing_keys)
    except ActionRefusedError as e:
        if e.error_type == "EngineUnavailable":
            log.warning("public_objection_not_delivered", ref=r["objection_ref"], error=e.message)
            return "STORED"
        if e.error_type == "DuplicateRequestError":
            # Its request id is this objection's own: the case already has it (an earlier delivery
            # whose answer was lost, after the case continued as new). Delivered, not refused.
            await pool.execute("UPDATE public_objection SET status = 'DELIVERED', delivered_at = clock_timestamp() "
                               "WHERE id = $1 AND status = 'STORED'", row_id)
            return "DELIVERED"
        await pool.execute("UPDATE public_objection SET status = 'REFUSED', refused_reason = $2 WHERE id = $1 "
                           "AND status = 'STORED'", row_id, f"{e.error_type}: {e.message}"[:1000])
        return "REFUSED"
    await pool.execute("UPDATE public_objection SET status = 'DELIVERED', delivered_at = clock_timestamp() "
                       "WHERE id = $1 AND status = 'STORED'", row_id)
    return "DELIVERED"


async def deliver_pending(pool: asyncpg.Pool, client: Any, signing_keys: tuple[bytes, ...] | None = None) -> int:
    """Deliver objections stored but not yet delivered (a crash or an outage in between)."""
    ids = await pool.fetch("SELECT id FROM public_objection WHERE status = 'STORED' ORDER BY id LIMIT 100")
    n = 0
    for r in ids:
        n += (await deliver(pool, client, r["id"], signing_keys)) != "STORED"
    return n


async def receipt_view(pool: asyncpg.Pool, receipt: str) -> dict[str, Any] | None:
    """What the receipt page shows: the item, when lodged, the objection's own text, its status and,
    once ruled, the ruling and the office's published reason. Never the contact."""
    r = await pool.fetchrow("SELECT o.*, c.title, c.detail FROM public_objection o "
                            "LEFT JOIN case_projection c ON c.case_no = o.case_no WHERE o.receipt = $1", receipt)
    if r is None:
        return None
    detail = r["detail"]
    if isinstance(detail, str):
        detail = json.loads(detail)
    me = d.public_actor_id(r["objection_ref"])
    objection = None
    for p in [*(detail or {}).get("postings", []), (detail or {}).get("posting") or {}]:
        for o in (p or {}).get("objections") or []:
            if o.get("by") == me:
                objection = o
    out: dict[str, Any] = {
        "receipt": r["receipt"], "objection_ref": r["objection_ref"], "programme_id": r["programme_id"],
        "item_no": r["case_no"], "title": r["title"] or "", "lodged_at": r["created_at"], "text": r["text"],
        "status": r["status"], "refused_reason": _public_refusal(r["refused_reason"]),
        "objection_id": None, "ruling": None, "ruling_zh": "", "ruled_at": None, "ruling_reason": "",
    }
    if objection:
        out.update(objection_id=objection.get("objection_id"), ruling=objection.get("ruling"),
                   ruling_zh=d.RULING_ZH.get(objection.get("ruling"), ""), ruled_at=d._dt(objection.get("ruled_at")))
        if objection.get("ruling"):
            out["ruling_reason"] = (await ruling_reasons(pool, r["case_no"])).get(str(objection["objection_id"]), "")
    return out


def _public_refusal(reason: str) -> str:
    """Why the engine did not take the objection, in public terms (the engine's text may name internals)."""
    if not reason:
        return ""
    if "stage" in reason or "InvalidTransition" in reason:
        return "该事项已不在公示期内 The item is no longer in its public posting"
    return "未被受理 Not accepted"


async def ruling_reasons(pool: asyncpg.Pool, case_no: str) -> dict[str, str]:
    rows = await pool.fetch("SELECT event, reason, data FROM ledger WHERE case_no = $1 "
                            "AND event IN ('UPHOLD_OBJECTION', 'DISMISS_OBJECTION') ORDER BY seq", case_no)
    return d.ruling_reasons([{**dict(x), "data": json.loads(x["data"]) if isinstance(x["data"], str) else x["data"]}
                             for x in rows])
