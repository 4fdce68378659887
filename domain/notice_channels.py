"""The HTTP webhook notice channel, the pure part: what is posted, how it is signed, and what an
answer means (retry, or give up and show it). No I/O; activities/notice_webhook.py posts.

A webhook request is a POST of a JSON body with the notice's fields (UTF-8, keys sorted, so every
retry of one notice posts the same bytes) and these headers:

* `Idempotency-Key`: `notice-<32 hex>`, derived from the notice key (the same digest as the
  e-mail's Message-ID), so a receiver recognises a retry of a notice it already has;
* `X-Notice-Signature`: `sha256=<hex>`, HMAC-SHA256 of the body bytes with the unit's secret;
* `X-Notice-Key-Digest`: the same digest alone; the notice key itself (it may hold Chinese unit
  names, which HTTP headers cannot carry) is in the body.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from domain.text import control_char

SIGNATURE_HEADER = "X-Notice-Signature"
IDEMPOTENCY_HEADER = "Idempotency-Key"
DIGEST_HEADER = "X-Notice-Key-Digest"
BODY_VERSION = 1
# Answers that mean "not now" rather than "never": request timeout, too early, too many requests.
RETRYABLE_4XX = frozenset({408, 425, 429})
MAX_ERROR_CHARS = 500


def key_digest(notice_key: str) -> str:
    """32 hex characters of the notice key's SHA-256 (as in the e-mail Message-ID)."""
    return hashlib.sha256(notice_key.encode()).hexdigest()[:32]


def idempotency_key(notice_key: str) -> str:
    return f"notice-{key_digest(notice_key)}"


@dataclass(frozen=True)
class WebhookNotice:
    """The fields of an outbox notice that a webhook receives."""

    notice_key: str
    case_no: str
    seq: int
    recipient_unit: str
    recipient_role: str
    subject: str
    body: str
    created_at: datetime

    def payload(self) -> dict[str, Any]:
        return {
            "version": BODY_VERSION,
            "notice_key": self.notice_key,
            "idempotency_key": idempotency_key(self.notice_key),
            "case_no": self.case_no,
            "seq": self.seq,
            "recipient_unit": self.recipient_unit,
            "recipient_role": self.recipient_role,
            "subject": self.subject,
            "body": self.body,
            "created_at": self.created_at.isoformat(),
        }


def body_bytes(notice: WebhookNotice) -> bytes:
    """The exact bytes posted (and signed): the same for every attempt at one notice."""
    return json.dumps(notice.payload(), ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()


def sign(secret: str, body: bytes) -> str:
    """The signature header's value: `sha256=` + hex HMAC-SHA256 of the body with the secret."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(secret: str, body: bytes, header: str) -> bool:
    """What a receiver does: constant-time comparison of the header with the expected signature."""
    return hmac.compare_digest(sign(secret, body), header or "")


def headers(notice_key: str, secret: str, body: bytes) -> dict[str, str]:
    return {
        "Content-Type": "application/json; charset=utf-8",
        IDEMPOTENCY_HEADER: idempotency_key(notice_key),
        DIGEST_HEADER: key_digest(notice_key),
        SIGNATURE_HEADER: sign(secret, body),
        "User-Agent": "case-engine-notices/1",
    }


def redact_url(url: str) -> str:
    """Scheme, host, port and path only: the query (often an access token) and any user info
    are left out of what the outbox records (auditors read the outbox)."""
    p = urlsplit(url)
    host = p.hostname or ""
    if p.port:
        host = f"{host}:{p.port}"
    return urlunsplit((p.scheme, host, p.path, "", ""))


class Outcome(StrEnum):
    SENT = "SENT"  # 2xx: delivered
    RETRY = "RETRY"  # no answer, 5xx, 408/425/429: try again after a backoff
    REFUSED = "REFUSED"  # any other answer (4xx, 3xx, 1xx): permanent, not retried, shown


def classify(status: int | None) -> Outcome:
    """What an HTTP answer means for the notice; `None` is no answer (refused connection, timeout)."""
    if status is None or status >= 500 or status in RETRYABLE_4XX:
        return Outcome.RETRY
    if 200 <= status < 300:
        return Outcome.SENT
    return Outcome.REFUSED  # a redirect is a misconfigured URL: a POST is not followed


def backoff(attempts: int, cap: timedelta, retry_after: float | None = None) -> timedelta:
    """Wait before the next attempt, after `attempts` failed ones (>= 1): 5 s doubling, at most
    `cap`; a receiver's Retry-After (seconds) is honoured up to the cap."""
    wait = timedelta(seconds=5 * 2 ** min(max(attempts - 1, 0), 12))
    if retry_after is not None and retry_after > 0:
        wait = max(wait, timedelta(seconds=retry_after))
    return min(wait, cap)


def error_text(status: int | None, detail: str) -> str:
    """One line for `webhook_error`: the status and the start of the answer or the exception."""
    head = f"HTTP {status}" if status is not None else "no answer"
    detail = " ".join((detail or "").split())
    return f"{head}: {detail}"[:MAX_ERROR_CHARS] if detail else head


MIN_SECRET_CHARS = 16
MAX_TIMEOUT_SECONDS = 120.0


def check_webhook(unit: str, url: str, secret: str, timeout: float) -> list[str]:
    """What is wrong with a unit's webhook settings (empty list: nothing). Mirrors the table's checks."""
    problems = []
    if not unit.strip():
        problems.append("unit (单位) is empty")
    for name, value in (("unit", unit), ("url", url), ("secret", secret)):
        if (bad := control_char(value, multiline=False)) is not None:
            problems.append(f"{name} holds control character U+{ord(bad[1]):04X} at position {bad[0]}")
    p = urlsplit(url)
    if p.scheme not in ("http", "https") or not p.hostname:
        problems.append(f"url {redact_url(url)!r}: use http:// or https:// with a host")
    if p.username or p.password:
        problems.append("url: put no user:password in it (the signature authenticates the sender)")
    if len(secret) < MIN_SECRET_CHARS:
        problems.append(f"secret: at least {MIN_SECRET_CHARS} characters (it keys the HMAC-SHA256 signature)")
    if not 0 < timeout <= MAX_TIMEOUT_SECONDS:
        problems.append(f"timeout: more than 0 and at most {MAX_TIMEOUT_SECONDS:g} seconds")
    return problems
