"""County fan-out (issue 13; domain.md §8): one parent case, one child case per responsible unit.

An item assigned to several responsible units (explicitly, or "各县市区…党委、政府" resolved
against the locality's county list, which is configuration read by an activity) is split when the
office transfers it (交办):

* the parent records TRANSFER and FANNED_OUT (the children, the county list and its version) and
  waits in 整改中 with no deadline of its own; no responsible unit acts on it any more
  (`closure_levels.check_actor`);
* each child is an ordinary case `<case_no>.<n>` with one responsible unit, the parent's leads,
  measures, target and deadline, transferred at once by the same office actor; it has its own
  deadline, ladder and closure (its 初审 is the county's self-check, `closure_levels`);
* each child reports its stage to the parent (`ChildStatus`); the parent records CHILD_CLOSED when
  one reaches 销号 or 长期坚持, and when all have, ALL_CHILDREN_CLOSED and enters its own 核查验收
  (city verification), drawing the provincial spot-check sample (SPOT_CHECK_SAMPLED, seed
  recorded). A child reopened meanwhile (CHILD_REOPENED) takes the parent back to waiting.

Which items fan out, and how, is `Policy.fanout` (domain/fanout_types.py). Pure functions.
"""

from __future__ import annotations

from datetime import datetime

from domain import closure_levels as levels
from domain import decide as d
from domain import escalation as esc
from domain.enums import STAGE_LABELS_ZH, Action, Role, Stage
from domain.errors import InvalidFilingError
from domain.fanout_types import (
    DONE_STAGES,
    ChildLink,
    ChildStatus,
    CountyList,
    FanoutState,
    SpotCheckResult,
    SpotCheckSample,
)
from domain.lifecycle import rule_for
from domain.model import SYSTEM_ACTOR, ActionRequest, CaseFiling, CaseState
from domain.policy import Policy
from domain.text import MAX_LINE


def has_county_marker(unit: str, policy: Policy) -> bool:
    return any(m and m in unit for m in policy.fanout.all_counties_markers)


def applies(state: CaseState) -> bool:
    """Whether transferring this case fans it out (before the county list is known)."""
    f, fp = state.filing, state.policy.fanout
    if not fp.enabled or f.kind not in fp.kinds or f.parent_case_no or state.fanout is not None:
        return False
    if any(has_county_marker(u, state.policy) for u in f.responsible_units):
        return True
    return fp.explicit_units and len(f.responsible_units) >= fp.min_children


def resolve_units(filing: CaseFiling, policy: Policy, counties: CountyList) -> list[list[str]]:
    """The shares the item is split into, each a child's responsible units, in order.

    Explicit units come first (one share each under `explicit_units`, else one share together),
    then one share per county for a marker ("各县市区…").

    Raises:
        InvalidFilingError: a marker and no county list to resolve it against.
    """
    explicit: list[str] = []
    county_units: list[str] = []
    for unit in filing.responsible_units:
        if has_county_marker(unit, policy):
            if not counties.counties:
                raise InvalidFilingError(
                    f"case {filing.case_no}: responsible unit {unit!r} stands for every county, but the "
                    f"county list is empty ({counties.source or 'COUNTIES_FILE'}); add the counties or "
                    "amend the case to name its units"
                )
            county_units += [c for c in counties.counties if c not in county_units]
        elif unit not in explicit:
            explicit.append(unit)
    explicit = [u for u in explicit if u not in county_units]
    if policy.fanout.explicit_units:
        shares = [[u] for u in explicit]
    else:
        shares = [explicit] if explicit else []
    return shares + [[c] for c in county_units]


def child_case_no(parent: str, n: int) -> str:
    return f"{parent}.{n}"


def share_label(link: ChildLink) -> str:
    return " / ".join(link.units)


def child_filing(parent: CaseFiling, link: ChildLink) -> CaseFiling:
    """A child's filing: the parent's item for one share (one county, or the city-level units)."""
    label = share_label(link)[:120]
    title = f"{parent.title}({label})"
    if len(title) > MAX_LINE:
        title = f"{parent.title[: MAX_LINE - len(label) - 3]}…({label})"
    return parent.model_copy(update={
        "case_no": link.case_no,
        "title": title,
        "responsible_units": list(link.units),
        "parent_case_no": parent.case_no,
        "jurisdiction": label,
    })


def child_transfer(parent_req: ActionRequest, link: ChildLink) -> ActionRequest:
    """The TRANSFER a child takes at once, by the office actor who transferred the parent."""
    return ActionRequest(
        action=Action.TRANSFER, actor=parent_req.actor,
        request_id=f"{parent_req.request_id[:100]}.fanout.{link.case_no.rsplit('.', 1)[-1]}",
        reason=f"分解交办 fan-out of {link.case_no.rsplit('.', 1)[0]}",
    )


