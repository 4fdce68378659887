"""Delivers notices from the outbox: to the in-app inbox and by e-mail (SMTP).

The outbox row is written in the same transaction as its ledger row, so a
notice is never lost. Delivery claims a batch of due rows (up to
NOTICE_BATCH_SIZE, FOR UPDATE SKIP LOCKED, so several senders can run), writes
their inbox rows in one statement, sends the e-mails (a few at a time) and
marks each sent or backed off, all in that one transaction. What is recorded as sent is never sent
again; a crash between the SMTP hand-off and the commit resends the same
message with the same Message-ID, derived from the notice key, so the receiver
(or an operator) can recognise the duplicate.
"""

from __future__ import annotations

import asyncio
import hashlib
from datetime import timedelta
from email.message import EmailMessage

import aiosmtplib
import asyncpg
import structlog

log = structlog.get_logger(__name__)

MAX_BACKOFF = timedelta(hours=1)
SMTP_CONCURRENCY = 10  # e-mails of one batch handed to the relay at once

_CLAIM = """
SELECT o.notice_key, o.case_no, o.recipient_unit, o.subject, o.body, o.attempts,
       o.email_sent_at, o.inbox_at, u.email
FROM outbox o LEFT JOIN unit_directory u ON u.unit = o.recipient_unit
WHERE o.status = 'PENDING' AND o.next_attempt_at <= clock_timestamp()
ORDER BY o.next_attempt_at
LIMIT $1
FOR UPDATE OF o SKIP LOCKED
"""


def message_id(notice_key: str, domain: str) -> str:
    """A stable, ASCII Message-ID for a notice key."""
    digest = hashlib.sha256(notice_key.encode()).hexdigest()[:32]
    return f"<notice-{digest}@{domain}>"


class SmtpConfig:
    """Where and how to send e-mail; `host` empty disables the e-mail channel."""

    def __init__(
        self,
        host: str = "",
        port: int = 25,
        user: str = "",
        password: str = "",
        starttls: bool = False,
        ssl: bool = False,
        sender: str = "case-engine@localhost",
        domain: str = "case-engine.local",
        timeout: float = 30.0,
    ) -> None:
        self.host, self.port, self.user, self.password = host, port, user, password
        self.starttls, self.ssl = starttls, ssl
        self.sender, self.domain, self.timeout = sender, domain, timeout

    @property
    def enabled(self) -> bool:
        return bool(self.host)


