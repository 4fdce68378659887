"""What a decision produces, and the builder decisions use (split out of domain/decide.py).

`Decision` is a new case state plus the ledger entries (台账) and notices to record; `_Builder`
accumulates them against a copy-on-write working copy of the state. Pure: no I/O, no clock.
"""

from __future__ import annotations

import copy
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from domain.enums import STAGE_LABELS_ZH, Role, Stage, event_label_zh
from domain.model import Actor, CaseFiling, CaseState, DeadlineRequest, TimelineEntry
from domain.policy import Policy
from domain.visibility import notice_may_carry_reason


class LedgerEntry(BaseModel):
    """One row of the ledger (台账): written once, keyed by (case_no, seq)."""

    case_no: str
    seq: int
    event: str  # an Action name, or a system event (FILED, DEADLINE_SET, ESCALATED, ...)
    actor: Actor
    at: datetime
    from_stage: Stage | None = None
    to_stage: Stage | None = None
    reason: str = ""
    request_id: str | None = None
    data: dict[str, Any] = Field(default_factory=dict)


class Notice(BaseModel):
    """A notice to one unit; `key` makes delivery idempotent."""

    key: str
    case_no: str
    seq: int
    recipient_unit: str
    recipient_role: Role
    subject: str
    body: str


class Decision(BaseModel):
    """What a request or a timer produced."""

    state: CaseState
    entries: list[LedgerEntry] = Field(default_factory=list)
    notices: list[Notice] = Field(default_factory=list)
    deadline_request: DeadlineRequest | None = None
    finished: bool = False


# Copy-on-write working copy (issue 9: a deep copy of the whole CaseState per decision took
# over 2 s under load and tripped the SDK's deadlock detector). A decision never changes these
# fields in place, it replaces them: the working copy shares them with the input state.
_SHARED_FIELDS = frozenset({"filing", "policy", "deadline", "deadline_source", "pending_deadline"})
# Lists a decision appends to or trims, whose items it never changes: a new list, shared items.
_APPEND_ONLY_LISTS = frozenset({"timeline", "recent_request_ids", "measures_done", "verifications", "postings"})


def _working_copy(state: CaseState) -> CaseState:
    """A copy of `state` a decision may change freely without touching `state`.

    Shared: the fields above and immutable scalars. New lists: the append-only lists. Deep
    copies: everything else (escalation, posting, suspensions, referrals, and any field added
    later), which is small. tests/unit/conftest.py checks on every unit test that no decision
    changes its input state.
    """
    update: dict[str, Any] = {}
    for name in type(state).model_fields:
        value = state.__dict__[name]
        if name in _SHARED_FIELDS or not isinstance(value, (list, dict, set, BaseModel)):
            continue
        update[name] = list(value) if name in _APPEND_ONLY_LISTS else copy.deepcopy(value)
    working = state.model_copy()  # shallow; fields-set unchanged, so serialisation is identical
    working.__dict__.update(update)
    return working


class _Builder:
    """Accumulates entries and notices against a working copy of the state."""

    def __init__(self, state: CaseState, now: datetime) -> None:
        self.state = _working_copy(state)
        self.now = now
        self.entries: list[LedgerEntry] = []
        self.notices: list[Notice] = []
        self.deadline_request: DeadlineRequest | None = None
        self.finished = False

    def record(
        self,
        event: str,
        actor: Actor,
        *,
        from_stage: Stage | None = None,
        to_stage: Stage | None = None,
        reason: str = "",
        request_id: str | None = None,
        notify: tuple[Role, ...] | list[Role] = (),
        subject: str | None = None,
        **data: Any,
    ) -> LedgerEntry:
        s = self.state
        s.seq += 1
        entry = LedgerEntry(
            case_no=s.case_no,
            seq=s.seq,
            event=event,
            actor=actor,
            at=self.now,
            from_stage=from_stage,
            to_stage=to_stage,
            reason=reason,
            request_id=request_id,
            data=data,
        )
        self.entries.append(entry)
        s.timeline.append(
            TimelineEntry(
                seq=s.seq,
                at=self.now,
                event=event,
                actor=actor.user_id,
                role=actor.role,
                unit=actor.unit,
                from_stage=from_stage,
                to_stage=to_stage,
                reason=reason,
            )
        )
        if len(s.timeline) > s.policy.max_timeline_entries:
            del s.timeline[: len(s.timeline) - s.policy.max_timeline_entries]
        if notify:
            self.notify(entry, notify, subject or _subject(s, event))
        return entry

    def notify(self, entry: LedgerEntry, roles: tuple[Role, ...] | list[Role], subject: str) -> None:
        s = self.state
        body = _body(s, entry)
        seen: set[str] = set()
        notified = entry.data.setdefault("notified", [])
        for role in roles:
            for unit in recipients(s.filing, s.policy, role):
                if unit in seen:
                    continue
                seen.add(unit)
                notified.append(unit)
                self.notices.append(
                    Notice(
                        key=f"{s.case_no}:{entry.seq}:{unit}",
                        case_no=s.case_no,
                        seq=entry.seq,
                        recipient_unit=unit,
                        recipient_role=role,
                        subject=subject,
                        # Read scoping reaches the notices too: a referral's reason goes only to
                        # the roles that may read referral details (domain.visibility).
                        body=body if notice_may_carry_reason(role, entry.event, entry.data)
                        else _body(s, entry, with_reason=False),
                    )
                )

    def decision(self) -> Decision:
        return Decision(
            state=self.state,
            entries=self.entries,
            notices=self.notices,
            deadline_request=self.deadline_request,
            finished=self.finished,
        )


def recipients(filing: CaseFiling, policy: Policy, role: Role) -> list[str]:
    """The units that receive a notice addressed to a role of this case."""
    match role:
        case Role.RESPONSIBLE_UNIT:
            return list(filing.responsible_units)
        case Role.LEAD_SUPERVISOR:
            return list(filing.lead_supervising_units)
        case Role.ASSIST_SUPERVISOR:
            return list(filing.assisting_units)
        case Role.RECTIFICATION_OFFICE:
            return [policy.office_unit]
        case Role.DISCIPLINE_COMMISSION:
            return [policy.discipline_unit]
        case Role.SUPERVISION_OFFICE:
            return list(policy.supervision_units)
        case _:
            return []


def _subject(s: CaseState, event: str) -> str:
    return f"【督察整改】案件 {s.case_no}:{event_label_zh(event)}"


def _body(s: CaseState, entry: LedgerEntry, with_reason: bool = True) -> str:
    lines = [
        f"案件编号 Case: {s.case_no}",
        f"问题 Title: {s.filing.title}",
        f"事项 Event: {event_label_zh(entry.event)} ({entry.event})",
        f"当前阶段 Stage: {STAGE_LABELS_ZH[s.stage]} ({s.stage})",
    ]
    if s.deadline is not None:
        lines.append(f"期限 Due: {s.deadline.due_date} 24:00 (Asia/Shanghai)")
    if entry.reason and with_reason:
        lines.append(f"说明 Reason: {entry.reason}")
    lines.append(f"操作人 By: {entry.actor.user_id} ({entry.actor.role}, {entry.actor.unit})")
    return "\n".join(lines)
