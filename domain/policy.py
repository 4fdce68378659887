"""Policy values: stage time limits, escalation ladders and other configurable rules.

Everything the domain text marks INFERRED lives here as a default, not in code.
A case records the policy snapshot it was filed under (with its version), so a
later policy change never alters a running case's history; the policy is loaded
by an activity and can be overridden by a JSON file (see README, POLICY_FILE).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

from domain.enums import (
    RUNG_LABELS_ZH,
    DayCount,
    LadderResume,
    PetitionClosure,
    Role,
    Rung,
    RungMode,
    Stage,
)
from domain.fanout_types import FanoutPolicy
from domain.followup_model import FollowUpPolicy


class StageLimit(BaseModel):
    """A time limit for a stage; on overdue either escalate or remind once."""

    days: int = Field(ge=1)
    count: DayCount = DayCount.WORKING
    on_overdue: str = "ESCALATE"  # ESCALATE | REMIND


# Default mode of each rung when a profile does not say (issue 9; the seeds apply the heavy
# measures 视情, 000:446, imposed by the 督查室/整改办, 000:427; a referral follows an
# investigation and a 追责建议报告, 000:431). INFERRED for 专题报告.
DEFAULT_RUNG_MODES: dict[Rung, RungMode] = {
    Rung.NOTICE_LETTER: RungMode.AUTOMATIC,
    Rung.WARNING: RungMode.AUTOMATIC,
    Rung.CIRCULAR: RungMode.AUTOMATIC,
    Rung.SUPERVISION_ORDER: RungMode.AUTOMATIC,
    Rung.LISTED_SUPERVISION: RungMode.AUTOMATIC,
    Rung.SUMMONS: RungMode.PROPOSED,
    Rung.REGIONAL_APPROVAL_RESTRICTION: RungMode.PROPOSED,
    Rung.ACCOUNTABILITY_TRANSFER: RungMode.PROPOSED,
    Rung.LEADERSHIP_REPORT: RungMode.PROPOSED,
}
# Modes a rung may never have: a referral to the discipline commission is never the timer's.
FORBIDDEN_MODES: dict[Rung, frozenset[RungMode]] = {
    Rung.ACCOUNTABILITY_TRANSFER: frozenset({RungMode.AUTOMATIC}),
}


class PolicyError(ValueError):
    """A policy (file) that cannot be used; the message names the profile and the rung."""


class LadderRungSpec(BaseModel):
    rung: Rung
    delay_days: int = Field(ge=0)  # after the due date
    count: DayCount = DayCount.WORKING
    notify_roles: list[Role] = Field(default_factory=list)
    mode: RungMode | None = None  # None: DEFAULT_RUNG_MODES[rung]

    @property
    def effective_mode(self) -> RungMode:
        return self.mode or DEFAULT_RUNG_MODES[self.rung]


class LadderProfile(BaseModel):
    """An ordered escalation ladder (domain.md §6): the profile declares its own order."""

    name: str
    version: str = "1"
    description: str = ""
    rungs: list[LadderRungSpec]

    @model_validator(mode="before")
    @classmethod
    def _known_rungs(cls, data: object) -> object:
        if isinstance(data, dict):
            name = data.get("name", "?")
            known = {r.value for r in Rung}
            for i, spec in enumerate(data.get("rungs") or []):
                raw = spec.get("rung") if isinstance(spec, dict) else getattr(spec, "rung", None)
                if isinstance(raw, str) and raw not in known:
                    raise PolicyError(
                        f"ladder profile {name!r}: rung {i + 1} {raw!r} is not a known rung "
                        f"(known: {', '.join(sorted(known))})"
                    )
        return data

    @model_validator(mode="after")
    def _consistent(self) -> LadderProfile:
        if not self.rungs:
            raise PolicyError(f"ladder profile {self.name!r} has no rungs")
        seen: set[Rung] = set()
        prev: LadderRungSpec | None = None
        for spec in self.rungs:
            label = f"{spec.rung.value} ({RUNG_LABELS_ZH[spec.rung]})"
            if spec.rung in seen:
                raise PolicyError(f"ladder profile {self.name!r}: rung {label} appears twice")
            seen.add(spec.rung)
            if prev is not None and spec.delay_days <= prev.delay_days:
                raise PolicyError(
                    f"ladder profile {self.name!r}: rung {label} has delay {spec.delay_days} days, "
                    f"which does not grow after {prev.rung.value} ({prev.delay_days} days)"
                )
            if spec.effective_mode in FORBIDDEN_MODES.get(spec.rung, frozenset()):
                raise PolicyError(
                    f"ladder profile {self.name!r}: rung {label} cannot be {spec.effective_mode.value}; "
                    "a referral follows an investigation and a 追责建议报告 (000:431)"
                )
            prev = spec
        return self

    def order(self) -> list[Rung]:
        return [r.rung for r in self.rungs]


_NOTIFY_RU = [Role.RESPONSIBLE_UNIT, Role.LEAD_SUPERVISOR, Role.RECTIFICATION_OFFICE]


def _rungs(*pairs: tuple[Rung, int]) -> list[LadderRungSpec]:
    return [LadderRungSpec(rung=r, delay_days=d, notify_roles=_NOTIFY_RU, mode=DEFAULT_RUNG_MODES[r]) for r, d in pairs]


# INFERRED delays: the seeds name the measures and their order, not day thresholds.
CANONICAL_LADDER = LadderProfile(
    name="canonical",
    description="函告 → 警示 → 通报 → 督办 → 挂牌督办 → 约谈 → 区域限批 → 移交问责 (000:446)",
    rungs=[
        *_rungs(
            (Rung.NOTICE_LETTER, 0), (Rung.WARNING, 5), (Rung.CIRCULAR, 10), (Rung.SUPERVISION_ORDER, 15),
            (Rung.LISTED_SUPERVISION, 20), (Rung.SUMMONS, 30), (Rung.REGIONAL_APPROVAL_RESTRICTION, 45),
        ),
        LadderRungSpec(
            rung=Rung.ACCOUNTABILITY_TRANSFER,
            delay_days=60,
            notify_roles=[*_NOTIFY_RU, Role.DISCIPLINE_COMMISSION],
            mode=RungMode.PROPOSED,
        ),
    ],
)

COUNTY_LADDER = LadderProfile(
    name="county",
    description="Qingtian county: 通报 → 督办 → 约谈 (001:3 @3057)",
    rungs=_rungs((Rung.CIRCULAR, 0), (Rung.SUPERVISION_ORDER, 10), (Rung.SUMMONS, 20)),
)

CITY_DEADLINE_LADDER = LadderProfile(
    name="city_deadline",
    description="City, deadline-focused: 警示约谈 → 公开通报 → 挂牌督办 → 区域限批, + 追责 via 000:431 (000:427)",
    rungs=_rungs(
        (Rung.SUMMONS, 0), (Rung.CIRCULAR, 10), (Rung.LISTED_SUPERVISION, 20),
        (Rung.REGIONAL_APPROVAL_RESTRICTION, 30), (Rung.ACCOUNTABILITY_TRANSFER, 45),
    ),
)

HENAN_OFFICE_LADDER = LadderProfile(
    name="henan_office",
    description="Henan city office: 提醒函 → 督办通知 → 通报 → 专题向市委、市政府主要领导报告 → 提交有关部门予以问责 (000:310)",
    rungs=_rungs(
        (Rung.NOTICE_LETTER, 0), (Rung.SUPERVISION_ORDER, 5), (Rung.CIRCULAR, 10),
        (Rung.LEADERSHIP_REPORT, 20), (Rung.ACCOUNTABILITY_TRANSFER, 30),
    ),
)

SUMMER_OFFENSIVE_LADDER = LadderProfile(
    name="summer_offensive",
    description="Summer Offensive (monthly dispatch): 预警 → 通报 → 督办 → 挂牌督办 → 约谈 → 区域限批 (000:411)",
    rungs=_rungs(
        (Rung.WARNING, 0), (Rung.CIRCULAR, 5), (Rung.SUPERVISION_ORDER, 10), (Rung.LISTED_SUPERVISION, 15),
        (Rung.SUMMONS, 25), (Rung.REGIONAL_APPROVAL_RESTRICTION, 40),
    ),
)

HEAVY_METAL_LADDER = LadderProfile(
    name="heavy_metal",
    description="Per-item (heavy-metal residues): 定期通报 → 挂牌督办 / 约谈 / 移交纪委监委处理 (000:602)",
    rungs=_rungs(
        (Rung.CIRCULAR, 0), (Rung.LISTED_SUPERVISION, 10), (Rung.SUMMONS, 20), (Rung.ACCOUNTABILITY_TRANSFER, 30),
    ),
)

SHIPPED_LADDERS: tuple[LadderProfile, ...] = (
    CANONICAL_LADDER, COUNTY_LADDER, CITY_DEADLINE_LADDER, HENAN_OFFICE_LADDER, SUMMER_OFFENSIVE_LADDER,
    HEAVY_METAL_LADDER,
)


def _default_stage_ceilings() -> dict[Stage, Rung]:
    # INFERRED (issue 9): procedural stages get reminders and at most the lower rungs. The
    # seeds tie the heavy measures to rectification that lags (000:427, 000:446); 整改中
    # (RECTIFYING) has no entry: it climbs the full ladder.
    return {
        Stage.TRANSFERRED: Rung.SUPERVISION_ORDER,  # 签收
        Stage.INVESTIGATING: Rung.SUPERVISION_ORDER,  # 调查核实
        Stage.CLOSURE_APPLICATION: Rung.SUPERVISION_ORDER,  # 销号申请
        Stage.REPLY: Rung.SUPERVISION_ORDER,  # 答复
    }


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

    # Frozen: cases with equal snapshots share one object (domain/shared_policy.py).
    model_config = ConfigDict(frozen=True)

    version: str = "2026.2"  # 2026.2: rung modes, stage ceilings, seed profiles (issue 9)
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
        default_factory=lambda: {p.name: p for p in SHIPPED_LADDERS}
    )
    # The highest rung a stage's ladder may reach (severity level); a stage not listed climbs
    # the whole profile. Rungs above the ceiling are left out of that stage's schedule.
    stage_ladder_ceilings: dict[Stage, Rung] = Field(default_factory=_default_stage_ceilings)
    # After a re-set deadline (failed 验收, upheld objection, 初审退回, reopen).
    ladder_resume: LadderResume = LadderResume.REACHED
    # 市委督查室 / 市政府督查室: may propose, confirm and apply rungs (000:427).
    supervision_units: list[str] = Field(default_factory=lambda: ["市委督查室", "市政府督查室"])
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
    # County fan-out and multi-level closure (issue 13, domain/fanout.py, domain/closure_levels.py).
    fanout: FanoutPolicy = Field(default_factory=FanoutPolicy)
    # Issue 13: measure milestones and the monthly progress report as timers (INFERRED values;
    # domain/followup_model.py).
    followup: FollowUpPolicy = Field(default_factory=FollowUpPolicy)

    @model_validator(mode="after")
    def _ceilings_known(self) -> Policy:
        for key, profile in self.ladders.items():
            if key != profile.name:
                raise PolicyError(f"ladder profile {profile.name!r} is filed under the key {key!r}; use one name")
        for stage in self.stage_ladder_ceilings:
            if stage not in self.stage_limits and stage is not Stage.RECTIFYING:
                raise PolicyError(
                    f"stage_ladder_ceilings: stage {stage.value} has no time limit, so no ladder to cap"
                )
        return self

    def ladder(self, name: str) -> LadderProfile:
        try:
            return self.ladders[name]
        except KeyError:
            raise KeyError(f"unknown escalation ladder profile {name!r}") from None


DEFAULT_POLICY = Policy()
