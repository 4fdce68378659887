"""Case records, actors, requests and the case state the workflow carries.

All models are pydantic v2 and cross the Temporal boundary through the pydantic
data converter. New fields must have defaults so that running cases (and
stored histories) keep deserialising.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from domain.enums import (
    Action,
    CaseKind,
    DayCount,
    DeadlineKind,
    Finding,
    LookbackFinding,
    ProposalStatus,
    ReferralPath,
    ReferralStatus,
    Role,
    Rung,
    Stage,
)
from domain.fanout_types import FanoutState
from domain.followup_model import FollowUpState
from domain.policy import LadderRungSpec, Policy
from domain.text import MAX_ITEMS, Line, LongText, Name, Names, Reason, Ref, Refs, Title


class Milestone(BaseModel):
    """A dated (or recurring) milestone inside a measure."""

    due_date: date | None = None
    recurrence: Ref | None = None  # e.g. QUARTERLY
    what: Reason = ""


class Measure(BaseModel):
    """One rectification measure (整改措施) with its own milestones."""

    seq: int
    text: Reason
    milestones: list[Milestone] = Field(default_factory=list, max_length=MAX_ITEMS)


class DeadlineSpec(BaseModel):
    """The case deadline as written in the plan (整改时限), with its raw text."""

    kind: DeadlineKind
    due_date: date | None = None
    long_term: bool = False
    raw_zh: Title = ""


class CaseFiling(BaseModel):
    """What the rectification office files (domain.md §2).

    Import tolerates missing pieces; `missing_for_transfer` says what must be
    completed (by an AMEND) before the case can be transferred.
    """

    case_no: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    kind: CaseKind
    # Text fields refuse control characters and are bounded (domain.text).
    title: Title = Field(min_length=1)
    problem: LongText = ""
    target: LongText = ""  # 整改目标
    measures: list[Measure] = Field(default_factory=list, max_length=MAX_ITEMS)
    responsible_units: Names = Field(default_factory=list)  # 主体责任单位
    lead_supervising_units: Names = Field(default_factory=list)  # 牵头督导单位, first organises
    assisting_units: Names = Field(default_factory=list)  # 配合督导单位
    lead_leader: Name = ""  # 牵头督导领导 (a role reference)
    deadline: DeadlineSpec | None = None
    source: Title = ""  # e.g. 中央生态环境保护督察报告反馈问题(第二轮)
    inspection_round: Title = ""  # e.g. 第二轮中央生态环境保护督察
    jurisdiction: Title = ""
    ladder_profile: Ref = "canonical"  # which escalation ladder applies
    # The programme (one inspection round's rectification plan for a locality, issue 13) the
    # case belongs to; "" for a case filed outside any programme.
    programme_id: Ref = ""
    # Petitions: complaint details (INFERRED fields, domain.md §2.2).
    complaint: LongText = ""
    complainant_contact: Reason = ""
    # A child case of a fanned-out item (issue 13): the parent's case number ("" otherwise).
    parent_case_no: Ref = ""


class Actor(BaseModel):
    """Who is acting: a user id, one role and the unit it acts for."""

    model_config = ConfigDict(frozen=True)

    user_id: Name = Field(min_length=1)
    role: Role
    unit: Name = ""


SYSTEM_ACTOR = Actor(user_id="system", role=Role.SYSTEM, unit="engine")


class CriterionCheck(BaseModel):
    """One closure-standard criterion with its evidence references."""

    met: bool
    evidence: Refs = Field(default_factory=list)
    note: Reason = ""


class VerificationCriteria(BaseModel):
    """The closure standard 生态修复、污染消除、群众满意, plus measures done."""

    eco_restored: CriterionCheck  # 生态修复
    pollution_eliminated: CriterionCheck  # 污染消除
    public_satisfied: CriterionCheck  # 群众满意
    measures_all_done: CriterionCheck | None = None

    def all_met(self) -> bool:
        checks = [self.eco_restored, self.pollution_eliminated, self.public_satisfied]
        if self.measures_all_done is not None:
            checks.append(self.measures_all_done)
        return all(c.met for c in checks)

    def unmet_without_evidence(self) -> list[str]:
        """Names of met criteria that carry no evidence reference."""
        named = {
            "eco_restored": self.eco_restored,
            "pollution_eliminated": self.pollution_eliminated,
            "public_satisfied": self.public_satisfied,
            "measures_all_done": self.measures_all_done,
        }
        return [k for k, c in named.items() if c is not None and c.met and not c.evidence]


# The closure standard's criteria, in order, with their Chinese names (forms, reports). The
# optional ones are the model's optional fields.
CRITERIA_LABELS_ZH: dict[str, str] = {
    "eco_restored": "生态修复",
    "pollution_eliminated": "污染消除",
    "public_satisfied": "群众满意",
    "measures_all_done": "措施全部完成",
}


def criterion_required(name: str) -> bool:
    return VerificationCriteria.model_fields[name].is_required()


class ActionRequest(BaseModel):
    """A handler action sent to a case workflow as an Update.

    Only the fields the action needs are read; the lifecycle checks that the
    required ones are present.
    """

    action: Action
    actor: Actor
    request_id: Ref = Field(min_length=1)
    reason: Reason = ""
    expected_stage: Stage | None = None  # optimistic concurrency from the UI
    finding: Finding | None = None
    criteria: VerificationCriteria | None = None
    new_due_date: date | None = None
    rung: Rung | None = None
    referral_id: Ref | None = None
    referral_path: ReferralPath | None = None
    measure_seq: int | None = None
    lookback_finding: LookbackFinding | None = None
    objection_id: Ref | None = None
    evidence: Refs = Field(default_factory=list)
    amendment: CaseAmendment | None = None
    proposal_id: Ref | None = None  # an escalation proposal (拟采取措施) to confirm or dismiss
    report_ref: Line(200) | None = None  # 追责建议报告 / dossier reference
    child_case_no: Ref | None = None  # SPOT_CHECK: which child case of a fanned-out item
    # HMAC by the console (domain.signing); required by workers given ACTION_SIGNING_KEY.
    signature: Line(100) | None = None


class CaseAmendment(BaseModel):
    """Fields the office may complete while a case is still REGISTERED."""

    title: Title | None = None
    problem: LongText | None = None
    target: LongText | None = None
    measures: list[Measure] | None = Field(default=None, max_length=MAX_ITEMS)
    responsible_units: Names | None = None
    lead_supervising_units: Names | None = None
    assisting_units: Names | None = None
    lead_leader: Name | None = None
    deadline: DeadlineSpec | None = None
    ladder_profile: Ref | None = None


ActionRequest.model_rebuild()


# ---------------------------------------------------------------- deadlines


class DueDateExplanation(BaseModel):
    """How a due date was computed, so that it can explain itself."""

    start: date
    rule: str  # e.g. "10 WORKING days after 2026-01-30" or "fixed date from plan"
    days: int = 0
    count: DayCount | None = None
    holidays_skipped: list[date] = Field(default_factory=list)
    weekend_days_skipped: int = 0
    adjusted_workdays_counted: list[date] = Field(default_factory=list)  # 调休上班日
    excluded_days: int = 0  # suspension time added back
    ladder_base: date | None = None  # the date the escalation delays count from
    calendar_version: str = ""


class ScheduledRung(BaseModel):
    rung: Rung
    fire_date: date
    fire_at: datetime


class ComputedDeadline(BaseModel):
    """A stage deadline computed by the calendar activity and recorded in state."""

    purpose: str  # STAGE or POSTING
    stage: Stage
    due_date: date
    due_at: datetime  # end of due_date in Asia/Shanghai, as an aware UTC datetime
    explanation: DueDateExplanation
    count: DayCount | None = None
    escalation_schedule: list[ScheduledRung] = Field(default_factory=list)
    computed_at: datetime | None = None


class DeadlineRequest(BaseModel):
    """Ask the calendar activity for a due date (and the escalation schedule).

    Exactly one of `fixed_date` or `days` is set. For a suspension,
    `exclude_from`/`exclude_until` add the excluded time back onto `base_due_date`.
    """

    case_no: str
    purpose: str = "STAGE"
    stage: Stage
    start: date
    fixed_date: date | None = None
    days: int | None = None
    count: DayCount = DayCount.WORKING
    ladder: list[LadderRungSpec] = Field(default_factory=list)
    base_due_date: date | None = None
    exclude_from: date | None = None
    exclude_until: date | None = None
    # A due date already past when set (an imported old case): count the ladder from `start`.
    rebase_overdue_ladder: bool = False




# ---------------------------------------------------------------- case state


class FiredRung(BaseModel):
    rung: Rung
    at: datetime
    stage: Stage
    automatic: bool
    reason: str = ""
    by: str = "system"


class EscalationProposal(BaseModel):
    """A rung due under PROPOSED mode, or proposed by hand (拟采取措施), awaiting a decision."""

    proposal_id: str  # P1, P2, ... per case
    rung: Rung
    stage: Stage
    cycle: int = 1
    proposed_at: datetime
    proposed_by: str = "system"
    proposed_role: Role = Role.SYSTEM
    reason: str = ""
    facts: dict[str, Any] = Field(default_factory=dict)  # what the proposal rests on
    status: ProposalStatus = ProposalStatus.PENDING
    decided_at: datetime | None = None
    decided_by: str = ""
    decision_reason: str = ""
    report_ref: str = ""


class EscalationState(BaseModel):
    """Escalation of the current deadline episode plus everything that fired.

    `rules` None/1: the ladder of cases started before issue 9 (level-based, every rung
    automatic), kept while such a run lasts; 2: rung modes, proposals, profile order, resume.
    """

    level: int = 0  # severity of the rung in effect (0 = none); back to 0 when the unit acts
    fired: list[FiredRung] = Field(default_factory=list)
    max_level: int = 0
    rules: int | None = None
    current: Rung | None = None  # the last rung that took effect in this stage (rules 2)
    step: int = 0  # index into the deadline's escalation schedule of the next rung (rules 2)
    held: bool = False  # de-escalated: the current deadline's ladder climbs no further
    reached: dict[Stage, Rung] = Field(default_factory=dict)  # rung reached per stage, for resume
    proposals: list[EscalationProposal] = Field(default_factory=list)

    def pending(self) -> list[EscalationProposal]:
        return [p for p in self.proposals if p.status is ProposalStatus.PENDING]


class Objection(BaseModel):
    objection_id: str
    at: datetime
    by: str
    text: str
    ruling: str | None = None  # UPHELD / DISMISSED
    ruled_at: datetime | None = None


class PostingState(BaseModel):
    """Public posting (公示) window; paused while an objection is open."""

    started_at: datetime
    ends_at: datetime | None  # None while paused
    remaining_seconds: float | None = None  # set while paused
    objections: list[Objection] = Field(default_factory=list)

    def open_objection(self) -> Objection | None:
        return next((o for o in self.objections if o.ruling is None), None)


class ExtensionRequest(BaseModel):
    requested_due_date: date
    reason: str
    by: str
    at: datetime


class Suspension(BaseModel):
    start: datetime
    end: datetime | None = None
    reason: str = ""
    excluded_days: int = 0


class Referral(BaseModel):
    """An accountability referral (移交问责); it never closes the case."""

    referral_id: str
    path: ReferralPath
    opened_at: datetime
    reason: str
    status: ReferralStatus = ReferralStatus.OPEN
    outcome: str = ""
    concluded_at: datetime | None = None
    report_ref: str = ""  # 追责建议报告 (paths A, B) or the inspection team's dossier (path C)
    drafted_by: str = ""  # path B: the lead supervising unit that drafted it
    referred_by: str = ""  # who referred it to the discipline commission


class VerificationRecord(BaseModel):
    at: datetime
    by: str
    unit: str
    passed: bool
    criteria: VerificationCriteria | None = None
    reason: str = ""
    cycle: int = 1


class TimelineEntry(BaseModel):
    """A compact in-state copy of each ledger row (the ledger is authoritative)."""

    seq: int
    at: datetime
    event: str
    actor: str
    role: Role
    unit: str = ""
    from_stage: Stage | None = None
    to_stage: Stage | None = None
    reason: str = ""


class CaseState(BaseModel):
    """The whole state of one case; continue-as-new carries it unchanged."""

    filing: CaseFiling
    stage: Stage = Stage.REGISTERED
    stage_entered_at: datetime
    filed_at: datetime
    seq: int = 0  # last ledger sequence number written for this case
    cycle: int = 1  # rectification cycle; +1 on every send-back or reopen
    deadline: ComputedDeadline | None = None
    pending_deadline: DeadlineRequest | None = None
    deadline_source: DeadlineRequest | None = None  # the request behind `deadline`
    escalation: EscalationState = Field(default_factory=EscalationState)
    overdue_reminded: bool = False
    posting: PostingState | None = None
    postings: list[PostingState] = Field(default_factory=list)  # earlier 公示 rounds
    extension_request: ExtensionRequest | None = None
    suspension: Suspension | None = None
    suspensions: list[Suspension] = Field(default_factory=list)
    finding: Finding | None = None
    reply: str = ""
    measures_done: list[int] = Field(default_factory=list)
    verifications: list[VerificationRecord] = Field(default_factory=list)
    referrals: list[Referral] = Field(default_factory=list)
    reopen_count: int = 0
    closed_at: datetime | None = None
    archive_at: datetime | None = None
    policy: Policy
    timeline: list[TimelineEntry] = Field(default_factory=list)
    recent_request_ids: list[str] = Field(default_factory=list)
    runs: int = 1  # workflow runs so far (continue-as-new count + 1)
    fanout: FanoutState | None = None  # a fanned-out item's children (domain/fanout.py)
    # Issue 13: milestone and monthly-report timers (domain/followup.py); None: a run that
    # predates them (kept so that its history replays).
    followup: FollowUpState | None = None

    @property
    def case_no(self) -> str:
        return self.filing.case_no

    @property
    def is_open(self) -> bool:
        return self.stage not in (Stage.CLOSED, Stage.ARCHIVED, Stage.LONG_TERM_MAINTENANCE)