class NoticeSender:
    """Drains the outbox; run `run()` as a task beside the worker."""

    def __init__(self, pool: asyncpg.Pool, smtp: SmtpConfig, poll_seconds: float = 2.0,
                 batch_size: int = 100) -> None:
        self._pool = pool
        self._smtp = smtp
        self._poll = poll_seconds
        self._batch = max(1, batch_size)

    def build_email(self, key: str, to: str, subject: str, body: str) -> EmailMessage:
        msg = EmailMessage()
        msg["From"] = self._smtp.sender
        msg["To"] = to
        msg["Subject"] = subject
        msg["Message-ID"] = message_id(key, self._smtp.domain)
        msg["X-Notice-Key"] = key
        msg.set_content(body)
        return msg

    async def _send(self, msg: EmailMessage) -> None:
        await aiosmtplib.send(
            msg,
            hostname=self._smtp.host,
            port=self._smtp.port,
            username=self._smtp.user or None,
            password=self._smtp.password or None,
            start_tls=self._smtp.starttls,
            use_tls=self._smtp.ssl,
            timeout=self._smtp.timeout,
        )

    async def deliver_one(self) -> bool:
        """Deliver the next due notice, if any. Returns False when nothing was due."""
        return await self.deliver_batch(1) > 0

    async def deliver_batch(self, limit: int | None = None) -> int:
        """Deliver up to `limit` due notices (default: the batch size) in ONE transaction.

        Returns how many were handled (delivered or backed off); 0 when nothing was due.
        The rows stay locked (SKIP LOCKED for other senders) until the commit, which writes
        their inbox rows and marks them: a crash before the commit delivers nothing and the
        whole batch is claimed again (the e-mails already handed to SMTP go again, with the
        same Message-ID, as with one row per transaction).
        """
        async with self._pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(_CLAIM, max(1, limit or self._batch))
            if not rows:
                return 0
            await conn.execute(
                """INSERT INTO inbox (notice_key, unit, case_no, subject, body)
                   SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[])
                   ON CONFLICT (notice_key) DO NOTHING""",
                [r["notice_key"] for r in rows], [r["recipient_unit"] for r in rows],
                [r["case_no"] for r in rows], [r["subject"] for r in rows], [r["body"] for r in rows],
            )
            wants = [bool(self._smtp.enabled and r["email"] and r["email_sent_at"] is None) for r in rows]
            errors = await self._send_all([r for r, w in zip(rows, wants, strict=True) if w])
            failed = [r for r in rows if r["notice_key"] in errors]
            if failed:
                backoffs = [min(timedelta(seconds=5 * 2 ** min(r["attempts"], 12)), MAX_BACKOFF) for r in failed]
                await conn.execute(
                    """UPDATE outbox o SET attempts = o.attempts + 1, last_error = f.err,
                           next_attempt_at = clock_timestamp() + f.backoff,
                           inbox_at = coalesce(o.inbox_at, clock_timestamp())
                       FROM unnest($1::text[], $2::text[], $3::interval[]) AS f(key, err, backoff)
                       WHERE o.notice_key = f.key""",
                    [r["notice_key"] for r in failed], [errors[r["notice_key"]] for r in failed], backoffs,
                )
                for r, b in zip(failed, backoffs, strict=True):
                    log.warning("notice_email_failed", notice_key=r["notice_key"], error=errors[r["notice_key"]],
                                retry_in=str(b))
            done = [(r, w) for r, w in zip(rows, wants, strict=True) if r["notice_key"] not in errors]
            if done:
                await conn.execute(
                    """UPDATE outbox o SET status = 'DELIVERED', attempts = o.attempts + 1,
                           delivered_at = clock_timestamp(), last_error = NULL,
                           inbox_at = coalesce(o.inbox_at, clock_timestamp()),
                           email_to = CASE WHEN d.sent THEN d.email ELSE o.email_to END,
                           email_sent_at = CASE WHEN d.sent THEN clock_timestamp() ELSE o.email_sent_at END
                       FROM unnest($1::text[], $2::bool[], $3::text[]) AS d(key, sent, email)
                       WHERE o.notice_key = d.key""",
                    [r["notice_key"] for r, _ in done], [w for _, w in done], [r["email"] for r, _ in done],
                )
        if done:
            log.info("notices_delivered", count=len(done), emails=sum(w for _, w in done),
                     first_key=done[0][0]["notice_key"])
        return len(rows)

    async def _send_all(self, rows: list[asyncpg.Record]) -> dict[str, str]:
        """E-mail each row (at most `SMTP_CONCURRENCY` at once); the errors by notice key."""
        errors: dict[str, str] = {}
        sem = asyncio.Semaphore(SMTP_CONCURRENCY)

        async def one(r: asyncpg.Record) -> None:
            async with sem:
                try:
                    await self._send(self.build_email(r["notice_key"], r["email"], r["subject"], r["body"]))
                except (TimeoutError, aiosmtplib.SMTPException, OSError) as e:
                    errors[r["notice_key"]] = f"{type(e).__name__}: {e}"

        await asyncio.gather(*(one(r) for r in rows))
        return errors

    async def drain(self, limit: int = 10_000) -> int:
        """Deliver every due notice (up to about `limit`), batch by batch; returns how many were handled."""
        n = 0
        while n < limit:
            got = await self.deliver_batch(min(self._batch, limit - n))
            if not got:
                break
            n += got
        return n

    async def run(self, stop: asyncio.Event) -> None:
        """Poll until `stop` is set; a database outage is logged and retried."""
        while not stop.is_set():
            try:
                await self.drain(limit=500)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as e:
                log.warning("notice_sender_error", error=str(e))
            try:
                await asyncio.wait_for(stop.wait(), timeout=self._poll)
            except TimeoutError:
                pass
