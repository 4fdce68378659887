"""County fan-out and multi-level closure (issue 13): domain/fanout.py, domain/closure_levels.py."""

from __future__ import annotations

from datetime import timedelta

import pytest

from domain import closure_levels as levels
from domain import fanout
from domain.decide import check_filing, decide
from domain.enums import Action, Role, Stage
from domain.errors import InvalidFilingError, InvalidTransitionError, MissingInputError, NotAuthorizedError
from domain.fanout_types import ChildStatus, CountyList, FanoutPolicy, SpotCheckPolicy
from domain.lifecycle import RULES, allowed_actions
from domain.model import Actor, CaseState
from domain.policy import Policy
from tests.unit.factories import (
    LEAD,
    NOW,
    OFFICE,
    act,
    criteria,
    make_filing,
    new_state,
    request,
    settle,
)

COUNTIES = CountyList(locality="xx市", counties=["蓝山县委、县政府", "祁阳市委、市政府", "宁远县委、县政府"],
                      version="sha256:test", source="counties.json")
CITY = "市发改委"
MARKER = "各县市区党委、政府"


def fanout_policy(**kw: object) -> Policy:
    return Policy(fanout=FanoutPolicy(enabled=True, **kw))  # type: ignore[arg-type]


def county(unit: str) -> Actor:
    return Actor(user_id=f"u-{unit}", role=Role.RESPONSIBLE_UNIT, unit=unit)


def parent_state(policy: Policy | None = None, units: list[str] | None = None) -> CaseState:
    return new_state(make_filing(case_no="FB-02", responsible_units=units or [CITY, MARKER]),
                     policy or fanout_policy())


def fanned(policy: Policy | None = None) -> CaseState:
    s = parent_state(policy)
    return fanout.decide_transfer(s, request(Action.TRANSFER, OFFICE), NOW, COUNTIES).state


def report(s: CaseState, case_no: str, stage: Stage, seq: int, seed: int = 7, at=NOW) -> CaseState:
    d = fanout.on_child_status(s, ChildStatus(case_no=case_no, stage=stage, seq=seq), at, seed)
    assert d is not None
    return settle(d, at)


def all_closed(s: CaseState, seed: int = 7) -> CaseState:
    for i, c in enumerate(s.fanout.children, start=1):  # type: ignore[union-attr]
        s = report(s, c.case_no, Stage.CLOSED, seq=100 + i, seed=seed)
    return s


# ------------------------------------------------------------------ which items fan out


def test_fan_out_is_policy_data_and_off_in_the_built_in_policy():
    assert not fanout.applies(parent_state(Policy()))
    assert fanout.applies(parent_state())
    # Explicit units only (jointly responsible) are split only when the policy says so.
    assert not fanout.applies(parent_state(units=["市委", "市政府"]))
    assert fanout.applies(parent_state(fanout_policy(explicit_units=True), units=["市委", "市政府"]))
    # Kinds are policy too; a child never fans out again.
    assert not fanout.applies(parent_state(fanout_policy(kinds=[])))
    child = new_state(make_filing(case_no="FB-02.1", parent_case_no="FB-02", responsible_units=[CITY, MARKER]),
                      fanout_policy())
    assert not fanout.applies(child)


def test_the_marker_resolves_against_the_county_list():
    f = make_filing(responsible_units=[CITY, "市工信局", MARKER])
    shares = fanout.resolve_units(f, fanout_policy(), COUNTIES)
    assert shares == [[CITY, "市工信局"], *([c] for c in COUNTIES.counties)]
    each = fanout.resolve_units(f, fanout_policy(explicit_units=True), COUNTIES)
    assert each[:2] == [[CITY], ["市工信局"]] and len(each) == 5
    # "各相关县市区" is not a marker by default: which counties are relevant is the office's call.
    assert not fanout.has_county_marker("各相关县市区党委、政府", fanout_policy())


def test_an_empty_county_list_is_refused_by_name():
    with pytest.raises(InvalidFilingError, match="county list is empty"):
        fanout.resolve_units(make_filing(responsible_units=[MARKER]), fanout_policy(), CountyList(source="x.json"))


# ------------------------------------------------------------------ the transfer


def test_transfer_splits_the_item_and_records_the_county_list():
    s0 = parent_state()
    d = fanout.decide_transfer(s0, request(Action.TRANSFER, OFFICE, reason="交办"), NOW, COUNTIES)
    s = d.state
    assert [e.event for e in d.entries] == ["TRANSFER", "FANNED_OUT"]
    assert d.entries[0].from_stage is Stage.REGISTERED and d.entries[0].to_stage is Stage.RECTIFYING
    data = d.entries[1].data
    assert data["counties"] == COUNTIES.counties and data["counties_version"] == "sha256:test"
    assert [c["case_no"] for c in data["children"]] == ["FB-02.1", "FB-02.2", "FB-02.3", "FB-02.4"]
    # The parent waits without a deadline; no notice goes to the marker as if it were a unit.
    assert s.stage is Stage.RECTIFYING and s.deadline is None and d.deadline_request is None
    assert all(n.recipient_unit != MARKER for n in d.notices)
    assert s.fanout is not None and s.fanout.children[1].units == ["蓝山县委、县政府"]


