"""The notice sender delivers in batches: one transaction per batch, each notice once, none lost."""

from __future__ import annotations

import asyncio
import time
import uuid

import asyncpg
import pytest
from aiosmtpd.controller import Controller
from temporalio.testing import ActivityEnvironment

from activities.case_activities import CaseActivities
from activities.notices import NoticeSender, SmtpConfig
from embedded import find_free_port
from tests.integration.test_store_and_notices import _Inbox, _record_input, message_from_bytes


class _Refusing(_Inbox):
    """A relay that refuses one recipient address (550) and takes every other."""

    refused = "refused@example.org"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802 - aiosmtpd API
        if address == self.refused:
            return "550 mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"


@pytest.fixture
def relay():
    handler = _Refusing()
    controller = Controller(handler, hostname="127.0.0.1", port=find_free_port())
    controller.start()
    yield controller, handler
    controller.stop()


async def _record_cases(pool: asyncpg.Pool, n: int, email: str | None) -> list[str]:
    acts = CaseActivities(pool)
    keys: list[str] = []
    for _ in range(n):
        inp = _record_input()
        await ActivityEnvironment().run(acts.record_case_events, inp)
        for notice in inp.notices:
            keys.append(notice.key)
            if email:
                await pool.execute(
                    """INSERT INTO unit_directory (unit, email) VALUES ($1, $2)
                       ON CONFLICT (unit) DO UPDATE SET email = $2""", notice.recipient_unit, email)
    return keys


async def _pending(pool: asyncpg.Pool, keys: list[str]) -> int:
    return await pool.fetchval(
        "SELECT count(*) FROM outbox WHERE notice_key = ANY($1::text[]) AND status = 'PENDING'", keys)


async def test_batches_deliver_every_notice_once_to_inbox_and_relay(pool: asyncpg.Pool, relay) -> None:
    """With a batch of 3, a drain delivers every notice; each reaches the inbox and the relay once."""
    controller, received = relay
    keys = await _record_cases(pool, 4, "batch@example.org")
    assert len(keys) > 3
    # other tests' leftovers may be due too: deliver everything due
    sender = NoticeSender(pool, SmtpConfig(host="127.0.0.1", port=controller.port, domain="t.local"), batch_size=3)
    first = await sender.deliver_batch()
    assert 1 <= first <= 3  # one batch, at most the batch size
    await sender.drain()
    assert await sender.drain() == 0  # nothing left
    mine = [m["X-Notice-Key"] for m in map(message_from_bytes, received.messages) if m["X-Notice-Key"] in keys]
    assert sorted(mine) == sorted(keys)
    assert await _pending(pool, keys) == 0
    n_inbox = await pool.fetchval("SELECT count(*) FROM inbox WHERE notice_key = ANY($1::text[])", keys)
    assert n_inbox == len(keys)
    rows = await pool.fetch("SELECT * FROM outbox WHERE notice_key = ANY($1::text[])", keys)
    assert all(r["email_sent_at"] and r["email_to"] == "batch@example.org" and r["attempts"] == 1 for r in rows)


async def _extra_notices(pool: asyncpg.Pool, emails: dict[str, str]) -> dict[str, str]:
    """One outbox notice per recipient unit (unit -> e-mail), on a freshly recorded case's
    first ledger row; returns notice key -> unit."""
    inp = _record_input()
    await ActivityEnvironment().run(CaseActivities(pool).record_case_events, inp)
    case_no = inp.projection.case_no
    out: dict[str, str] = {}
    for unit, email in emails.items():
        unit = f"{unit}-{uuid.uuid4().hex[:6]}"
        key = f"{case_no}:1:{unit}"
        await pool.execute("INSERT INTO unit_directory (unit, email) VALUES ($1, $2)", unit, email)
        await pool.execute(
            """INSERT INTO outbox (notice_key, case_no, seq, recipient_unit, recipient_role, subject, body)
               VALUES ($1, $2, 1, $3, 'RESPONSIBLE_UNIT', '通知 notice', 'body')""", key, case_no, unit)
        out[key] = unit
    return out


async def test_a_refused_email_backs_off_only_its_own_notice(pool: asyncpg.Pool, relay) -> None:
    """In one batch, the notice whose e-mail the relay refuses stays pending (inbox written, backed
    off, error recorded); the others of the same batch are delivered."""
    controller, received = relay
    notices = await _extra_notices(pool, {"good-a": "a@example.org", "bad": _Refusing.refused,
                                          "good-b": "b@example.org"})
    bad = [k for k, u in notices.items() if u.startswith("bad")]
    good = [k for k in notices if k not in bad]
    sender = NoticeSender(pool, SmtpConfig(host="127.0.0.1", port=controller.port), batch_size=100)
    await sender.drain()
    rows = {r["notice_key"]: r for r in await pool.fetch(
        "SELECT * FROM outbox WHERE notice_key = ANY($1::text[])", list(notices))}
    (k,) = bad
    assert rows[k]["status"] == "PENDING" and rows[k]["attempts"] == 1
    assert "550" in rows[k]["last_error"] and rows[k]["inbox_at"] is not None
    assert rows[k]["email_sent_at"] is None
    for g in good:
        assert rows[g]["status"] == "DELIVERED" and rows[g]["email_sent_at"] is not None
    n_inbox = await pool.fetchval("SELECT count(*) FROM inbox WHERE notice_key = ANY($1::text[])", list(notices))
    assert n_inbox == len(notices)  # all in the inbox at once; the refused e-mail is retried later
    sent = [m["X-Notice-Key"] for m in map(message_from_bytes, received.messages)]
    assert k not in sent and all(g in sent for g in good)


async def test_concurrent_batched_senders_never_deliver_a_notice_twice(pool: asyncpg.Pool, relay) -> None:
    """Three senders with small batches drain together: SKIP LOCKED keeps every notice to one of them."""
    controller, received = relay
    keys = await _record_cases(pool, 6, "many@example.org")
    cfg = SmtpConfig(host="127.0.0.1", port=controller.port)
    await asyncio.gather(*(NoticeSender(pool, cfg, batch_size=2).drain() for _ in range(3)))
    sent = [m["X-Notice-Key"] for m in map(message_from_bytes, received.messages)]
    assert sorted(k for k in sent if k in keys) == sorted(keys)
    assert await _pending(pool, keys) == 0


async def test_a_batch_that_fails_before_commit_leaves_every_notice_pending(pool: asyncpg.Pool) -> None:
    """A batch is one transaction: if it cannot commit, none of its notices counts as delivered."""
    keys = await _record_cases(pool, 2, None)
    sender = NoticeSender(pool, SmtpConfig(), batch_size=100)
    async with pool.acquire() as conn:
        # an exclusive lock on the inbox: the batch claims its rows, then waits on its insert
        tr = conn.transaction()
        await tr.start()
        await conn.execute("LOCK TABLE inbox IN EXCLUSIVE MODE")
        task = asyncio.create_task(sender.deliver_batch())
        end = time.monotonic() + 30
        while not await pool.fetchval(
            "SELECT count(*) FROM pg_locks WHERE NOT granted AND relation = 'inbox'::regclass"
        ):
            assert time.monotonic() < end and not task.done(), "the batch never reached its inbox insert"
            await asyncio.sleep(0.05)
        # blocked inside its transaction: rows claimed, nothing written; now it dies there
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await tr.rollback()
    assert await _pending(pool, keys) == len(keys)
    await sender.drain()
    assert await _pending(pool, keys) == 0
