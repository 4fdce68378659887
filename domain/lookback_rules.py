"""Look-back campaign rules: selection, sampling, who records a finding, who reads. Pure.

- Selection: every case in `domain.enums.DONE_STAGES` (closed, long-term maintenance, archived)
  passing the criteria (responsible unit, county, inspection round, programme), sorted by case
  number; optionally a random sample of `sample_size` drawn with a recorded seed: each case gets
  the key sha256("<seed>:<case_no>") and the smallest keys are taken, so the same seed and the
  same candidates always give the same sample, whatever their order or the Python version.
- Who records a finding (inspectors, 000:427, 000:431): the rectification office (from its
  home unit), a supervision office (督查室, from the policy's supervision units), and a lead
  supervising unit (牵头督导单位) on the cases it leads. Nobody else (deny by default).
- Who reads a campaign (deny by default): the office (home unit), supervision offices and
  auditors read all of it; a lead supervising unit reads the header and the items of the cases it
  leads. Responsible units do not see campaigns at all: a 四不两直 visit is unannounced to them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from enum import StrEnum

from domain.enums import DONE_STAGES, Role
from domain.errors import MissingInputError, NotAuthorizedError
from domain.lookback_model import (
    FINDING_LABELS_ZH,
    CampaignFinding,
    CampaignState,
    Candidate,
    Item,
    LookbackPolicy,
    ReopenStatus,
    SelectionCriteria,
)
from domain.model import Actor
from domain.programme_scope import counties_of
from domain.visibility import Reader

DONE = frozenset(s.value for s in DONE_STAGES)


# ---------------------------------------------------------------- selection


def matches(c: Candidate, crit: SelectionCriteria, programme_id: str = "") -> bool:
    if c.stage not in DONE:
        return False
    prog = crit.programme_id or programme_id
    if prog and c.programme_id != prog:
        return False
    if crit.units and not set(crit.units) & set(c.responsible_units):
        return False
    if crit.county and crit.county not in counties_of(c.responsible_units, [crit.county]):
        return False
    if crit.inspection_round and c.inspection_round != crit.inspection_round:
        return False
    return True


def draw_sample(case_nos: Iterable[str], size: int, seed: int) -> list[str]:
    """The `size` case numbers with the smallest sha256("<seed>:<case_no>"), sorted by case number."""
    ordered = sorted(set(case_nos))
    keyed = sorted(ordered, key=lambda n: hashlib.sha256(f"{seed}:{n}".encode()).hexdigest())
    return sorted(keyed[:size])


def select(candidates: Sequence[Candidate], crit: SelectionCriteria, programme_id: str,
           seed: int) -> tuple[list[Candidate], int]:
    """(the selected candidates sorted by case number, the population before sampling)."""
    population = sorted((c for c in candidates if matches(c, crit, programme_id)), key=lambda c: c.case_no)
    if crit.sample_size is None or crit.sample_size >= len(population):
        return population, len(population)
    chosen = set(draw_sample((c.case_no for c in population), crit.sample_size, seed))
    return [c for c in population if c.case_no in chosen], len(population)


# ---------------------------------------------------------------- who acts


def is_office(actor: Actor, policy: LookbackPolicy) -> bool:
    return actor.role is Role.RECTIFICATION_OFFICE and actor.unit == policy.office_unit


def authorize_office(actor: Actor, policy: LookbackPolicy, what: str) -> None:
    if not is_office(actor, policy):
        raise NotAuthorizedError(
            f"{what}: only the rectification office ({policy.office_unit}) may do this; {actor.user_id} acts as "
            f"{actor.role.value} of {actor.unit or 'no unit'}")


def may_inspect(actor: Actor, item: Item, policy: LookbackPolicy) -> bool:
    """May this actor record the finding on this case? (deny by default)"""
    if is_office(actor, policy):
        return True
    if actor.role is Role.SUPERVISION_OFFICE and actor.unit in policy.supervision_units:
        return True
    return actor.role is Role.LEAD_SUPERVISOR and bool(actor.unit) and actor.unit in item.lead_supervising_units


def authorize_finding(actor: Actor, item: Item, policy: LookbackPolicy) -> None:
    if not may_inspect(actor, item, policy):
        raise NotAuthorizedError(
            f"回头看发现 look-back finding on {item.case_no}: only the rectification office, a supervision office "
            f"(督查室) or a lead supervising unit of the case may record it; {actor.user_id} acts as "
            f"{actor.role.value} of {actor.unit or 'no unit'}")


# ---------------------------------------------------------------- who reads


class CampaignRead(StrEnum):
    WHOLE = "WHOLE"  # every item, the ledger, the report
    OWN = "OWN"  # the header and the items of the cases the reader leads


def campaign_read(reader: Reader, policy: LookbackPolicy) -> CampaignRead | None:
    """WHOLE / OWN / None (no campaign at all: 404 like one that does not exist)."""
    best: CampaignRead | None = None
    for role in reader.roles:
        if role is Role.RECTIFICATION_OFFICE and reader.unit == policy.office_unit:
            return CampaignRead.WHOLE
        if role is Role.AUDITOR:
            return CampaignRead.WHOLE
        if role is Role.SUPERVISION_OFFICE and reader.unit in policy.supervision_units:
            return CampaignRead.WHOLE
        if role is Role.LEAD_SUPERVISOR and reader.unit:
            best = CampaignRead.OWN
    return best


def visible_items(reader: Reader, policy: LookbackPolicy, items: Sequence[Item]) -> list[Item]:
    read = campaign_read(reader, policy)
    if read is CampaignRead.WHOLE:
        return list(items)
    if read is CampaignRead.OWN:
        return [i for i in items if reader.unit in i.lead_supervising_units]
    return []


def may_create(reader: Reader, policy: LookbackPolicy) -> bool:
    return Role.RECTIFICATION_OFFICE in reader.roles and reader.unit == policy.office_unit


# ---------------------------------------------------------------- the report's figures


def report_figures(items: Sequence[Item]) -> dict:
    """selected, visited, findings by kind, reopened, referrals proposed, unvisited."""
    by = {f.value: 0 for f in CampaignFinding}
    for i in items:
        if i.finding is not None:
            by[i.finding.value] += 1
    return {
        "selected": len(items),
        "visited": sum(1 for i in items if i.finding is not None),
        "unvisited": sum(1 for i in items if i.finding is None),
        "findings": by,
        "findings_zh": {FINDING_LABELS_ZH[CampaignFinding(k)]: v for k, v in by.items()},
        "reopened": sum(1 for i in items if i.reopen is ReopenStatus.REOPENED),
        "reopen_failed": sum(1 for i in items if i.reopen is ReopenStatus.FAILED),
        "referrals_proposed": sum(1 for i in items if i.referral_proposed is not None),
    }


def require_item(state: CampaignState, case_no: str) -> Item:
    item = state.item(case_no)
    if item is None:
        raise MissingInputError(f"case {case_no} is not selected in look-back campaign {state.campaign_id}")
    return item