def decide_transfer(state: CaseState, req: ActionRequest, now: datetime, counties: CountyList) -> d.Decision:
    """TRANSFER of an item that fans out (falls back to the ordinary TRANSFER below `min_children`)."""
    d.validate(state, req, now)
    units = resolve_units(state.filing, state.policy, counties)
    if len(units) < state.policy.fanout.min_children:
        return d.decide(state, req, now)
    b = d._Builder(state, now)
    s = b.state
    s.recent_request_ids.append(req.request_id)
    del s.recent_request_ids[: -d.MAX_REMEMBERED_REQUESTS]
    links = [ChildLink(case_no=child_case_no(s.case_no, i), units=u) for i, u in enumerate(units, start=1)]
    s.fanout = FanoutState(children=links, counties=counties, fanned_out_at=now)
    before = s.stage
    s.stage, s.stage_entered_at = Stage.RECTIFYING, now
    # The children carry the deadlines; the responsible units hear of their own child's 交办.
    b.record(Action.TRANSFER.value, req.actor, from_stage=before, to_stage=Stage.RECTIFYING, reason=req.reason,
             request_id=req.request_id, notify=(Role.LEAD_SUPERVISOR, Role.ASSIST_SUPERVISOR), fanned_out=True)
    b.record(
        "FANNED_OUT", req.actor, reason=f"分解为 {len(links)} 个子案件 (fanned out to {len(links)} child cases)",
        children=[c.model_dump(mode="json", include={"case_no", "units"}) for c in links],
        locality=counties.locality, counties=counties.counties, counties_version=counties.version,
        counties_source=counties.source,
    )
    return b.decision()


def _wait_for_children(b: d._Builder) -> None:
    """The parent waits in 整改中 with no deadline of its own (its children carry them)."""
    s = b.state
    esc.on_stage_left(b)
    s.stage, s.stage_entered_at = Stage.RECTIFYING, b.now
    s.deadline = s.deadline_source = s.pending_deadline = None
    s.overdue_reminded = False
    s.extension_request = None


def on_child_status(state: CaseState, status: ChildStatus, now: datetime, seed: int) -> d.Decision | None:
    """A child reported its stage; None when the report is unknown or stale.

    `seed` is the workflow's (deterministic) random draw, used only if the spot-check sample is drawn now.
    """
    fo = state.fanout
    link = fo.child(status.case_no) if fo else None
    if link is None or status.seq <= link.seq:
        return None
    b = d._Builder(state, now)
    s = b.state
    assert s.fanout is not None
    link = s.fanout.child(status.case_no)
    assert link is not None
    was_done = link.done
    link.stage, link.due_date, link.cycle, link.seq = status.stage, status.due_date, status.cycle, status.seq
    link.done = status.stage in DONE_STAGES
    label = f"{link.case_no} {share_label(link)}: {STAGE_LABELS_ZH[status.stage]}"
    if link.done and not was_done:
        b.record("CHILD_CLOSED", SYSTEM_ACTOR, reason=label, child=link.case_no, units=link.units, stage=status.stage)
        if s.fanout.all_done() and s.stage is Stage.RECTIFYING:
            before = s.stage
            d._enter(b, Stage.VERIFICATION)
            b.record("ALL_CHILDREN_CLOSED", SYSTEM_ACTOR, from_stage=before, to_stage=Stage.VERIFICATION,
                     reason="子案件全部销号,进入市级核查 (all child cases closed: city verification)",
                     notify=(Role.LEAD_SUPERVISOR, Role.RECTIFICATION_OFFICE))
            _draw(b, seed)
    elif was_done and not link.done:
        b.record("CHILD_REOPENED", SYSTEM_ACTOR, reason=label, child=link.case_no, units=link.units,
                 stage=status.stage, notify=(Role.RECTIFICATION_OFFICE,))
        if s.stage in (Stage.VERIFICATION, Stage.FILING):
            before = s.stage
            _wait_for_children(b)
            s.fanout.cycle += 1
            b.record("CHILD_REOPENED", SYSTEM_ACTOR, from_stage=before, to_stage=Stage.RECTIFYING,
                     reason=f"{link.case_no} 重新整改,等待子案件销号 (waiting for the child cases again)",
                     child=link.case_no, cycle=s.fanout.cycle)
    return b.decision()


def _draw(b: d._Builder, seed: int) -> None:
    s = b.state
    assert s.fanout is not None
    sc = s.policy.fanout.spot_check
    if not sc.enabled:
        return
    population = [c.case_no for c in s.fanout.children]
    sample = levels.draw_sample(population, sc.rate, sc.minimum, seed)
    s.fanout.samples.append(SpotCheckSample(
        cycle=s.fanout.cycle, seed=seed, rate=sc.rate, minimum=sc.minimum, population=population,
        sample=sample, drawn_at=b.now,
    ))
    b.record("SPOT_CHECK_SAMPLED", SYSTEM_ACTOR,
             reason=f"省级抽查抽样 {len(sample)}/{len(population)}: {', '.join(sample)} (seed {seed})",
             notify=(Role.RECTIFICATION_OFFICE,), seed=seed, rate=sc.rate, minimum=sc.minimum,
             population=population, sample=sample, cycle=s.fanout.cycle,
             rule=levels.SAMPLE_RULE)


def record_spot_check(b: d._Builder, req: ActionRequest) -> None:
    """SPOT_CHECK: the province's result for one sampled child (validated by closure_levels)."""
    s = b.state
    assert s.fanout is not None and req.criteria is not None and req.child_case_no is not None
    sample = s.fanout.current_sample()
    assert sample is not None
    passed = req.criteria.all_met()
    sample.results.append(SpotCheckResult(
        case_no=req.child_case_no, passed=passed, at=b.now, by=req.actor.user_id, unit=req.actor.unit,
        reason=req.reason, evidence=req.evidence,
    ))
    b.record(req.action.value, req.actor, reason=req.reason, request_id=req.request_id,
             notify=rule_for(req.action).notify, child=req.child_case_no, passed=passed, seed=sample.seed,
             criteria=req.criteria.model_dump(mode="json"), evidence=req.evidence)
