"""Delivers notices from the outbox: to the in-app inbox, by e-mail (SMTP) and by HTTP webhook.

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

The webhook channel (issue 13; unit_webhook, migration 015) works the same way beside e-mail:
one POST per notice in its own transaction, recorded on the row's webhook_* columns, with the
Idempotency-Key header derived from the notice key (a crash between the receiver's 2xx and the
commit re-posts that one notice with the same key and the same signed body). No answer, a 5xx,
408, 425 or 429 is retried with backoff (doubling from 5 s, capped like e-mail); any other
answer (a 4xx) is permanent: webhook_failed_at, webhook_status and webhook_error say so, the
notice is not posted again (`casectl admin webhook retry` re-arms it) and the failure is counted
in the metrics. Each channel backs off on its own columns (email_next_at, webhook_next_at);
next_attempt_at is the earliest of the open channels, and a notice is DELIVERED when no channel
is open (sent, refused for good, or not configured for its unit).
"""

from __future__ import annotations

import asyncio
import hashlib
from datetime import timedelta
from email.message import EmailMessage

import aiosmtplib
import asyncpg
import structlog

from activities.notice_webhook import WebhookPoster
from domain.notice_channels import Outcome, WebhookNotice, backoff, redact_url

log = structlog.get_logger(__name__)

MAX_BACKOFF = timedelta(hours=1)

_CLAIM = """
SELECT o.notice_key, o.case_no, o.recipient_unit, o.subject, o.body, o.attempts,
       o.email_sent_at, o.inbox_at, u.email,
       (w.url IS NOT NULL AND o.webhook_sent_at IS NULL AND o.webhook_failed_at IS NULL) AS hook
FROM outbox o LEFT JOIN unit_directory u ON u.unit = o.recipient_unit
     LEFT JOIN unit_webhook w ON w.unit = o.recipient_unit AND w.enabled
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
  AND coalesce(o.email_next_at, '-infinity') <= clock_timestamp()
FOR UPDATE OF o SKIP LOCKED
"""

# One notice's row for its webhook: pending, webhook neither sent nor refused for good, due.
_CLAIM_HOOK = """
SELECT o.notice_key, o.case_no, o.seq, o.recipient_unit, o.recipient_role, o.subject, o.body,
       o.created_at, o.webhook_attempts, w.url, w.secret, w.timeout_seconds
FROM outbox o LEFT JOIN unit_webhook w ON w.unit = o.recipient_unit AND w.enabled
WHERE o.notice_key = $1 AND o.status = 'PENDING' AND o.webhook_sent_at IS NULL
  AND o.webhook_failed_at IS NULL AND coalesce(o.webhook_next_at, '-infinity') <= clock_timestamp()
FOR UPDATE OF o SKIP LOCKED
"""

