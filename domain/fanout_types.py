"""Data of county fan-out and multi-level closure (issue 13): policy, county list, case state.

Only pydantic models here, importing nothing of the domain but enums and text types, so that
`domain.policy` and `domain.model` can hold them. The rules are in `domain.fanout` (splitting an
item, following its children) and `domain.closure_levels` (self-check, city verification,
provincial spot-check).
"""

from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel, Field

from domain import enums
from domain.enums import CaseKind, Stage
from domain.text import MAX_ITEMS, Name, Reason, Refs


class SpotCheckPolicy(BaseModel):
    """Provincial spot-check (省级抽查, 000:581) of a fanned-out item's children (INFERRED sizes)."""

    enabled: bool = True
    rate: float = Field(default=0.3, ge=0.0, le=1.0)  # share of the children drawn
    minimum: int = Field(default=1, ge=0)  # at least this many (never more than there are)


class FanoutPolicy(BaseModel):
    """Which items become a parent case with one child case per responsible unit (domain.md §8).

    Policy data, not code: the markers that stand for "every county of the locality", whether an
    item naming several units explicitly fans out too, and the closure levels of the children.
    """

    # Off in the built-in policy (a deployment turns it on in its POLICY_FILE): with it on, the
    # TRANSFER of a matching item no longer yields one TRANSFERRED case (README, "County fan-out").
    enabled: bool = False
    kinds: list[CaseKind] = Field(default_factory=lambda: [CaseKind.FEEDBACK_PROBLEM, CaseKind.WARNING_FILM])
    # A responsible unit whose name contains one of these stands for every county of the
    # locality's list (000:386, 436, 450: "各县市区…党委、政府"). "各相关县市区" (only the relevant
    # ones) is not a marker by default: which counties are relevant is not in the seeds, so the
    # office names them (AMEND) and `explicit_units` splits the item among them.
    all_counties_markers: list[str] = Field(default_factory=lambda: ["各县市区"])
    # Units named explicitly get one child each. Off: the explicit units of an item that names
    # "各县市区" share one child (the city-level share, e.g. 市发改委), and an item naming only
    # explicit units (jointly responsible, e.g. 市委、市政府) is not split.
    explicit_units: bool = False
    # Fan out only when the item resolves to at least this many units.
    min_children: int = Field(default=2, ge=2)
    # A child's 初审 is the county's own self-check (县级自查, 000:581), taken by the child's
    # responsible unit instead of the lead supervising unit (domain.md §4.2 PRELIM_REVIEW note).
    self_check_by_responsible_unit: bool = True
    spot_check: SpotCheckPolicy = Field(default_factory=SpotCheckPolicy)


class CountyList(BaseModel):
    """The locality's counties (configuration, read by an activity and recorded in the ledger)."""

    locality: str = ""
    counties: list[str] = Field(default_factory=list)
    version: str = ""  # the source file's hash: which list a fan-out used
    source: str = ""


class ChildStatus(BaseModel):
    """What a child case reports to its parent (signal `child_update`) on each change."""

    case_no: str
    stage: Stage
    due_date: date | None = None
    cycle: int = 1
    seq: int = 0


class ChildLink(BaseModel):
    """One child case of a fanned-out item, as the parent last heard of it."""

    case_no: str
    units: list[Name]  # its responsible unit(s): one county, or the city-level units together
    stage: Stage = Stage.REGISTERED
    due_date: date | None = None
    cycle: int = 1
    done: bool = False  # CLOSED, LONG_TERM_MAINTENANCE (or ARCHIVED)
    seq: int = 0  # the child's ledger seq of the last report (older reports are ignored)


class SpotCheckResult(BaseModel):
    case_no: str
    passed: bool
    at: datetime
    by: str
    unit: str = ""
    reason: Reason = ""
    evidence: Refs = Field(default_factory=list)


class SpotCheckSample(BaseModel):
    """One drawing of the provincial spot-check sample: seed and selection recorded."""

    cycle: int
    seed: int
    rate: float
    minimum: int
    population: list[str]
    sample: list[str]
    drawn_at: datetime
    results: list[SpotCheckResult] = Field(default_factory=list)

    def pending(self) -> list[str]:
        done = {r.case_no for r in self.results}
        return [c for c in self.sample if c not in done]

    def failed(self) -> list[str]:
        return [r.case_no for r in self.results if not r.passed]


class FanoutState(BaseModel):
    """The parent side of a fanned-out item (None on every other case)."""

    children: list[ChildLink] = Field(default_factory=list, max_length=MAX_ITEMS)
    counties: CountyList = Field(default_factory=CountyList)
    fanned_out_at: datetime | None = None
    cycle: int = 1  # +1 each time a child reopens after all were done
    samples: list[SpotCheckSample] = Field(default_factory=list)

    def child_of(self, unit: str) -> ChildLink | None:
        return next((c for c in self.children if unit in c.units), None)

    def all_done(self) -> bool:
        return bool(self.children) and all(c.done for c in self.children)

    def current_sample(self) -> SpotCheckSample | None:
        return next((s for s in reversed(self.samples) if s.cycle == self.cycle), None)

    def child(self, case_no: str) -> ChildLink | None:
        return next((c for c in self.children if c.case_no == case_no), None)


DONE_STAGES = enums.DONE_STAGES  # domain/enums.py
