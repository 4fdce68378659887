"""The webhook notice channel against a real local HTTP receiver: signed, once per notice key,
retried with backoff while the receiver is down or answers 5xx, a 4xx refused for good and shown,
and independent of the e-mail channel."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import asyncpg
import pytest
from aiosmtpd.controller import Controller
from temporalio.testing import ActivityEnvironment

from activities.case_activities import CaseActivities
from activities.notices import NoticeSender, SmtpConfig
from domain.notice_channels import idempotency_key
from embedded import find_free_port
from ops.metrics import read_figures
from tests.integration.test_store_and_notices import _Inbox, _record_input, message_from_bytes
from tests.integration.webhook_receiver import Receiver

SECRET = "s3cret-for-tests-0123456789"
FAST = timedelta(milliseconds=200)  # the backoff cap: retries come quickly in tests


@pytest.fixture
async def units(pool: asyncpg.Pool):
    """Units of this test only; their webhooks are removed afterwards (so later drains skip them)."""
    made: list[str] = []

    def unit() -> str:
        made.append(f"短信网关县-{uuid.uuid4().hex[:6]}")
        return made[-1]

    yield unit
    await pool.execute("DELETE FROM unit_webhook WHERE unit = ANY($1::text[])", made)


async def _hook(pool: asyncpg.Pool, unit: str, url: str, timeout: float = 5.0) -> None:
    await pool.execute(
        "INSERT INTO unit_webhook (unit, url, secret, timeout_seconds) VALUES ($1, $2, $3, $4)",
        unit, url, SECRET, timeout)


async def _notices(pool: asyncpg.Pool, unit: str, n: int = 1) -> list[str]:
    """`n` outbox notices to `unit`, written by the record activity (the first) and beside it."""
    inp = _record_input()
    inp = inp.model_copy(update={"notices": [inp.notices[0].model_copy(update={"recipient_unit": unit})]})
    await ActivityEnvironment().run(CaseActivities(pool).record_case_events, inp)
    keys = [inp.notices[0].key]
    for i in range(1, n):
        keys.append(f"{keys[0]}#{i}")
        await pool.execute(
            """INSERT INTO outbox (notice_key, case_no, seq, recipient_unit, recipient_role, subject, body)
               VALUES ($1, $2, $3, $4, 'RESPONSIBLE_UNIT', '督办通知 notice', '请按时整改')""",
            keys[-1], inp.projection.case_no, inp.notices[0].seq, unit)
    return keys


async def _row(pool: asyncpg.Pool, key: str) -> asyncpg.Record:
    return await pool.fetchrow("SELECT * FROM outbox WHERE notice_key = $1", key)


async def _drain_until(sender: NoticeSender, check, tries: int = 40) -> None:
    for _ in range(tries):
        await sender.drain()
        if await check():
            return
        await asyncio.sleep(0.1)
    raise AssertionError("not delivered in time")


async def test_a_notice_is_posted_once_signed_with_its_idempotency_key(pool: asyncpg.Pool, units) -> None:
    rx = Receiver(find_free_port()).start()
    unit = units()
    await _hook(pool, unit, rx.url + "?access_token=robot-token-xyz")
    keys = await _notices(pool, unit, 3)
    sender = NoticeSender(pool, SmtpConfig(), max_backoff=FAST)
    try:
        await sender.drain()
        await sender.drain()  # nothing more: each notice once
    finally:
        await sender.aclose()
        rx.stop()
    assert rx.counts() == {idempotency_key(k): 1 for k in keys}
    for req in rx.requests:
        assert req.signed_by(SECRET) and not req.signed_by("another-secret-0123456789")
        assert req.path == "/notify?access_token=robot-token-xyz"
        body = req.json
        assert body["notice_key"] in keys and body["recipient_unit"] == unit
        assert body["idempotency_key"] == req.key and body["subject"] and body["case_no"]
    first = next(r for r in rx.requests if r.json["notice_key"] == keys[0])
    assert first.json["recipient_role"] and first.json["seq"] >= 1
    for k in keys:
        row = await _row(pool, k)
        assert row["status"] == "DELIVERED" and row["webhook_sent_at"] is not None
        assert row["webhook_status"] == 200 and row["webhook_attempts"] == 1
        assert row["webhook_to"] == rx.url  # the access token of the URL is not recorded
        assert row["inbox_at"] is not None
    assert await pool.fetchval("SELECT count(*) FROM inbox WHERE notice_key = ANY($1::text[])", keys) == 3


async def test_receiver_down_then_up_delivers_after_retry_and_not_twice(pool: asyncpg.Pool, units) -> None:
    port = find_free_port()
    unit = units()
    await _hook(pool, unit, f"http://127.0.0.1:{port}/notify")
    (key,) = await _notices(pool, unit)
    sender = NoticeSender(pool, SmtpConfig(), max_backoff=FAST)
    try:
        await sender.drain()
        row = await _row(pool, key)
        assert row["status"] == "PENDING" and row["webhook_attempts"] == 1 and row["webhook_status"] is None
        assert row["webhook_error"].startswith("no answer: ConnectError")
        assert row["webhook_next_at"] is not None and row["webhook_failed_at"] is None
        assert await pool.fetchval("SELECT count(*) FROM inbox WHERE notice_key = $1", key) == 1  # in-app at once
        rx = Receiver(port).start()
        try:
            async def delivered() -> bool:
                return (await _row(pool, key))["status"] == "DELIVERED"

            await _drain_until(sender, delivered)
            await asyncio.sleep(0.3)
            await sender.drain()
        finally:
            rx.stop()
    finally:
        await sender.aclose()
    assert rx.counts() == {idempotency_key(key): 1}
    row = await _row(pool, key)
    assert row["webhook_attempts"] >= 2 and row["webhook_sent_at"] and row["webhook_error"] is None


async def test_a_500_then_200_posts_the_same_signed_body_twice(pool: asyncpg.Pool, units) -> None:
    rx = Receiver(find_free_port(), answer=lambda n, r: (500, "gateway busy") if n == 1 else (200, "ok")).start()
    unit = units()
    await _hook(pool, unit, rx.url)
    (key,) = await _notices(pool, unit)
    sender = NoticeSender(pool, SmtpConfig(), max_backoff=FAST)
    try:
        await sender.drain()
        row = await _row(pool, key)
        assert row["status"] == "PENDING" and row["webhook_status"] == 500 and "gateway busy" in row["webhook_error"]

        async def delivered() -> bool:
            return (await _row(pool, key))["status"] == "DELIVERED"

        await _drain_until(sender, delivered)
    finally:
        await sender.aclose()
        rx.stop()
    assert rx.counts() == {idempotency_key(key): 2}
    a, b = rx.requests
    assert a.body == b.body and a.headers["x-notice-signature"] == b.headers["x-notice-signature"]
    row = await _row(pool, key)
    assert row["webhook_attempts"] == 2 and row["webhook_status"] == 200


async def test_a_400_is_not_retried_and_is_visible(pool: asyncpg.Pool, units) -> None:
    rx = Receiver(find_free_port(), answer=lambda n, r: (400, "unknown recipient 短信号码")).start()
    unit = units()
    await _hook(pool, unit, rx.url)
    (key,) = await _notices(pool, unit)
    sender = NoticeSender(pool, SmtpConfig(), max_backoff=FAST)
    try:
        await sender.drain()
        # Even made due again by hand, a refused webhook is not posted again.
        await pool.execute("UPDATE outbox SET next_attempt_at = clock_timestamp() WHERE notice_key = $1", key)
        await asyncio.sleep(0.3)
        await sender.drain()
    finally:
        await sender.aclose()
        rx.stop()
    assert rx.counts() == {idempotency_key(key): 1}
    row = await _row(pool, key)
    assert row["webhook_failed_at"] is not None and row["webhook_sent_at"] is None
    assert row["webhook_status"] == 400 and row["webhook_error"] == "HTTP 400: unknown recipient 短信号码"
    assert row["status"] == "DELIVERED"  # in the inbox; no channel left open
    figures = await read_figures(pool)
    assert figures.webhook_refused >= 1


async def test_email_and_webhook_back_off_independently(pool: asyncpg.Pool, units) -> None:
    """The SMTP relay down does not hold the webhook back; the relay back later e-mails the notice
    once and the webhook is not posted again."""
    rx = Receiver(find_free_port()).start()
    unit = units()
    await _hook(pool, unit, rx.url)
    await pool.execute("INSERT INTO unit_directory (unit, email) VALUES ($1, 'gw@example.org')", unit)
    (key,) = await _notices(pool, unit)
    dead = NoticeSender(pool, SmtpConfig(host="127.0.0.1", port=find_free_port(), timeout=2), max_backoff=FAST)
    inbox = _Inbox()
    relay = Controller(inbox, hostname="127.0.0.1", port=find_free_port())
    try:
        await dead.drain()
        row = await _row(pool, key)
        assert row["webhook_sent_at"] is not None and row["email_sent_at"] is None
        assert row["status"] == "PENDING" and row["last_error"] and row["email_next_at"] is not None
        assert row["next_attempt_at"] == row["email_next_at"]  # only e-mail is waited for
        relay.start()
        live = NoticeSender(pool, SmtpConfig(host="127.0.0.1", port=relay.port), max_backoff=FAST)

        async def delivered() -> bool:
            return (await _row(pool, key))["status"] == "DELIVERED"

        await _drain_until(live, delivered)
        await live.aclose()
    finally:
        await dead.aclose()
        relay.stop()
        rx.stop()
    assert rx.counts() == {idempotency_key(key): 1}
    mails = [m for m in map(message_from_bytes, inbox.messages) if m["X-Notice-Key"] == key]
    assert len(mails) == 1
