"""How the case workflow calls its activities: timeouts and retries (shared by its modules)."""

from __future__ import annotations

from datetime import timedelta

from temporalio.common import RetryPolicy

ACTIVITY_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=1),
    non_retryable_error_types=["InvalidFilingError", "DeadlineParseError"],
)
ACTIVITY_TIMEOUT = timedelta(seconds=30)
# The side-table write of a block is best effort: the block is visible without it (search
# attribute, query), and the database may be what is failing.
SIDE_TABLE_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_attempts=5)