# After a channel step, on the row that step holds: DELIVERED when no channel is open any more
# (sent, refused for good, or not configured), else due again when its earliest open channel is.
_SETTLE = """
WITH s AS (
  SELECT o.notice_key,
         ($2 AND u.email IS NOT NULL AND o.email_sent_at IS NULL) AS mail,
         (w.url IS NOT NULL AND o.webhook_sent_at IS NULL AND o.webhook_failed_at IS NULL) AS hook
  FROM outbox o LEFT JOIN unit_directory u ON u.unit = o.recipient_unit
       LEFT JOIN unit_webhook w ON w.unit = o.recipient_unit AND w.enabled
  WHERE o.notice_key = $1)
UPDATE outbox o SET
  status = CASE WHEN s.mail OR s.hook THEN 'PENDING' ELSE 'DELIVERED' END,
  delivered_at = CASE WHEN s.mail OR s.hook THEN NULL ELSE coalesce(o.delivered_at, clock_timestamp()) END,
  next_attempt_at = CASE WHEN s.mail OR s.hook
      THEN least(CASE WHEN s.mail THEN coalesce(o.email_next_at, clock_timestamp()) END,
                 CASE WHEN s.hook THEN coalesce(o.webhook_next_at, clock_timestamp()) END)
      ELSE o.next_attempt_at END
FROM s WHERE o.notice_key = s.notice_key
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
        self._posted: set[str] = set()  # the same for webhooks answered 2xx
        self._poster: WebhookPoster | None = None  # made at the first webhook

    async def aclose(self) -> None:
        """Close the webhook HTTP client, if one was made (`run()` does it when stopped)."""
        if self._poster is not None:
            await self._poster.aclose()
            self._poster = None

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
            mails = [bool(self._smtp.enabled and r["email"] and r["email_sent_at"] is None) for r in rows]
            hooks = [bool(r["hook"]) for r in rows]
            # Every row is in the inbox now; those without an e-mail or webhook to send are delivered.
            # A row that is due while none of its open channels is (an operator moved next_attempt_at
            # forward) has every open channel made due now.
            await conn.execute(
                """UPDATE outbox o SET inbox_at = coalesce(o.inbox_at, clock_timestamp()),
                       status = CASE WHEN d.mail OR d.hook THEN o.status ELSE 'DELIVERED' END,
                       attempts = CASE WHEN d.mail OR d.hook THEN o.attempts ELSE o.attempts + 1 END,
                       delivered_at = CASE WHEN d.mail OR d.hook THEN o.delivered_at ELSE clock_timestamp() END,
                       last_error = CASE WHEN d.mail OR d.hook THEN o.last_error ELSE NULL END,
                       email_next_at = CASE WHEN d.forced THEN NULL ELSE o.email_next_at END,
                       webhook_next_at = CASE WHEN d.forced THEN NULL ELSE o.webhook_next_at END
                   FROM (SELECT d.key, d.mail, d.hook, (d.mail OR d.hook)
                            AND NOT (d.mail AND coalesce(x.email_next_at, '-infinity') <= clock_timestamp())
                            AND NOT (d.hook AND coalesce(x.webhook_next_at, '-infinity') <= clock_timestamp())
                            AS forced
                         FROM unnest($1::text[], $2::bool[], $3::bool[]) AS d(key, mail, hook)
                         JOIN outbox x ON x.notice_key = d.key) d
                   WHERE o.notice_key = d.key""",
                [r["notice_key"] for r in rows], mails, hooks,
            )
        sent = posted = 0
        for r, mail, hook in zip(rows, mails, hooks, strict=True):  # one at a time: the window stays one
            if mail:
                sent += await self._email_one(r["notice_key"])
            if hook:
                posted += await self._webhook_one(r["notice_key"])
        log.info("notices_delivered", count=len(rows), emails=sent, webhooks=posted,
                 first_key=rows[0]["notice_key"])
        return len(rows)

    async def _email_one(self, key: str) -> bool:
        """E-mail one notice in its own transaction: claim its row (SKIP LOCKED), check that it is
        still due and not yet e-mailed, send, record sent (or back off) and commit. True if sent."""
        async with self._pool.acquire() as conn, conn.transaction():
            r = await conn.fetchrow(_CLAIM_ONE, key)
            if r is None:
                return False  # another sender has it or did it, or it is backed off
            if not (self._smtp.enabled and r["email"]):  # the address went away meanwhile
                await conn.execute("UPDATE outbox SET attempts = attempts + 1, last_error = NULL "
                                   "WHERE notice_key = $1", key)
                await conn.execute(_SETTLE, key, self._smtp.enabled)
                return False
            if key not in self._handed_over:  # else the relay has it already; only the commit is missing
                try:
                    await self._send(self.build_email(key, r["email"], r["subject"], r["body"]))
                except (TimeoutError, aiosmtplib.SMTPException, OSError) as e:
                    err = f"{type(e).__name__}: {e}"
                    backoff = min(timedelta(seconds=5 * 2 ** min(r["attempts"], 12)), self._max_backoff)
                    await conn.execute(
                        """UPDATE outbox SET attempts = attempts + 1, last_error = $2,
                               email_next_at = clock_timestamp() + $3::interval
                           WHERE notice_key = $1""", key, err, backoff)
                    await conn.execute(_SETTLE, key, self._smtp.enabled)
                    log.warning("notice_email_failed", notice_key=key, error=err, retry_in=str(backoff))
                    return False
                self._handed_over.add(key)
            await conn.execute(
                """UPDATE outbox SET attempts = attempts + 1, last_error = NULL,
                       email_to = $2, email_sent_at = clock_timestamp()
                   WHERE notice_key = $1""", key, r["email"])
            await conn.execute(_SETTLE, key, self._smtp.enabled)
        self._handed_over.discard(key)  # committed
        return True

    async def _webhook_one(self, key: str) -> bool:
        """Post one notice to its unit's webhook in its own transaction: claim the row (SKIP
        LOCKED), post, record sent / backed off / refused for good, settle, commit. True if sent."""
        async with self._pool.acquire() as conn, conn.transaction():
            r = await conn.fetchrow(_CLAIM_HOOK, key)
            if r is None:
                return False  # another sender has it or did it, or it is backed off
            if r["url"] is None:  # the webhook was removed or disabled meanwhile
                await conn.execute(_SETTLE, key, self._smtp.enabled)
                return False
            to, status = redact_url(r["url"]), None
            if key not in self._posted:  # else the receiver has it already; only the commit is missing
                if self._poster is None:
                    self._poster = WebhookPoster()
                notice = WebhookNotice(r["notice_key"], r["case_no"], r["seq"], r["recipient_unit"],
                                       r["recipient_role"], r["subject"], r["body"], r["created_at"])
                res = await self._poster.post(notice, r["url"], r["secret"], float(r["timeout_seconds"]))
                if res.outcome is not Outcome.SENT:
                    attempts = r["webhook_attempts"] + 1
                    if res.outcome is Outcome.REFUSED:
                        await conn.execute(
                            """UPDATE outbox SET webhook_attempts = $2, webhook_status = $3, webhook_error = $4,
                                   webhook_to = $5, webhook_failed_at = clock_timestamp() WHERE notice_key = $1""",
                            key, attempts, res.status, res.error, to)
                        log.error("notice_webhook_refused", notice_key=key, status=res.status, error=res.error,
                                  to=to, unit=r["recipient_unit"])
                    else:
                        wait = backoff(attempts, self._max_backoff, res.retry_after)
                        await conn.execute(
                            """UPDATE outbox SET webhook_attempts = $2, webhook_status = $3, webhook_error = $4,
                                   webhook_to = $5, webhook_next_at = clock_timestamp() + $6::interval
                               WHERE notice_key = $1""", key, attempts, res.status, res.error, to, wait)
                        log.warning("notice_webhook_failed", notice_key=key, status=res.status, error=res.error,
                                    to=to, retry_in=str(wait))
                    await conn.execute(_SETTLE, key, self._smtp.enabled)
                    return False
                status = res.status
                self._posted.add(key)
            await conn.execute(
                """UPDATE outbox SET webhook_attempts = webhook_attempts + 1, webhook_status = coalesce($3::int, webhook_status),
                       webhook_error = NULL, webhook_to = $2, webhook_sent_at = clock_timestamp()
                   WHERE notice_key = $1""", key, to, status)
            await conn.execute(_SETTLE, key, self._smtp.enabled)
        self._posted.discard(key)  # committed
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
        try:
            await self._poll_until(stop)
        finally:
            await self.aclose()

    async def _poll_until(self, stop: asyncio.Event) -> None:
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
