"""Who reads what of a programme, and which county a case counts for. Pure.

A table keyed by role, deny by default (like domain.visibility): the office (from its home
unit), the supervision offices (督查室) and auditors see the whole programme: every unit's and
county's figures, the six-month report and its escalations, the programme ledger. A unit
working on cases (responsible, lead or assisting supervising unit) sees the programme's header
and its OWN figures only: the cases where its unit stands in the role's place. Everyone else
(the public, the discipline commission, a role without a rule) sees no programme at all.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from enum import StrEnum

from domain.enums import Role
from domain.visibility import HomeUnits, Reader, Scope


class ProgrammeRead(StrEnum):
    WHOLE = "WHOLE"  # every figure, the report, the ledger
    OWN = "OWN"  # the header and the figures of the reader's own cases


# role -> (what it reads, the case scope that makes a case its own, the home unit it must read from)
PROGRAMME_READ_RULES: dict[Role, tuple[ProgrammeRead, Scope | None, str]] = {
    Role.RECTIFICATION_OFFICE: (ProgrammeRead.WHOLE, None, "office"),
    Role.SUPERVISION_OFFICE: (ProgrammeRead.WHOLE, None, ""),
    Role.AUDITOR: (ProgrammeRead.WHOLE, None, ""),
    Role.RESPONSIBLE_UNIT: (ProgrammeRead.OWN, Scope.RESPONSIBLE, ""),
    Role.LEAD_SUPERVISOR: (ProgrammeRead.OWN, Scope.LEAD, ""),
    Role.ASSIST_SUPERVISOR: (ProgrammeRead.OWN, Scope.ASSIST, ""),
}


NO_HOME = HomeUnits()


def programme_read(reader: Reader, home: HomeUnits = NO_HOME) -> tuple[ProgrammeRead | None, frozenset[Scope]]:
    """(WHOLE, {}) / (OWN, the scopes that make a case the reader's) / (None, {}): no programme at all."""
    own: set[Scope] = set()
    for role in reader.roles:
        rule = PROGRAMME_READ_RULES.get(role)
        if rule is None:
            continue
        read, scope, home_name = rule
        if home_name and reader.unit != getattr(home, home_name, ""):
            continue
        if read is ProgrammeRead.WHOLE:
            return ProgrammeRead.WHOLE, frozenset()
        if scope is not None and reader.unit:
            own.add(scope)
    return (ProgrammeRead.OWN, frozenset(own)) if own else (None, frozenset())


ALL_COUNTIES = "各县市区"  # a unit naming every county ("各县市区党委、政府", "各相关县市区…")
CITY_LEVEL = "市本级"  # a case with no county among its units


def counties_of(units: Iterable[str], counties: Sequence[str]) -> list[str]:
    """The counties a case counts for: each county a responsible unit names, the shared bucket for
    a unit addressed to every county (各县市区…), the city level when none."""
    out: list[str] = []
    for u in units:
        for c in counties:
            if c and c in u and c not in out:
                out.append(c)
        if u.startswith("各") and "县" in u and ALL_COUNTIES not in out:
            out.append(ALL_COUNTIES)
    return out or [CITY_LEVEL]
