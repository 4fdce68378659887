"""Signed action requests: the trust boundary between the console and Temporal.

Anyone who can reach the Temporal frontend can send the `act` Update with any actor.
When a signing key is configured (ACTION_SIGNING_KEY), the console signs every
request with HMAC-SHA256 over the case number, the action, the actor, the request id
and the rest of the payload; the worker's validator refuses an unsigned or badly
signed request before anything is recorded.

Several keys may be configured, comma-separated: the first signs, every one verifies
(key rotation: add the new key second, roll the workers, then swap the order on the
console). Pure and deterministic: no I/O, stdlib only.
"""

from __future__ import annotations

import hashlib
import hmac
import json

from domain.errors import NotAuthorizedError
from domain.model import ActionRequest

SIGNATURE_PREFIX = "v1="


def parse_keys(raw: str | None) -> tuple[bytes, ...]:
    """Keys from the ACTION_SIGNING_KEY value (comma-separated; blanks ignored)."""
    return tuple(k.strip().encode() for k in (raw or "").split(",") if k.strip())


def signed_text(case_no: str, req: ActionRequest) -> bytes:
    """The canonical text a signature covers: case, action, actor, request id and payload."""
    body = req.model_dump(mode="json", exclude={"signature"}, exclude_defaults=True)
    body["action"] = req.action.value
    body["actor"] = req.actor.model_dump(mode="json")
    body["request_id"] = req.request_id
    body["case_no"] = case_no
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def sign(case_no: str, req: ActionRequest, key: bytes) -> str:
    return SIGNATURE_PREFIX + hmac.new(key, signed_text(case_no, req), hashlib.sha256).hexdigest()


def signed(case_no: str, req: ActionRequest, keys: tuple[bytes, ...]) -> ActionRequest:
    """The request carrying a signature by the first key (unchanged when no key is configured)."""
    if not keys:
        return req
    return req.model_copy(update={"signature": sign(case_no, req, keys[0])})


def verify(case_no: str, req: ActionRequest, keys: tuple[bytes, ...]) -> None:
    """Refuse an unsigned or badly signed request when keys are configured.

    Raises:
        NotAuthorizedError: naming what is wrong (never the expected signature).
    """
    if not keys:
        return
    if not req.signature:
        raise NotAuthorizedError(
            f"request {req.request_id} is not signed: this deployment accepts actions only through "
            "the console's API or as signed Updates (ACTION_SIGNING_KEY)"
        )
    for key in keys:
        if hmac.compare_digest(req.signature.encode(), sign(case_no, req, key).encode()):
            return
    raise NotAuthorizedError(
        f"request {req.request_id} carries a bad signature (wrong key, or the actor, action, case or "
        "payload was changed after signing)"
    )