def test_below_min_children_the_transfer_is_the_ordinary_one():
    s = parent_state(units=[MARKER])
    one = CountyList(counties=["蓝山县委、县政府"], version="v")
    d = fanout.decide_transfer(s, request(Action.TRANSFER, OFFICE), NOW, one)
    assert d.state.stage is Stage.TRANSFERRED and d.state.fanout is None


def test_child_filing_is_one_share_of_the_item():
    s = fanned()
    link = s.fanout.children[1]  # type: ignore[union-attr]
    f = fanout.child_filing(s.filing, link)
    assert f.case_no == "FB-02.2" and f.parent_case_no == "FB-02"
    assert f.responsible_units == ["蓝山县委、县政府"] and f.lead_supervising_units == s.filing.lead_supervising_units
    assert f.deadline == s.filing.deadline and f.measures == s.filing.measures
    check_filing(f, s.policy)
    with pytest.raises(InvalidFilingError, match="starts with its parent's"):
        check_filing(f.model_copy(update={"case_no": "OTHER-1"}), s.policy)


def test_after_fan_out_a_county_acts_only_on_its_own_child():
    s = fanned()
    with pytest.raises(NotAuthorizedError, match="act on your own child case FB-02.1"):
        decide(s, request(Action.REPORT_PROGRESS, county(CITY), reason="进展"), NOW)
    assert allowed_actions(s, county(CITY)) == []


# ------------------------------------------------------------------ county self-check (自查)


def child_in_self_check() -> CaseState:
    f = make_filing(case_no="FB-02.2", parent_case_no="FB-02", responsible_units=["蓝山县委、县政府"])
    s = new_state(f, fanout_policy())
    ru = county("蓝山县委、县政府")
    s = act(s, Action.TRANSFER, OFFICE)
    s = act(s, Action.ACKNOWLEDGE, ru)
    return act(s, Action.SUBMIT_COMPLETION, ru)


def test_the_county_takes_its_own_self_check_and_the_lead_does_not():
    s = child_in_self_check()
    ru = county("蓝山县委、县政府")
    assert Action.PRELIM_PASS in allowed_actions(s, ru)
    with pytest.raises(NotAuthorizedError):
        decide(s, request(Action.PRELIM_PASS, LEAD), NOW)
    with pytest.raises(NotAuthorizedError):  # another county may not
        decide(s, request(Action.PRELIM_PASS, county("祁阳市委、市政府")), NOW)
    failed = act(s, Action.PRELIM_REJECT, ru, reason="自查发现管网未完工")
    assert failed.stage is Stage.RECTIFYING and failed.cycle == 2 and failed.deadline is not None
    assert act(s, Action.PRELIM_PASS, ru).stage is Stage.PUBLIC_POSTING


def test_a_case_not_fanned_out_keeps_the_table_rules():
    s = new_state(make_filing(), fanout_policy())
    assert all(levels.effective_rule(s, r) is r for r in RULES if r.action is not Action.SPOT_CHECK)
    with pytest.raises(InvalidTransitionError):
        levels.check_precondition(s, "fanned_out")


# ------------------------------------------------------------------ following the children


def test_children_closing_at_different_times_then_city_verification_and_the_sample():
    s = fanned()
    s = report(s, "FB-02.2", Stage.RECTIFYING, seq=5)
    assert s.fanout.child("FB-02.2").stage is Stage.RECTIFYING  # type: ignore[union-attr]
    s = report(s, "FB-02.2", Stage.CLOSED, seq=20)
    assert s.stage is Stage.RECTIFYING and s.timeline[-1].event == "CHILD_CLOSED"
    # A stale or unknown report changes nothing.
    assert fanout.on_child_status(s, ChildStatus(case_no="FB-02.2", stage=Stage.RECTIFYING, seq=3), NOW, 1) is None
    assert fanout.on_child_status(s, ChildStatus(case_no="FB-99.1", stage=Stage.CLOSED, seq=3), NOW, 1) is None
    later = NOW + timedelta(days=30)
    for i, no in enumerate(["FB-02.1", "FB-02.3", "FB-02.4"]):
        s = report(s, no, Stage.LONG_TERM_MAINTENANCE if i == 0 else Stage.CLOSED, seq=30, seed=4242, at=later)
    assert s.stage is Stage.VERIFICATION and s.deadline is not None
    events = [t.event for t in s.timeline]
    assert events[-4:-1] == ["CHILD_CLOSED", "ALL_CHILDREN_CLOSED", "SPOT_CHECK_SAMPLED"]
    sample = s.fanout.current_sample()  # type: ignore[union-attr]
    assert sample is not None and sample.seed == 4242 and len(sample.sample) == 2  # ceil(0.3 × 4)
    assert sample.sample == levels.draw_sample(sample.population, 0.3, 1, 4242)


