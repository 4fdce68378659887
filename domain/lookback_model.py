"""The look-back campaign's (回头看) data: spec, policy, requests, items, state, ledger rows. Pure.

The rules that use them are in domain/lookback.py (decisions) and domain/lookback_rules.py
(selection, sampling, who may read and record, the report's figures).
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from pydantic import BaseModel, Field, model_validator

from domain.enums import LookbackFinding, ReferralPath, Role
from domain.model import Actor
from domain.text import Line, LongText, Name, Names, Reason, Ref, Refs, Title

CAMPAIGN_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"
LOOKBACK_WORKFLOW_NAME = "LookbackCampaign"


def lookback_workflow_id(campaign_id: str) -> str:
    """The one workflow id of a campaign: creating the same id twice is refused."""
    return f"lookback-{campaign_id}"


def refusal_key(campaign_id: str) -> str:
    """The `refused_action.case_no` (and the outbox `case_no`) of a campaign."""
    return f"lookback:{campaign_id}"


class CampaignFinding(StrEnum):
    """The one finding a look-back records on each selected case."""

    IN_PLACE = "IN_PLACE"  # 整改到位
    REBOUND = "REBOUND"  # 问题反弹 (001:3 @744)
    NOT_IN_PLACE = "NOT_IN_PLACE"  # 整改不到位 (003:38)
    FAKE = "FAKE"  # 虚假整改 (000:431, path B of §4.6)


FINDING_LABELS_ZH: dict[CampaignFinding, str] = {
    CampaignFinding.IN_PLACE: "整改到位",
    CampaignFinding.REBOUND: "问题反弹",
    CampaignFinding.NOT_IN_PLACE: "整改不到位",
    CampaignFinding.FAKE: "虚假整改",
}

# What each finding sends to the case: the REOPEN action's `lookback_finding` (the case model
# knows REBOUND and NOT_IN_PLACE; fake rectification is, for the case, rectification not in
# place, the reason says 虚假整改) and the accountability path proposed (never referred here).
REOPENS: dict[CampaignFinding, LookbackFinding] = {
    CampaignFinding.REBOUND: LookbackFinding.REBOUND,
    CampaignFinding.NOT_IN_PLACE: LookbackFinding.NOT_IN_PLACE,
    CampaignFinding.FAKE: LookbackFinding.NOT_IN_PLACE,
}
PROPOSES: dict[CampaignFinding, ReferralPath] = {
    CampaignFinding.REBOUND: ReferralPath.PERFORMANCE,  # path A: 整改不力
    CampaignFinding.NOT_IN_PLACE: ReferralPath.PERFORMANCE,
    CampaignFinding.FAKE: ReferralPath.FAKE_RECTIFICATION,  # path B: lead drafts, office verifies
}


class CampaignStage(StrEnum):
    CREATED = "CREATED"  # defined, no selection yet
    VISITING = "VISITING"  # cases selected, findings being recorded
    CLOSED = "CLOSED"  # ended (by the office, or every selected case visited): report final


STAGE_LABELS_ZH: dict[CampaignStage, str] = {
    CampaignStage.CREATED: "已创建(待选取)",
    CampaignStage.VISITING: "核查中",
    CampaignStage.CLOSED: "已结束",
}


class LookbackPolicy(BaseModel):
    """The campaign's configurable rules (POLICY_FILE key "lookback"); INFERRED defaults."""

    version: str = "2026.12-lookback-1"
    # Reminders to the office and the inspectors, in working days before the period's end (INFERRED).
    reminder_working_days_before: list[int] = Field(default_factory=lambda: [5])
    overdue_reminder: bool = True  # one reminder the day after the period ended, if cases are unvisited
    reopen_working_days: int = Field(default=30, ge=1)  # a reopened case's deadline when the finding gives none
    max_selection: int = Field(default=5000, ge=1)
    office_unit: str = "整改办"
    supervision_units: list[str] = Field(default_factory=lambda: ["市委督查室", "市政府督查室"])
    max_history_events: int = Field(default=2000, ge=50)

    @model_validator(mode="after")
    def _checked(self) -> LookbackPolicy:
        if any(d < 1 for d in self.reminder_working_days_before):
            raise ValueError("lookback reminder_working_days_before: each must be at least 1 working day")
        return self


class CampaignSpec(BaseModel):
    """What the office defines: name, basis, unannounced or not, period, optional programme."""

    campaign_id: str = Field(min_length=1, max_length=64, pattern=CAMPAIGN_ID_PATTERN)
    name: Title = Field(min_length=1)
    basis: LongText = ""  # e.g. "对已整改销号问题适时开展'回头看'" (000:446)
    unannounced: bool = False  # 四不两直 / 明察暗访
    start: date
    end: date
    programme_id: Line(64) = ""

    @model_validator(mode="after")
    def _period(self) -> CampaignSpec:
        if self.end < self.start:
            raise ValueError(f"period: end {self.end} is before start {self.start}")
        return self


class SelectionCriteria(BaseModel):
    """Which closed / long-term cases the campaign revisits. Empty filters: all of them."""

    units: Names = Field(default_factory=list)  # a responsible unit among these
    county: Name = ""  # a responsible unit naming this county
    inspection_round: Title = ""
    programme_id: Line(64) = ""  # default: the campaign's programme
    sample_size: int | None = Field(default=None, ge=1, le=100_000)  # a random sample of this many
    seed: int | None = Field(default=None, ge=0, le=2**63 - 1)  # drawn by the workflow when absent


