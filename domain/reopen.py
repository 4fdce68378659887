"""Reopening an archived case (issue 14): a linked new cycle, its history kept.

A CLOSED case is archived after `policy.lookback_window_days` and its workflow run completes.
A later look-back (回头看) finding must still be able to reopen it (000:301, :446): the office's
REOPEN then starts a new run of the same workflow id with the archived final state, and the new
run applies the REOPEN as its first act. The ledger goes on from the archived last row (same
case number, next seq, the hash chain continues) and the REOPEN row names the archived run it
continues (`previous_run_id`).

The rules are those of REOPEN on a CLOSED case (domain/lifecycle.py: who may reopen, the
finding and reason it needs, a new due date after today), checked here against the archived
state as it stood before archiving, so the client can refuse before anything is started, and
the new run checks again before it records. Pure: no I/O, no clock.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel

from domain import decide as d
from domain.enums import Action, LookbackFinding, Stage
from domain.errors import InvalidTransitionError, MissingInputError
from domain.lifecycle import allowed_actions
from domain.model import ActionRequest, Actor, CaseState
from domain.text import Ref

REOPENED_FROM_ARCHIVE = "reopened_from_archive"  # flag in the REOPEN row's data


class ArchivedReopen(BaseModel):
    """What a new run of an archived case starts with besides its state: the REOPEN to apply
    and the link to the run it continues."""

    request: ActionRequest
    previous_run_id: Ref
    state_source: str = ""  # where the archived state was read: "snapshot" | "query"


def parse_finding(value: str) -> LookbackFinding:
    """The look-back finding named by `value`; a clear error naming the allowed values."""
    allowed = ", ".join(f.value for f in LookbackFinding)
    if not value or not str(value).strip():
        raise MissingInputError(f"REOPEN needs: lookback_finding (one of: {allowed})")
    try:
        return LookbackFinding(value)
    except ValueError:
        raise MissingInputError(f"lookback_finding {value!r} is not one of: {allowed}") from None


def _as_closed(state: CaseState) -> CaseState:
    """The archived case as it stood in CLOSED, the stage REOPEN's rule is written for."""
    if state.stage is not Stage.ARCHIVED:
        raise InvalidTransitionError(f"case {state.case_no} is in stage {state.stage}, not ARCHIVED")
    return state.model_copy(update={"stage": Stage.CLOSED})


def validate_archived_reopen(state: CaseState, req: ActionRequest, now: datetime) -> None:
    """Every check the REOPEN of an archived case must pass before anything is started.

    Raises:
        CaseError: not ARCHIVED, not a REOPEN, or what `decide.validate` refuses for REOPEN
        (authorization first: only the office reopens).
    """
    if req.action is not Action.REOPEN:
        raise InvalidTransitionError(f"an archived case can only be reopened (REOPEN), not {req.action}")
    closed = _as_closed(state)
    if req.expected_stage is Stage.ARCHIVED:
        req = req.model_copy(update={"expected_stage": None})
    d.validate(closed, req, now)


def reopen_allowed(state: CaseState, actor: Actor) -> bool:
    """Whether `actor` may reopen this archived case (for the console's button)."""
    return state.stage is Stage.ARCHIVED and Action.REOPEN in allowed_actions(_as_closed(state), actor)


def decide_archived_reopen(state: CaseState, reopen: ArchivedReopen, now: datetime) -> d.Decision:
    """The REOPEN of an archived case: a new cycle in RECTIFYING, linked to the archived run.

    The REOPEN row reads ARCHIVED → RECTIFYING and carries `previous_run_id` and the time the
    case was archived; everything else is what REOPEN does on a CLOSED case.

    Raises:
        CaseError: as `validate_archived_reopen`.
    """
    validate_archived_reopen(state, reopen.request, now)
    req = reopen.request
    if req.expected_stage is Stage.ARCHIVED:
        req = req.model_copy(update={"expected_stage": None})
    archived_at = _archived_at(state)
    decision = d.decide(_as_closed(state), req, now)
    link: dict[str, Any] = {
        REOPENED_FROM_ARCHIVE: True,
        "previous_run_id": reopen.previous_run_id,
        "archived_at": archived_at.isoformat() if archived_at else None,
    }
    entries = []
    for e in decision.entries:
        if e.event == Action.REOPEN.value and e.request_id == req.request_id:
            e = e.model_copy(update={"from_stage": Stage.ARCHIVED, "data": {**e.data, **link}})
        entries.append(e)
    s = decision.state
    s.timeline = [
        t.model_copy(update={"from_stage": Stage.ARCHIVED})
        if t.event == Action.REOPEN.value and t.seq in {e.seq for e in entries if e.event == Action.REOPEN.value}
        else t
        for t in s.timeline
    ]
    return decision.model_copy(update={"entries": entries, "state": s})


def _archived_at(state: CaseState) -> datetime | None:
    for t in reversed(state.timeline):
        if t.event == "ARCHIVED":
            return t.at
    return state.archive_at


__all__ = [
    "ArchivedReopen",
    "REOPENED_FROM_ARCHIVE",
    "decide_archived_reopen",
    "parse_finding",
    "reopen_allowed",
    "validate_archived_reopen",
]
