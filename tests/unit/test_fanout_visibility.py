"""Read scoping of fanned-out items (issue 13) and the console's closure-level labels. Pure."""

from __future__ import annotations

from admin import fanout_view as fv
from domain.enums import Role
from domain.visibility import CaseFacts, HomeUnits, Part, Reader, Scope, parts_for, scopes_of

HOME = HomeUnits(office="整改办", discipline="纪委监委")
COUNTY, OTHER = "蓝山县人民政府", "宁远县人民政府"
PARENT = CaseFacts(stage="RECTIFYING", responsible_units=("市城管执法局", "各县市区党委、政府"),
                   lead_supervising_units=("市生态环境局",), child_units=("市城管执法局", COUNTY, OTHER))
OWN_CHILD = CaseFacts(stage="PRELIM_REVIEW", responsible_units=(COUNTY,), lead_supervising_units=("市生态环境局",))
OTHER_CHILD = CaseFacts(stage="RECTIFYING", responsible_units=(OTHER,), lead_supervising_units=("市生态环境局",))


def reader(unit: str, *roles: Role) -> Reader:
    return Reader(user_id="u", unit=unit, roles=roles)


def test_a_county_sees_the_parent_of_its_child_in_summary_and_not_the_other_counties_children() -> None:
    county = reader(COUNTY, Role.RESPONSIBLE_UNIT)
    assert parts_for(county, PARENT, HOME) == {Part.SUMMARY}
    assert Part.CHILDREN not in parts_for(county, OWN_CHILD, HOME) and Part.DEADLINE in parts_for(county, OWN_CHILD, HOME)
    assert parts_for(county, OTHER_CHILD, HOME) == frozenset()
    # Not a child's unit: the parent is not there at all (deny by default).
    assert parts_for(reader("江华县人民政府", Role.RESPONSIBLE_UNIT), PARENT, HOME) == frozenset()
    # A lead supervising unit of a child does not get the parent through CHILD_RESPONSIBLE.
    assert parts_for(reader(COUNTY, Role.LEAD_SUPERVISOR), PARENT, HOME) == frozenset()


def test_the_city_level_share_sees_the_parents_record_but_not_its_fan_out_section() -> None:
    city = reader("市城管执法局", Role.RESPONSIBLE_UNIT)
    parts = parts_for(city, PARENT, HOME)
    assert Part.RECORD in parts and Part.CHILDREN not in parts


def test_the_office_supervision_offices_and_leads_see_every_child_and_the_fan_out_section() -> None:
    for r in (reader("整改办", Role.RECTIFICATION_OFFICE), reader("市委督查室", Role.SUPERVISION_OFFICE),
              reader("市生态环境局", Role.LEAD_SUPERVISOR), reader("审计组", Role.AUDITOR)):
        assert Part.CHILDREN in parts_for(r, PARENT, HOME), r.roles
        assert parts_for(r, OWN_CHILD, HOME) and parts_for(r, OTHER_CHILD, HOME), r.roles
    assert parts_for(reader("", Role.PUBLIC), PARENT, HOME) == frozenset()


def test_filters_and_figures_run_over_full_scopes_only() -> None:
    county = reader(COUNTY, Role.RESPONSIBLE_UNIT)
    assert Scope.CHILD_RESPONSIBLE in scopes_of(county, HOME)
    assert scopes_of(county, HOME, limited=False) == {Scope.RESPONSIBLE}


def test_closure_level_labels() -> None:
    child = {"stage": "PRELIM_REVIEW", "parent_case_no": "FO-1", "is_parent": False, "stage_zh": "初审"}
    fv.label_row(child)
    assert (child["stage_zh"], child["closure_level_en"], child["closure_level"]) == (
        "县级自查", "County self-check", "COUNTY_SELF_CHECK")
    parent = {"stage": "VERIFICATION", "detail": {"fanout": {"children": []}}, "filing": {}, "stage_zh": "核查验收"}
    fv.label_row(parent)
    assert (parent["stage_zh"], parent["closure_level_en"]) == ("市级核查", "City verification")
    plain = {"stage": "PRELIM_REVIEW", "parent_case_no": "", "is_parent": False, "stage_zh": "初审"}
    fv.label_row(plain)
    assert plain["stage_zh"] == "初审" and plain["closure_level"] == ""


def test_children_rows_carry_their_provincial_spot_check() -> None:
    fanout = {"cycle": 2, "samples": [
        {"cycle": 1, "sample": ["P.1"], "results": []},
        {"cycle": 2, "seed": 7, "rate": 0.5, "minimum": 1, "population": ["P.1", "P.2", "P.3"],
         "sample": ["P.1", "P.2"], "results": [{"case_no": "P.1", "passed": False}]}]}
    rows = fv.annotate_children([{"case_no": "P.1"}, {"case_no": "P.2"}, {"case_no": "P.3"}], fanout)
    assert [r["spot_check"] for r in rows] == ["FAILED", "PENDING", "NOT_SAMPLED"]
    assert fv.annotate_children([{"case_no": "P.1"}], {"cycle": 1, "samples": []})[0]["spot_check"] == "NOT_DRAWN"
    summary = fv.fanout_summary(fanout, frozenset({Part.SUMMARY, Part.CHILDREN}))
    assert summary is not None and summary["spot_check"]["seed"] == 7
    assert summary["spot_check"]["label"] == "省级抽查 Provincial spot-check"
    assert fv.fanout_summary(fanout, frozenset({Part.SUMMARY})) is None  # it names every child