class Candidate(BaseModel):
    """A closed / long-term / archived case as read from the case projection."""

    case_no: str
    title: str = ""
    stage: str
    responsible_units: list[str] = Field(default_factory=list)
    lead_supervising_units: list[str] = Field(default_factory=list)
    inspection_round: str = ""
    programme_id: str = ""


class SelectRequest(BaseModel):
    actor: Actor
    request_id: Ref = Field(min_length=1)
    criteria: SelectionCriteria = Field(default_factory=SelectionCriteria)


class FindingRequest(BaseModel):
    actor: Actor
    request_id: Ref = Field(min_length=1)
    case_no: Ref = Field(min_length=1)
    finding: CampaignFinding
    evidence: Reason = Field(min_length=1)  # what was seen on site (核查情况)
    evidence_refs: Refs = Field(default_factory=list)  # evidence files / documents
    new_due_date: date | None = None  # the reopened case's deadline (default: policy working days)


class CloseRequest(BaseModel):
    actor: Actor
    request_id: Ref = Field(min_length=1)
    reason: Reason = ""


class ReopenStatus(StrEnum):
    PENDING = "PENDING"
    REOPENED = "REOPENED"
    FAILED = "FAILED"


class Item(BaseModel):
    """One selected case and its (single) finding."""

    case_no: str
    title: str = ""
    stage: str  # at selection
    responsible_units: list[str] = Field(default_factory=list)
    lead_supervising_units: list[str] = Field(default_factory=list)
    finding: CampaignFinding | None = None
    evidence: str = ""
    evidence_refs: list[str] = Field(default_factory=list)
    inspector: Actor | None = None
    found_at: datetime | None = None
    finding_seq: int | None = None
    reopen: ReopenStatus | None = None
    reopen_due_date: date | None = None
    reopen_error: str = ""
    referral_proposed: ReferralPath | None = None


class ReminderStep(BaseModel):
    key: str  # "before-5" / "after-end"
    fire_at: datetime
    fire_date: date
    done: bool = False


class ScheduleRequest(BaseModel):
    campaign_id: str
    end: date
    working_days_before: list[int] = Field(default_factory=list)
    overdue_reminder: bool = True


class Schedule(BaseModel):
    steps: list[ReminderStep] = Field(default_factory=list)
    calendar_version: str = ""


class ReopenOrder(BaseModel):
    """Reopen one case (activity `lookback_reopen`, which calls workflows.reopen.reopen_case)."""

    campaign_id: str
    seq: int  # the finding's ledger seq: the reopen's request id is built from it (idempotent)
    case_no: str
    actor: Actor  # the office: only it may REOPEN (domain/lifecycle.py)
    lookback_finding: LookbackFinding
    new_due_date: date | None = None
    working_days: int = 30
    today: date  # the finding's day (Asia/Shanghai): the default deadline counts from it
    reason: str

    @property
    def request_id(self) -> str:
        return f"lookback-{self.campaign_id}-{self.seq}"


class ReopenOutcome(BaseModel):
    case_no: str
    ok: bool
    due_date: date | None = None
    error_type: str = ""
    message: str = ""


class LookbackEntry(BaseModel):
    """One row of the campaign ledger (append-only, hash-chained by the record activity)."""

    campaign_id: str
    seq: int
    event: str
    actor: Actor
    at: datetime
    reason: str = ""
    request_id: str | None = None
    case_no: str | None = None
    data: dict = Field(default_factory=dict)


class LookbackNotice(BaseModel):
    key: str
    campaign_id: str
    seq: int
    recipient_unit: Name
    recipient_role: Role
    subject: str
    body: str


class CampaignState(BaseModel):
    spec: CampaignSpec
    policy: LookbackPolicy
    stage: CampaignStage = CampaignStage.CREATED
    seq: int = 0
    created_at: datetime
    created_by: Actor
    criteria: SelectionCriteria | None = None
    population: int = 0  # candidates before sampling
    items: list[Item] = Field(default_factory=list)
    reminders: list[ReminderStep] = Field(default_factory=list)
    schedule_pending: bool = False
    closed_at: datetime | None = None
    closed_by: Actor | None = None
    close_reason: str = ""
    runs: int = 1
    request_ids: list[str] = Field(default_factory=list)  # the last 200 accepted request ids

    @property
    def campaign_id(self) -> str:
        return self.spec.campaign_id

    def item(self, case_no: str) -> Item | None:
        return next((i for i in self.items if i.case_no == case_no), None)

    def unvisited(self) -> list[Item]:
        return [i for i in self.items if i.finding is None]


class LookbackDecision(BaseModel):
    state: CampaignState
    entries: list[LookbackEntry] = Field(default_factory=list)
    notices: list[LookbackNotice] = Field(default_factory=list)
    reopen: list[ReopenOrder] = Field(default_factory=list)
    schedule: ScheduleRequest | None = None


class CampaignInput(BaseModel):
    spec: CampaignSpec
    created_by: Actor
    policy: LookbackPolicy | None = None  # None: loaded by an activity from the deployment
    state: CampaignState | None = None  # carried over by continue-as-new


class CampaignResult(BaseModel):
    campaign_id: str
    stage: CampaignStage
    seq: int
    selected: int = 0
    unvisited: int = 0


class CandidateQuery(BaseModel):
    campaign_id: str
    programme_id: str = ""
    limit: int = 5000


class LookbackRecordInput(BaseModel):
    entries: list[LookbackEntry]
    notices: list[LookbackNotice] = Field(default_factory=list)
    state: CampaignState
    workflow_run_id: str = ""
