"""The projection row of a case (split out of domain/decide.py): the slim view the record
activity writes to `case_projection` after every change. Pure."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from pydantic import BaseModel

from domain import followup as fu
from domain.enums import Action, CaseKind, ReferralStatus, Stage
from domain.followup_model import FollowUpProjection
from domain.model import CaseFiling, CaseState, ComputedDeadline


class CaseProjection(BaseModel):
    """The slim view of a case written to the projection table after every change."""

    case_no: str
    kind: CaseKind
    title: str
    stage: Stage
    stage_entered_at: datetime
    responsible_units: list[str]
    lead_supervising_units: list[str]
    assisting_units: list[str]
    inspection_round: str
    due_date: date | None
    due_at: datetime | None
    deadline: ComputedDeadline | None
    escalation_level: int
    escalation_max_level: int
    suspended: bool
    cycle: int
    reopen_count: int
    open_referrals: int
    filed_at: datetime
    closed_at: datetime | None
    last_seq: int
    policy_version: str
    filing: CaseFiling | None  # only when it changed (FILED, AMEND): keeps history small
    detail: dict[str, Any]
    # Issue 13 (migration 012): follow-up timers; empty for runs without them.
    followup: FollowUpProjection | None = None


FILING_EVENTS = frozenset({"FILED", Action.AMEND.value})


def projection(state: CaseState, with_filing: bool = True) -> CaseProjection:
    """Build the projection row of a case from its state."""
    s = state
    f = s.filing
    return CaseProjection(
        case_no=f.case_no,
        kind=f.kind,
        title=f.title,
        stage=s.stage,
        stage_entered_at=s.stage_entered_at,
        responsible_units=f.responsible_units,
        lead_supervising_units=f.lead_supervising_units,
        assisting_units=f.assisting_units,
        inspection_round=f.inspection_round,
        due_date=s.deadline.due_date if s.deadline else None,
        due_at=s.deadline.due_at if s.deadline else None,
        deadline=s.deadline,
        escalation_level=s.escalation.level,
        escalation_max_level=s.escalation.max_level,
        suspended=s.suspension is not None,
        cycle=s.cycle,
        reopen_count=s.reopen_count,
        open_referrals=sum(1 for r in s.referrals if r.status in (ReferralStatus.OPEN, ReferralStatus.ACCEPTED)),
        filed_at=s.filed_at,
        closed_at=s.closed_at,
        last_seq=s.seq,
        policy_version=s.policy.version,
        filing=f if with_filing else None,
        detail=s.model_dump(
            mode="json",
            include={
                "escalation", "posting", "postings", "extension_request", "suspension", "suspensions",
                "finding", "reply", "measures_done", "verifications", "referrals", "archive_at",
                "fanout",  # issue 13: a fanned-out item's children and spot-check samples
            },
        ),
        followup=fu.projection_fields(s, s.timeline[-1].at if s.timeline else s.filed_at),
    )
