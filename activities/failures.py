"""Which activity failures retrying can fix, and which it cannot (issue 9).

Before, every failure was retried for ever: a reason containing a NUL byte (PostgreSQL refuses
it) made `record_case_events` fail on every attempt and the case stop silently. Now:

- transient (connection lost, timeouts, server shutting down, serialization/deadlock aborts,
  too many connections): re-raised, retried with backoff for as long as it takes;
- permanent (the database refuses the data or a constraint: SQLSTATE classes 22, 23, 42, 54;
  pydantic validation, ValueError/TypeError/KeyError/UnicodeError): raised as a non-retryable
  `ApplicationError(type=PermanentDataError)`; the workflow then blocks the case visibly
  (domain/blocking.py);
- anything else: retried, and after `UNKNOWN_MAX_ATTEMPTS` attempts treated as permanent
  (`UnclassifiedActivityError`), so that no error can keep a case stuck unseen.
"""

from __future__ import annotations

import asyncio
import functools
import os
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import asyncpg
import pydantic
import structlog
from temporalio import activity
from temporalio.exceptions import ApplicationError

from domain.blocking import PERMANENT_DATA_ERROR, UNCLASSIFIED_ERROR, clean_message

log = structlog.get_logger(__name__)

UNKNOWN_MAX_ATTEMPTS = int(os.environ.get("ACTIVITY_UNKNOWN_MAX_ATTEMPTS", "10"))

TRANSIENT = "transient"
PERMANENT = "permanent"
UNKNOWN = "unknown"

_TRANSIENT_TYPES: tuple[type[BaseException], ...] = (
    OSError,  # ConnectionError, ConnectionResetError, socket errors
    TimeoutError,
    asyncio.TimeoutError,
    asyncpg.PostgresConnectionError,  # class 08
    asyncpg.InterfaceError,  # connection closed / pool closing
    asyncpg.exceptions.TransactionRollbackError,  # class 40: serialization failure, deadlock
    asyncpg.exceptions.InsufficientResourcesError,  # class 53: disk full, too many connections
    asyncpg.exceptions.OperatorInterventionError,  # class 57: admin shutdown, cannot connect now
    asyncpg.exceptions.CannotConnectNowError,
    asyncpg.exceptions.InternalClientError,  # a connection broken mid-operation (server restarting)
)
_PERMANENT_TYPES: tuple[type[BaseException], ...] = (
    asyncpg.exceptions.DataError,  # class 22: invalid byte sequence (NUL), value too long, ...
    asyncpg.exceptions.IntegrityConstraintViolationError,  # class 23
    asyncpg.exceptions.SyntaxOrAccessError,  # class 42: a bug retrying cannot fix
    asyncpg.exceptions.ProgramLimitExceededError,  # class 54: row/index too large
    pydantic.ValidationError,
    UnicodeError,
    ValueError,
    TypeError,
    KeyError,
)


def classify(exc: BaseException) -> str:
    """TRANSIENT, PERMANENT or UNKNOWN for an exception an activity raised."""
    if isinstance(exc, _PERMANENT_TYPES):  # before OSError: no overlap today, but data first
        return PERMANENT
    if isinstance(exc, _TRANSIENT_TYPES):
        return TRANSIENT
    return UNKNOWN


F = TypeVar("F", bound=Callable[..., Awaitable[Any]])


def classified(fn: F) -> F:
    """Wrap an activity: permanent failures become non-retryable ApplicationErrors with a type."""

    @functools.wraps(fn)
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return await fn(*args, **kwargs)
        except ApplicationError:
            raise
        except Exception as e:
            kind = classify(e)
            info = activity.info()
            if kind == TRANSIENT or (kind == UNKNOWN and info.attempt < UNKNOWN_MAX_ATTEMPTS):
                log.warning("activity_retrying", activity=info.activity_type, attempt=info.attempt,
                            kind=kind, error=clean_message(f"{type(e).__name__}: {e}", 300))
                raise
            error_type = PERMANENT_DATA_ERROR if kind == PERMANENT else UNCLASSIFIED_ERROR
            message = clean_message(f"{type(e).__name__}: {e}")
            log.error("activity_failed_permanently", activity=info.activity_type, attempt=info.attempt,
                      error_type=error_type, error=message, workflow_id=info.workflow_id)
            raise ApplicationError(message, type=error_type, non_retryable=True) from e

    return wrapper  # type: ignore[return-value]
