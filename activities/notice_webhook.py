"""Posts one notice to a unit's webhook (an SMS gateway, a government messaging robot).

The pure part (body, signature, idempotency key, what an answer means) is domain/notice_channels.py;
this module only does the HTTP request, with the unit's timeout and without following redirects.
The notice sender (activities/notices.py) decides when, and records the outcome.
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from domain.notice_channels import Outcome, WebhookNotice, body_bytes, classify, error_text, headers


@dataclass(frozen=True)
class PostResult:
    outcome: Outcome
    status: int | None  # HTTP status, None when no answer came
    error: str  # empty when sent
    retry_after: float | None = None  # seconds, from a 429/503's Retry-After


def _retry_after(r: httpx.Response) -> float | None:
    raw = r.headers.get("Retry-After")
    try:
        return float(raw) if raw else None
    except ValueError:
        return None  # an HTTP date: the doubling backoff applies


class WebhookPoster:
    """One HTTP client (connection pool) for every webhook post of a sender."""

    def __init__(self) -> None:
        self._client = httpx.AsyncClient(follow_redirects=False, trust_env=False)

    async def post(self, notice: WebhookNotice, url: str, secret: str, timeout: float) -> PostResult:
        body = body_bytes(notice)
        try:
            r = await self._client.post(url, content=body, headers=headers(notice.notice_key, secret, body),
                                        timeout=httpx.Timeout(timeout))
        except (httpx.HTTPError, OSError) as e:  # refused, reset, timed out, bad URL
            return PostResult(Outcome.RETRY, None, error_text(None, f"{type(e).__name__}: {e}"))
        outcome = classify(r.status_code)
        if outcome is Outcome.SENT:
            return PostResult(outcome, r.status_code, "")
        return PostResult(outcome, r.status_code, error_text(r.status_code, r.text[:300]), _retry_after(r))

    async def aclose(self) -> None:
        await self._client.aclose()
