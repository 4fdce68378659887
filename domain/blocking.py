"""Blocked cases (issue 9): a step the engine cannot record, and the office's UNBLOCK.

When an activity fails in a way retrying cannot fix (the database refuses the data, a constraint
is violated, the input does not validate), the case workflow stops retrying, keeps the decision it
could not record, and the case is BLOCKED: visible in the console's list for the office with the
error, in the `CaseBlocked` search attribute and in the `case_block` side table. Nothing of the
held decision is recorded. The office unblocks it once the cause is fixed: RETRY records the held
decision again; DISCARD drops it (the case stays as last recorded; a handler action is void and
its sender may send it again, corrected).

Pure: the models and the authorization rule only.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, Field

from domain.enums import Role
from domain.errors import CaseError, InvalidTransitionError, MissingInputError, NotAuthorizedError
from domain.model import Actor
from domain.text import Reason, Ref

# ApplicationError types the activities raise for failures retrying cannot fix.
PERMANENT_DATA_ERROR = "PermanentDataError"  # the database refused the data or a constraint
UNCLASSIFIED_ERROR = "UnclassifiedActivityError"  # an unknown error that kept failing
# The ledger holds another row where the clock's decision goes (record_clock_events, issue 9).
LEDGER_DIVERGENCE = "LedgerDivergenceError"


class CaseBlockedError(CaseError):
    """The case is blocked on a step it cannot record; the office must unblock it first."""


class UnblockMode(StrEnum):
    RETRY = "RETRY"  # the cause is fixed: record the held decision again
    DISCARD = "DISCARD"  # drop the held decision


UNBLOCK_MODE_LABELS_ZH = {UnblockMode.RETRY: "重试 Retry", UnblockMode.DISCARD: "放弃该操作 Discard"}


class BlockedStep(BaseModel):
    """Why a case is blocked: the step it could not record and the error."""

    at: datetime
    activity: str
    error_type: str
    message: str
    origin: str  # "CLOCK", "FILING" or the handler action, e.g. "TRANSFER by office-zhang"
    request_id: str | None = None
    block_no: int = 1  # per workflow run: the side-table key with the run id


class UnblockRequest(BaseModel):
    """The office's UNBLOCK of a blocked case."""

    actor: Actor
    request_id: Ref = Field(min_length=1)
    reason: Reason = ""  # checked like an action's reason: no NUL or control characters, bounded
    mode: UnblockMode = UnblockMode.RETRY


def clean_message(text: str, limit: int = 2000) -> str:
    """An error message that any store and page accept: control characters (NUL included) shown
    as \\xNN escapes, length bounded."""
    out = "".join(c if (c >= " " or c in "\n\t") and c != "\x7f" else f"\\x{ord(c):02x}" for c in text)
    return out if len(out) <= limit else out[: limit - 1] + "…"


def authorize_unblock(blocked: BlockedStep | None, req: UnblockRequest) -> None:
    """Only the rectification office (整改办) unblocks, with a reason, a case that is blocked.

    Raises:
        CaseError: a leaf error naming what is wrong.
    """
    if req.actor.role is not Role.RECTIFICATION_OFFICE:
        raise NotAuthorizedError(f"role {req.actor.role} may not UNBLOCK (allowed: {Role.RECTIFICATION_OFFICE})")
    if blocked is None:
        raise InvalidTransitionError("the case is not blocked")
    if not req.reason.strip():
        raise MissingInputError("UNBLOCK needs: reason (what was fixed)")
