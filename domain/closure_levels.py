"""Multi-level closure of a fanned-out item (省级抽查、市级核查、县级自查, 000:581; 003:38, :21).

The levels, on the existing five-step procedure (初审、公示、申请、核查、备案, 000:429):

* **县级自查 county self-check**: a child case's 初审 (PRELIM_REVIEW) is taken by the child's own
  responsible unit (the county) instead of the lead supervising unit, when the policy says so
  (`FanoutPolicy.self_check_by_responsible_unit`). Failing it (PRELIM_REJECT) sends the child
  back to 整改 with a rework deadline, as any 初审退回.
* **市级核查 city verification**: each child's 核查验收 (VERIFICATION) by the first-listed lead
  supervising unit (unchanged), and the parent's own 核查验收 once every child is closed.
* **省级抽查 provincial spot-check**: when the parent enters 核查验收 a sample of its children is
  drawn (`draw_sample`: seed and selection recorded in the ledger, SPOT_CHECK_SAMPLED); the office
  records each sampled child's result (SPOT_CHECK, INFERRED: the engine has no provincial role);
  the parent's VERIFY_PASS waits until every sampled child passed. A failed spot-check is
  followed by the office reopening that child (REOPEN), which takes the parent back to waiting.

A case that is not fanned out has none of this: its rules are the table's (`effective_rule`
returns the rule unchanged), so existing cases and their histories are untouched.

Pure functions; `domain.lifecycle` and `domain.decide` call them through small hooks.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
from typing import TYPE_CHECKING

from domain.enums import Action, Role
from domain.errors import InvalidTransitionError, MissingInputError, NotAuthorizedError

if TYPE_CHECKING:  # only types: domain.lifecycle imports this module
    from domain.lifecycle import Rule
    from domain.model import Actor, CaseState

SELF_CHECK_ACTIONS = frozenset({Action.PRELIM_PASS, Action.PRELIM_REJECT})
# Labels of the levels (console, reports).
LEVEL_LABELS = {
    "COUNTY_SELF_CHECK": "县级自查 County self-check",
    "CITY_VERIFICATION": "市级核查 City verification",
    "PROVINCIAL_SPOT_CHECK": "省级抽查 Provincial spot-check",
}


def is_child(state: CaseState) -> bool:
    return bool(state.filing.parent_case_no)


def is_parent(state: CaseState) -> bool:
    return state.fanout is not None


def effective_rule(state: CaseState, rule: Rule) -> Rule:
    """The lifecycle rule as it applies to this case (unchanged unless fanned out)."""
    if is_child(state) and rule.action in SELF_CHECK_ACTIONS and state.policy.fanout.self_check_by_responsible_unit:
        return dataclasses.replace(rule, roles=frozenset({Role.RESPONSIBLE_UNIT}))
    if is_parent(state):
        if rule.action is Action.VERIFY_PASS:
            return dataclasses.replace(rule, requires=(*rule.requires, "spot_checks_passed"))
        if rule.action is Action.VERIFY_FAIL:
            return dataclasses.replace(rule, requires=(*rule.requires, "not_fanned_out"))
    if rule.action is Action.SPOT_CHECK and not is_parent(state):
        return dataclasses.replace(rule, requires=(*rule.requires, "fanned_out"))
    return rule


def check_actor(state: CaseState, actor: Actor) -> None:
    """After fan-out each unit acts on its own child case only, never on the parent."""
    if is_parent(state) and actor.role is Role.RESPONSIBLE_UNIT:
        own = state.fanout.child_of(actor.unit)  # type: ignore[union-attr]
        where = f"act on your own child case {own.case_no}" if own else "it has no child case of your unit"
        raise NotAuthorizedError(
            f"case {state.case_no} is fanned out to its child cases (分解到县市区); {where}"
        )


def check_precondition(state: CaseState, cond: str) -> bool:
    """Check a precondition named by `effective_rule`; False when the name is not ours."""
    fo = state.fanout
    match cond:
        case "fanned_out":
            if fo is None:
                raise InvalidTransitionError(f"case {state.case_no} is not fanned out; it has no spot-check")
        case "spot_check_pending":
            sample = fo.current_sample() if fo else None
            if sample is None or not sample.pending():
                raise InvalidTransitionError("no sampled child case awaits its provincial spot-check (省级抽查)")
        case "spot_checks_passed":
            sample = fo.current_sample() if fo else None
            if sample is not None and (pending := sample.pending()):
                raise InvalidTransitionError(
                    f"the provincial spot-check (省级抽查) of {', '.join(pending)} is not recorded yet"
                )
            if sample is not None and (failed := sample.failed()):
                raise InvalidTransitionError(
                    f"the provincial spot-check (省级抽查) of {', '.join(failed)} failed; "
                    "the office reopens that child case (REOPEN)"
                )
        case "not_fanned_out":
            if fo is not None:
                raise InvalidTransitionError(
                    f"case {state.case_no} is fanned out: city verification fails per county, by the "
                    "office reopening that county's child case (REOPEN); the parent then waits for it"
                )
        case _:
            return False
    return True


def check_spot_check(state: CaseState, child_case_no: str | None, criteria_met: bool | None) -> None:
    """Payload of SPOT_CHECK: a sampled child without a result yet, and a verdict."""
    fo = state.fanout
    sample = fo.current_sample() if fo else None
    if sample is None:
        raise InvalidTransitionError(f"case {state.case_no} has no spot-check sample drawn")
    if child_case_no not in sample.sample:
        raise MissingInputError(
            f"child case {child_case_no} is not in the spot-check sample ({', '.join(sample.sample) or 'empty'})"
        )
    if child_case_no not in sample.pending():
        raise InvalidTransitionError(f"the spot-check of {child_case_no} is already recorded")
    if criteria_met is None:
        raise MissingInputError("SPOT_CHECK needs criteria (met: passed; any unmet: failed)")


def sample_size(population: int, rate: float, minimum: int) -> int:
    """How many children the spot-check draws: ceil(rate × n), at least `minimum`, at most n."""
    if population <= 0:
        return 0
    return min(population, max(minimum, math.ceil(rate * population - 1e-9)))


SAMPLE_RULE = "the k case numbers with the smallest sha256(f'{seed}:{case_no}'), k = ceil(rate × n) ≥ minimum"


def draw_sample(population: list[str], rate: float, minimum: int, seed: int) -> list[str]:
    """The spot-check sample: deterministic for a seed (the seed is recorded; anyone can redraw it).

    Each child gets the key sha256("<seed>:<case_no>"); the k smallest keys are drawn. The draw
    depends only on the set of children and the seed, not on their order or on a library's PRNG.
    """
    k = sample_size(len(population), rate, minimum)
    keyed = sorted(set(population), key=lambda c: hashlib.sha256(f"{seed}:{c}".encode()).hexdigest())
    return sorted(keyed[:k])
