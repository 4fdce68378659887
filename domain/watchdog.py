"""When a case should last have woken, from its projection (the escalation watchdog, issue 9).

The case workflow wakes itself (durable timers). The watchdog checks from the outside, from the
PostgreSQL projection, that it did: the wake-up time computed here mirrors `decide.next_wakeup`
(next rung of the escalation schedule, the due date of a deadline without a ladder, the end of
公示, archiving after the look-back window). A wake-up that passed by more than a grace period with
no ledger row written at or after it was missed. Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from domain.enums import Stage, rung_level
from domain.model import ComputedDeadline


@dataclass(frozen=True)
class Wakeup:
    at: datetime
    what: str  # e.g. "RUNG WARNING_LETTER", "OVERDUE_REMINDER", "POSTING_END", "ARCHIVE"


def _dt(value: Any) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value))


def expected_wakeup(
    stage: Stage,
    deadline: ComputedDeadline | None,
    escalation_level: int,
    suspended: bool,
    detail: dict[str, Any],
) -> Wakeup | None:
    """The next time the case's clock needs it, as the projection shows it (None: only a handler
    action can move it)."""
    if stage is Stage.ARCHIVED:
        return None
    if stage is Stage.CLOSED:
        at = _dt(detail.get("archive_at"))
        return Wakeup(at, "ARCHIVE") if at else None
    if suspended:
        return None
    candidates: list[Wakeup] = []
    posting = detail.get("posting") or {}
    if (ends := _dt(posting.get("ends_at"))) is not None:
        candidates.append(Wakeup(ends, "POSTING_END"))
    if deadline is not None:
        if deadline.escalation_schedule:
            nxt = next((r for r in deadline.escalation_schedule if rung_level(r.rung) > escalation_level), None)
            if nxt is not None:
                candidates.append(Wakeup(nxt.fire_at, f"RUNG {nxt.rung.value}"))
        else:
            candidates.append(Wakeup(deadline.due_at, "OVERDUE_REMINDER"))
    return min(candidates, key=lambda w: w.at) if candidates else None


def missed_wakeup(
    wake: Wakeup | None, last_ledger_at: datetime | None, now: datetime, grace: timedelta
) -> timedelta | None:
    """How late a missed wake-up is (None when it is not yet due or a ledger row shows it happened)."""
    if wake is None or wake.at + grace > now:
        return None
    if last_ledger_at is not None and last_ledger_at >= wake.at:
        return None
    return now - wake.at
