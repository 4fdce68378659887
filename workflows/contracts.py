"""Names shared by the worker, the starter, the admin tool and tests.

Task queue, workflow-id builder, typed search-attribute keys and the workflow's
input/result models. The registered names here are contracts with running cases.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel
from temporalio.common import SearchAttributeKey

from domain.blocking import BlockedStep, UnblockRequest
from domain.decide import CaseProjection, LedgerEntry, Notice
from domain.enums import Stage
from domain.model import ActionRequest, Actor, CaseFiling, CaseState
from domain.policy import Policy
from domain.reopen import ArchivedReopen

TASK_QUEUE = "inspection-cases"
WORKFLOW_NAME = "Case"

CASE_STAGE = SearchAttributeKey.for_keyword("CaseStage")
CASE_KIND = SearchAttributeKey.for_keyword("CaseKind")
RESPONSIBLE_UNITS = SearchAttributeKey.for_keyword_list("ResponsibleUnits")
CASE_DUE_AT = SearchAttributeKey.for_datetime("CaseDueAt")
ESCALATION_RUNG = SearchAttributeKey.for_int("EscalationRung")
INSPECTION_ROUND = SearchAttributeKey.for_keyword("InspectionRound")
CASE_BLOCKED = SearchAttributeKey.for_keyword("CaseBlocked")  # error type while blocked (issue 9)

SEARCH_ATTRIBUTE_KEYS = [
    CASE_STAGE, CASE_KIND, RESPONSIBLE_UNITS, CASE_DUE_AT, ESCALATION_RUNG, INSPECTION_ROUND, CASE_BLOCKED,
]

SEARCH_ATTRIBUTES: dict[str, str] = {
    "CaseStage": "Keyword",
    "CaseKind": "Keyword",
    "ResponsibleUnits": "KeywordList",
    "CaseDueAt": "Datetime",
    "EscalationRung": "Int",
    "InspectionRound": "Keyword",
    "CaseBlocked": "Keyword",
}


def case_workflow_id(case_no: str) -> str:
    """The one workflow id of a case: filing the same number twice is refused."""
    return f"case-{case_no}"


class CaseWorkflowInput(BaseModel):
    """Start input; on continue-as-new `state` carries the whole case over."""

    filing: CaseFiling
    filed_by: Actor
    policy: Policy | None = None  # None: the policy activity loads the deployment's policy
    state: CaseState | None = None
    # Issue 13: a child case of a fanned-out item is started by its parent with the TRANSFER it
    # takes at once (the office actor who transferred the parent).
    transfer: ActionRequest | None = None
    # Issue 14: a new run of an ARCHIVED case (`state` is its archived final state) applies this
    # REOPEN first (domain/reopen.py; workflows/reopen.py starts it).
    reopen: ArchivedReopen | None = None


class CaseWorkflowResult(BaseModel):
    case_no: str
    stage: Stage
    seq: int
    # Issue 14: a reopen run whose REOPEN was refused by the workflow's own check ends ARCHIVED
    # again, recording nothing; why it was refused.
    reopen_refused: str | None = None


class ArchivedStateRecord(BaseModel):
    """The final state of a run that ended ARCHIVED, kept in PostgreSQL (issue 14) so that the
    case can be reopened after Temporal's retention has removed the run."""

    case_no: str
    workflow_run_id: str
    state: CaseState


class ActionResult(BaseModel):
    """What a handler gets back from an accepted action."""

    case_no: str
    stage: Stage
    seq: int
    due_date: str | None = None


class RecordInput(BaseModel):
    """Ledger rows, notices and the projection to write in one transaction."""

    entries: list[LedgerEntry]
    notices: list[Notice]
    projection: CaseProjection
    workflow_run_id: str = ""


class ClockRecordInput(BaseModel):
    """The clock's ledger write inside the woken workflow task (`record_clock_events`, issue 9).

    `decided_at` is the workflow time the decision was taken at: its entries carry it.
    """

    record: RecordInput
    decided_at: datetime


class ClockRecordResult(BaseModel):
    """What `record_clock_events` did.

    `record`: what the ledger holds for these seqs, echoed so that the history keeps it (a local
    activity's input is not recorded, its result is: audit verify and the timeline read it from
    the marker as they read a scheduled `record_case_events`'s input). `redecide_at` is set, and
    nothing written, when the ledger already holds this run's row at the first entry's seq with
    other content: a workflow task that failed after its write decided at that time, and the
    workflow decides again at it.
    """

    record: RecordInput | None = None
    inserted: int = 0
    redecide_at: datetime | None = None


class CaseBlockRecord(BaseModel):
    """A block of a case (and its resolution) for the `case_block` side table."""

    case_no: str
    workflow_run_id: str
    blocked: BlockedStep
    unblock: UnblockRequest | None = None
    at: datetime | None = None


class CountiesRequest(BaseModel):
    """Ask for the locality's county list (issue 13, county fan-out)."""

    case_no: str


class PolicyRequest(BaseModel):
    case_no: str
    ladder_profile: str = "canonical"


__all__ = [
    "TASK_QUEUE",
    "WORKFLOW_NAME",
    "CASE_STAGE",
    "CASE_KIND",
    "RESPONSIBLE_UNITS",
    "CASE_DUE_AT",
    "ESCALATION_RUNG",
    "INSPECTION_ROUND",
    "SEARCH_ATTRIBUTES",
    "SEARCH_ATTRIBUTE_KEYS",
    "case_workflow_id",
    "CaseWorkflowInput",
    "CaseWorkflowResult",
    "ActionResult",
    "RecordInput",
    "PolicyRequest",
    "CountiesRequest",
    "CaseBlockRecord",
    "CASE_BLOCKED",
    "ArchivedStateRecord",
]
