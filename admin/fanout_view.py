"""The console's view of county fan-out and multi-level closure (issue 13), for `admin.readmodel`.

* Labels: a child case's 初审 is its county's self-check (县级自查), a parent's 核查验收 is the city
  verification (市级核查), and the spot-check of a sampled child is the province's (省级抽查)
  (`domain.closure_levels.LEVEL_LABELS`).
* The parent's page lists its children: each child row only as far as the reader sees that child
  (each child is scoped as a case of its own, `domain.visibility`), so a county sees its own child
  and not the other counties'. The fan-out summary (county list, spot-check seed, rate and
  population, which name every child) needs the CHILDREN part of the parent.

Pure helpers over projection rows and the parent's recorded `fanout` (projection `detail`); the
read model does the SQL.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from domain.closure_levels import LEVEL_LABELS
from domain.enums import Stage
from domain.visibility import Part

# SQL expressions added to the read model's list columns (case_projection).
FANOUT_COLUMNS = """coalesce(filing->>'parent_case_no', '') AS parent_case_no,
    coalesce(jsonb_typeof(detail->'fanout') = 'object', FALSE) AS is_parent,
    jsonb_path_query_array(detail, '$.fanout.children[*].units[*]') AS child_units"""
# A case whose children name the unit $n as responsible (the parent of a county's child).
CHILD_RESPONSIBLE_SQL = "jsonb_path_exists(detail, '$.fanout.children[*].units[*] ? (@ == $u)', jsonb_build_object('u', {arg}::text))"
CHILDREN_SQL = "filing->>'parent_case_no' = {arg}"
IS_CHILD_SQL = "coalesce(filing->>'parent_case_no', '') <> ''"


def _split(label: str) -> tuple[str, str]:
    zh, _, en = label.partition(" ")
    return zh, en


def closure_level(stage: str, parent_case_no: str, is_parent: bool) -> str:
    """Which closure level a case's stage is, if any (a child's 初审, a parent's 核查验收).

    A child's 初审 is labelled the county self-check as the built-in fan-out policy has it
    (`self_check_by_responsible_unit`); the projection does not carry the case's policy."""
    if parent_case_no and stage == Stage.PRELIM_REVIEW.value:
        return "COUNTY_SELF_CHECK"
    if is_parent and stage == Stage.VERIFICATION.value:
        return "CITY_VERIFICATION"
    return ""


def label_row(d: dict[str, Any]) -> None:
    """Set the closure level of a full row and its stage label (in place)."""
    if "is_parent" not in d:  # a whole projection row (SELECT *), not a list row
        d["is_parent"] = isinstance((d.get("detail") or {}).get("fanout"), dict)
        d["parent_case_no"] = (d.get("filing") or {}).get("parent_case_no") or ""
    d["parent_case_no"] = d.get("parent_case_no") or ""
    d["is_parent"] = bool(d.get("is_parent"))
    level = closure_level(str(d.get("stage") or ""), d["parent_case_no"], d["is_parent"])
    d["closure_level"] = level
    d["closure_level_en"] = ""
    if level:
        d["stage_zh"], d["closure_level_en"] = _split(LEVEL_LABELS[level])


def child_units(r: Mapping[str, Any], detail: Mapping[str, Any] | None) -> tuple[str, ...]:
    """The responsible units of a parent's children, from a list row or the projection's detail."""
    units = r.get("child_units")
    if isinstance(units, str):
        import json

        units = json.loads(units)
    if units is None:
        children = ((detail or {}).get("fanout") or {}).get("children") or []
        units = [u for c in children for u in c.get("units") or ()]
    return tuple(units or ())


def spot_check(fanout: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The current cycle's spot-check sample (省级抽查) of a parent, or None before it is drawn."""
    if not fanout:
        return None
    cycle = fanout.get("cycle", 1)
    samples = [s for s in fanout.get("samples") or [] if s.get("cycle") == cycle]
    return samples[-1] if samples else None


def annotate_children(rows: list[dict[str, Any]], fanout: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """The child rows the reader sees, each with its spot-check (省级抽查) status."""
    sample = spot_check(fanout)
    results = {r["case_no"]: r for r in (sample or {}).get("results") or []}
    for row in rows:
        no = row["case_no"]
        if sample is None:
            row["spot_check"], row["spot_check_zh"] = "NOT_DRAWN", "未抽样 not drawn yet"
        elif no not in sample.get("sample", []):
            row["spot_check"], row["spot_check_zh"] = "NOT_SAMPLED", "未抽中 not sampled"
        elif no not in results:
            row["spot_check"], row["spot_check_zh"] = "PENDING", "抽中·待录入结果 sampled, result pending"
        elif results[no].get("passed"):
            row["spot_check"], row["spot_check_zh"] = "PASSED", "抽查通过 passed"
        else:
            row["spot_check"], row["spot_check_zh"] = "FAILED", "抽查未通过 failed"
    return rows


def fanout_summary(fanout: Mapping[str, Any] | None, parts: frozenset[Part]) -> dict[str, Any] | None:
    """The parent's fan-out summary, for readers granted CHILDREN on the parent (it names every child)."""
    if not fanout or Part.CHILDREN not in parts:
        return None
    sample = spot_check(fanout)
    counties = fanout.get("counties") or {}
    return {
        "children": [c.get("case_no") for c in fanout.get("children") or []],
        "locality": counties.get("locality", ""),
        "counties_version": counties.get("version", ""),
        "fanned_out_at": fanout.get("fanned_out_at"),
        "cycle": fanout.get("cycle", 1),
        "spot_check": None if sample is None else {
            "label": LEVEL_LABELS["PROVINCIAL_SPOT_CHECK"],
            "seed": sample.get("seed"), "rate": sample.get("rate"), "minimum": sample.get("minimum"),
            "population": sample.get("population", []), "sample": sample.get("sample", []),
            "drawn_at": sample.get("drawn_at"),
            "results": sample.get("results", []),
        },
    }