def test_spot_check_gates_city_verification():
    s = all_closed(fanned())
    sample = s.fanout.current_sample()  # type: ignore[union-attr]
    assert sample is not None
    first, second = sample.sample
    outside = next(c.case_no for c in s.fanout.children if c.case_no not in sample.sample)  # type: ignore[union-attr]
    with pytest.raises(MissingInputError, match="not in the spot-check sample"):
        decide(s, request(Action.SPOT_CHECK, OFFICE, child_case_no=outside, criteria=criteria()), NOW)
    with pytest.raises(InvalidTransitionError, match="not recorded yet"):
        decide(s, request(Action.VERIFY_PASS, LEAD, criteria=criteria()), NOW)
    with pytest.raises(NotAuthorizedError):  # the office records the province's result
        decide(s, request(Action.SPOT_CHECK, LEAD, child_case_no=first, criteria=criteria()), NOW)
    s = act(s, Action.SPOT_CHECK, OFFICE, child_case_no=first, criteria=criteria(), reason="省级抽查合格")
    with pytest.raises(InvalidTransitionError, match="already recorded"):
        decide(s, request(Action.SPOT_CHECK, OFFICE, child_case_no=first, criteria=criteria()), NOW)
    failed = act(s, Action.SPOT_CHECK, OFFICE, child_case_no=second, criteria=criteria(met=False, evidence=False),
                 reason="抽查发现反弹")
    with pytest.raises(InvalidTransitionError, match="failed"):
        decide(failed, request(Action.VERIFY_PASS, LEAD, criteria=criteria()), NOW)
    passed = act(s, Action.SPOT_CHECK, OFFICE, child_case_no=second, criteria=criteria())
    assert passed.timeline[-1].event == "SPOT_CHECK"
    # City verification of a fanned-out item fails per county (REOPEN of that child), not here.
    with pytest.raises(InvalidTransitionError, match="reopening"):
        decide(passed, request(Action.VERIFY_FAIL, LEAD, reason="不合格"), NOW)
    done = act(act(passed, Action.VERIFY_PASS, LEAD, criteria=criteria()), Action.RECORD_FILING, OFFICE)
    assert done.stage is Stage.CLOSED


def test_a_child_reopened_takes_the_parent_back_and_a_new_sample_is_drawn():
    s = all_closed(fanned(), seed=11)
    failed = s.fanout.current_sample().sample[0]  # type: ignore[union-attr]
    s = report(s, failed, Stage.RECTIFYING, seq=500)
    assert s.stage is Stage.RECTIFYING and s.deadline is None and s.fanout.cycle == 2  # type: ignore[union-attr]
    s = report(s, failed, Stage.CLOSED, seq=600, seed=12)
    assert s.stage is Stage.VERIFICATION
    assert [x.seed for x in s.fanout.samples] == [11, 12] and s.fanout.current_sample().cycle == 2  # type: ignore[union-attr]


def test_no_spot_check_when_the_policy_has_none():
    s = all_closed(fanned(fanout_policy(spot_check=SpotCheckPolicy(enabled=False))))
    assert s.stage is Stage.VERIFICATION and s.fanout.samples == []  # type: ignore[union-attr]
    assert act(s, Action.VERIFY_PASS, LEAD, criteria=criteria()).stage is Stage.FILING


@pytest.mark.parametrize(("n", "rate", "minimum", "k"), [(4, 0.3, 1, 2), (10, 0.2, 1, 2), (3, 0.0, 1, 1),
                                                          (2, 0.0, 5, 2), (0, 0.5, 1, 0), (5, 1.0, 0, 5)])
def test_sample_size(n: int, rate: float, minimum: int, k: int):
    assert levels.sample_size(n, rate, minimum) == k


def test_the_draw_depends_only_on_the_seed_and_the_set():
    pop = [f"FB-02.{i}" for i in range(1, 11)]
    a = levels.draw_sample(pop, 0.3, 1, 99)
    assert a == levels.draw_sample(list(reversed(pop)), 0.3, 1, 99) and len(a) == 3 and a == sorted(a)
    assert {tuple(levels.draw_sample(pop, 0.3, 1, seed)) for seed in range(20)} != {tuple(a)}
