"""Policy values: stage time limits, escalation ladders and other configurable rules.

Everything the domain text marks INFERRED lives here as a default, not in code.
A case records the policy snapshot it was filed under (with its version), so a
later policy change never alters a running case's history; the policy is loaded
by an activity and can be overridden by a JSON file (see README, POLICY_FILE).
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from domain.enums import DayCount, PetitionClosure, Role, Rung, Stage


class StageLimit(BaseModel):
    """A time limit for a stage; on overdue either escalate or remind once."""

    days: int = Field(ge=1)
    count: DayCount = DayCount.WORKING
    on_overdue: str = "ESCALATE"  # ESCALATE | REMIND


class LadderRungSpec(BaseModel):
    rung: Rung
    delay_days: int = Field(ge=0)  # after the due date
    count: DayCount = DayCount.WORKING
    notify_roles: list[Role] = Field(default_factory=list)


class LadderProfile(BaseModel):
    """An ordered escalation ladder (domain.md §6)."""

    name: str
    version: str = "1"
    description: str = ""
    rungs: list[LadderRungSpec]


_NOTIFY_RU = [Role.RESPONSIBLE_UNIT, Role.LEAD_SUPERVISOR, Role.RECTIFICATION_OFFICE]

# INFERRED delays: the seeds name the measures and their order, not day thresholds.
CANONICAL_LADDER = LadderProfile(
    name="canonical",
    description="函告 → 警示 → 通报 → 督办 → 挂牌督办 → 约谈 → 区域限批 → 移交问责 (000:446)",
    rungs=[
        LadderRungSpec(rung=Rung.NOTICE_LETTER, delay_days=0, notify_roles=_NOTIFY_RU),
        LadderRungSpec(rung=Rung.WARNING, delay_days=5, notify_roles=_NOTIFY_RU),
        LadderRungSpec(rung=Rung.CIRCULAR, delay_days=10, notify_roles=_NOTIFY_RU),
        LadderRungSpec(rung=Rung.SUPERVISION_ORDER, delay_days=15, notify_roles=_NOTIFY_RU),
        LadderRungSpec(rung=Rung.LISTED_SUPERVISION, delay_days=20, notify_roles=_NOTIFY_RU),
        LadderRungSpec(rung=Rung.SUMMONS, delay_days=30, notify_roles=_NOTIFY_RU),
        LadderRungSpec(
            rung=Rung.REGIONAL_APPROVAL_RESTRICTION, delay_days=45, notify_roles=_NOTIFY_RU
        ),
        LadderRungSpec(
            rung=Rung.ACCOUNTABILITY_TRANSFER,
            delay_days=60,
            notify_roles=[*_NOTIFY_RU, Role.DISCIPLINE_COMMISSION],
        ),
    ],
)

COUNTY_LADDER = LadderProfile(
    name="county",
    description="Qingtian county: 通报 → 督办 → 约谈 (001:3 @3057)",
    rungs=[
        LadderRungSpec(rung=Rung.CIRCULAR, delay_days=0, notify_roles=_NOTIFY_RU),
        LadderRungSpec(rung=Rung.SUPERVISION_ORDER, delay_days=10, notify_roles=_NOTIFY_RU),
        LadderRungSpec(rung=Rung.SUMMONS, delay_days=20, notify_roles=_NOTIFY_RU),
    ],
)


def _default_stage_limits() -> dict[Stage, StageLimit]:
    # All INFERRED (domain.md §5.2 "INFERRED timers"): configurable per deployment.
    return {
        Stage.TRANSFERRED: StageLimit(days=3),  # 签收
        Stage.INVESTIGATING: StageLimit(days=15),  # 调查核实
        Stage.PRELIM_REVIEW: StageLimit(days=10, on_overdue="REMIND"),
        Stage.CLOSURE_APPLICATION: StageLimit(days=5),
        Stage.VERIFICATION: StageLimit(days=20, on_overdue="REMIND"),
        Stage.FILING: StageLimit(days=5, on_overdue="REMIND"),
        Stage.REPLY: StageLimit(days=15),
        Stage.DISCLOSURE: StageLimit(days=10, on_overdue="REMIND"),
    }


class Policy(BaseModel):
    """Every configurable rule of the procedure, versioned."""

    version: str = "2026.1"
    stage_limits: dict[Stage, StageLimit] = Field(default_factory=_default_stage_limits)
    # 立行立改: no final date unless set (domain.md §5.1: act at once, dispatch continues).
    immediate_limit: StageLimit | None = None
    # Petitions without a plan deadline: rectification limit (INFERRED).
    petition_rectification_limit: StageLimit = Field(
        default_factory=lambda: StageLimit(days=30)
    )
    # Back to rectifying after 初审 rejected / objection upheld / 验收 failed / reopen.
    rework_limit: StageLimit = Field(default_factory=lambda: StageLimit(days=30))
    posting_days: int = Field(default=7, ge=1)  # 公示期 (INFERRED)
    posting_count: DayCount = DayCount.CALENDAR
    petition_closure: PetitionClosure = PetitionClosure.SIMPLE
    ladders: dict[str, LadderProfile] = Field(
        default_factory=lambda: {"canonical": CANONICAL_LADDER, "county": COUNTY_LADDER}
    )
    # Stages whose deadline is the responsible unit's: escalate on overdue.
    lookback_window_days: int = Field(default=365, ge=1)  # CLOSED stays reopenable this long
    max_extension_days: int = Field(default=180, ge=1)  # calendar days past the current due date
    # INFERRED: a deadline already past when it is set (e.g. an old plan date on an
    # imported case) starts its ladder on that day instead of firing every rung at once.
    rebase_overdue_ladder: bool = True
    office_unit: str = "整改办"
    discipline_unit: str = "纪委监委"
    # Continue-as-new once history grows beyond this many events (server may suggest earlier).
    max_history_events: int = Field(default=2000, ge=50)
    max_timeline_entries: int = Field(default=500, ge=10)
    # Objections (异议) to a posting: each pauses it until the office rules, so one person may
    # hold at most this many open ones per posting, and lodge at most so many per day
    # (domain.screening; INFERRED limits).
    max_open_objections_per_person: int = Field(default=1, ge=1)
    max_objections_per_person_per_day: int = Field(default=3, ge=1)

    def ladder(self, name: str) -> LadderProfile:
        try:
            return self.ladders[name]
        except KeyError:
            raise KeyError(f"unknown escalation ladder profile {name!r}") from None


DEFAULT_POLICY = Policy()
