"""Delivers notices from the outbox: to the in-app inbox and by e-mail (SMTP).

The outbox row is written in the same transaction as its ledger row, so a
notice is never lost. Delivery claims a batch of due rows (up to
NOTICE_BATCH_SIZE, FOR UPDATE SKIP LOCKED, so several senders can run) and
writes their inbox rows in one transaction. The e-mails then go ONE AT A TIME,
each in its own short transaction (claim the row FOR UPDATE SKIP LOCKED, check
it is not yet e-mailed, send, mark sent or backed off, commit). What is
recorded as sent is never sent again; a crash between the SMTP hand-off and
that commit resends at most that one message, with the same Message-ID
(derived from the notice key), so the receiver (or an operator) can recognise
the duplicate.
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

_CLAIM = """
SELECT o.notice_key, o.case_no, o.recipient_unit, o.subject, o.body, o.attempts,
       o.email_sent_at, o.inbox_at, u.email
FROM outbox o LEFT JOIN unit_directory u ON u.unit = o.recipient_unit
WHERE o.status = 'PENDING' AND o.next_attempt_at <= clock_timestamp()
ORDER BY o.next_attempt_at
LIMIT $1
FOR UPDATE OF o SKIP LOCKED
"""

# One notice's row for its e-mail: still pending, due and not e-mailed, and not held by another sender.
_CLAIM_ONE = """
SELECT o.subject, o.body, o.attempts, u.email
FROM outbox o LEFT JOIN unit_directory u ON u.unit = o.recipient_unit
WHERE o.notice_key = $1 AND o.status = 'PENDING' AND o.email_sent_at IS NULL
  AND o.next_attempt_at <= clock_timestamp()
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
                 batch_size: int = 100, max_backoff: timedelta = MAX_BACKOFF) -> None:
        self._pool = pool
        self._smtp = smtp
        self._poll = poll_seconds
        self._batch = max(1, batch_size)
        self._max_backoff = max_backoff  # longest wait between two attempts at an unreachable relay
        # E-mailed, but the commit saying so failed (the database went away): not sent again.
        self._handed_over: set[str] = set()

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
        """Deliver up to `limit` due notices (default: the batch size); 0 when nothing was due.

        Returns how many were claimed. One transaction claims the rows (FOR UPDATE SKIP LOCKED),
        writes all their inbox rows and marks the ones that need no e-mail delivered: a crash
        before its commit delivers nothing and the rows are claimed again. The e-mails are then
        sent ONE AT A TIME, each in its own short transaction (`_email_one`), so a kill loses at
        most the one e-mail in flight, which goes again with the same Message-ID.
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
            # Every row is in the inbox now; those without an e-mail to send are delivered.
            await conn.execute(
                """UPDATE outbox o SET inbox_at = coalesce(o.inbox_at, clock_timestamp()),
                       status = CASE WHEN d.mail THEN o.status ELSE 'DELIVERED' END,
                       attempts = CASE WHEN d.mail THEN o.attempts ELSE o.attempts + 1 END,
                       delivered_at = CASE WHEN d.mail THEN o.delivered_at ELSE clock_timestamp() END,
                       last_error = CASE WHEN d.mail THEN o.last_error ELSE NULL END
                   FROM unnest($1::text[], $2::bool[]) AS d(key, mail)
                   WHERE o.notice_key = d.key""",
                [r["notice_key"] for r in rows], wants,
            )
        emails = [r["notice_key"] for r, w in zip(rows, wants, strict=True) if w]
        sent = 0
        for key in emails:  # one at a time: the at-least-once window stays one e-mail
            sent += await self._email_one(key)
        log.info("notices_delivered", count=len(rows), emails=sent, first_key=rows[0]["notice_key"])
        return len(rows)

    async def _email_one(self, key: str) -> bool:
        """E-mail one notice in its own transaction: claim its row (SKIP LOCKED), check that it is
        still due and not yet e-mailed, send, record sent (or back off) and commit. True if sent."""
        async with self._pool.acquire() as conn, conn.transaction():
            r = await conn.fetchrow(_CLAIM_ONE, key)
            if r is None:
                return False  # another sender has it or did it, or it is backed off
            if not (self._smtp.enabled and r["email"]):  # the address went away meanwhile
                await conn.execute(
                    """UPDATE outbox SET status = 'DELIVERED', attempts = attempts + 1, last_error = NULL,
                           delivered_at = clock_timestamp() WHERE notice_key = $1""", key)
                return False
            if key not in self._handed_over:  # else the relay has it already; only the commit is missing
                try:
                    await self._send(self.build_email(key, r["email"], r["subject"], r["body"]))
                except (TimeoutError, aiosmtplib.SMTPException, OSError) as e:
                    err = f"{type(e).__name__}: {e}"
                    backoff = min(timedelta(seconds=5 * 2 ** min(r["attempts"], 12)), self._max_backoff)
                    await conn.execute(
                        """UPDATE outbox SET attempts = attempts + 1, last_error = $2,
                               next_attempt_at = clock_timestamp() + $3::interval
                           WHERE notice_key = $1""", key, err, backoff)
                    log.warning("notice_email_failed", notice_key=key, error=err, retry_in=str(backoff))
                    return False
                self._handed_over.add(key)
            await conn.execute(
                """UPDATE outbox SET status = 'DELIVERED', attempts = attempts + 1, last_error = NULL,
                       delivered_at = clock_timestamp(), email_to = $2, email_sent_at = clock_timestamp()
                   WHERE notice_key = $1""", key, r["email"])
        self._handed_over.discard(key)  # committed
        return True

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
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError,
                    asyncpg.exceptions.InternalClientError) as e:  # a connection broken mid-operation
                log.warning("notice_sender_error", error=str(e))
            try:
                await asyncio.wait_for(stop.wait(), timeout=self._poll)
            except TimeoutError:
                pass
