"""Delivers notices from the outbox: to the in-app inbox and by e-mail (SMTP).

The outbox row is written in the same transaction as its ledger row, so a
notice is never lost. Delivery claims one row at a time (FOR UPDATE SKIP
LOCKED, so several senders can run), writes the inbox row, sends the e-mail
and marks it sent in that transaction. What is recorded as sent is never sent
again. If recording it fails after the relay took the message (the database
went away), the sender remembers that and next time records it without sending
again; only a crash of the sender process between the SMTP hand-off and the
commit resends the same message, with the same Message-ID, derived from the
notice key, so the receiver (or an operator) can recognise the duplicate.
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
LIMIT 1
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

    def __init__(
        self, pool: asyncpg.Pool, smtp: SmtpConfig, poll_seconds: float = 2.0, max_backoff: timedelta = MAX_BACKOFF
    ) -> None:
        self._pool = pool
        self._smtp = smtp
        self._poll = poll_seconds
        self._max_backoff = max_backoff  # longest wait between two attempts at an unreachable relay
        self._handed_over: set[str] = set()  # e-mailed, but the commit saying so failed

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
        async with self._pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(_CLAIM)
            if row is None:
                return False
            key = row["notice_key"]
            await conn.execute(
                """INSERT INTO inbox (notice_key, unit, case_no, subject, body)
                   VALUES ($1, $2, $3, $4, $5) ON CONFLICT (notice_key) DO NOTHING""",
                key, row["recipient_unit"], row["case_no"], row["subject"], row["body"],
            )
            wants_email = self._smtp.enabled and row["email"] and row["email_sent_at"] is None
            if wants_email and key in self._handed_over:
                log.info("notice_email_already_handed_over", notice_key=key)
            elif wants_email:
                try:
                    await self._send(self.build_email(key, row["email"], row["subject"], row["body"]))
                except (TimeoutError, aiosmtplib.SMTPException, OSError) as e:
                    backoff = min(timedelta(seconds=5 * 2 ** min(row["attempts"], 12)), self._max_backoff)
                    await conn.execute(
                        """UPDATE outbox SET attempts = attempts + 1, last_error = $2,
                               next_attempt_at = clock_timestamp() + $3,
                               inbox_at = coalesce(inbox_at, clock_timestamp())
                           WHERE notice_key = $1""",
                        key, f"{type(e).__name__}: {e}", backoff,
                    )
                    log.warning("notice_email_failed", notice_key=key, error=str(e), retry_in=str(backoff))
                    return True
                self._handed_over.add(key)
            await conn.execute(
                """UPDATE outbox SET status = 'DELIVERED', attempts = attempts + 1,
                       delivered_at = clock_timestamp(), last_error = NULL,
                       inbox_at = coalesce(inbox_at, clock_timestamp()),
                       email_to = CASE WHEN $2 THEN $3 ELSE email_to END,
                       email_sent_at = CASE WHEN $2 THEN clock_timestamp() ELSE email_sent_at END
                   WHERE notice_key = $1""",
                key, bool(wants_email), row["email"],
            )
        self._handed_over.discard(key)  # committed: the row itself now says it was sent
        log.info("notice_delivered", notice_key=key, email=bool(wants_email))
        return True

    async def drain(self, limit: int = 10_000) -> int:
        """Deliver every due notice (up to `limit`); returns how many were handled."""
        n = 0
        while n < limit and await self.deliver_one():
            n += 1
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
