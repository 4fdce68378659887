"""Who may read what: which cases each role sees, which parts of a case, which pages. Pure.

`lifecycle.authorize` decides who may *act*; this module decides who may *read*. The
console's read model (`admin/readmodel.py`) applies it to every list, case page, API
response, export, dashboard figure, my-work list and audit page, in one place.

The rules are a table keyed by role (`READ_RULES`). Each rule names
- the cases the role sees (`Scope`: all cases, the cases of the reader's unit as a
  responsible / lead supervising / assisting unit, the cases with an accountability
  referral, the cases in public posting now);
- the parts of such a case it sees (`Part`); a part not named is left out;
- the pages over many cases it may open (`View`: case list, export, dashboard, my work,
  audit pages).

Deny by default: a role missing from the table (SYSTEM, or a role added to `Role` without a
rule) sees no case, no part and no page. A user holding several roles sees, on each case, the
union of the parts granted by the roles under which that case is in scope. The office and the
discipline commission read only from their home unit (the policy's `office_unit`,
`discipline_unit`), as they act only from it (`lifecycle.authorize`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from domain.enums import Role, Stage


class Scope(StrEnum):
    """Which cases a role sees."""

    ALL = "ALL"  # every case
    RESPONSIBLE = "RESPONSIBLE"  # the reader's unit is a responsible unit (主体责任单位) of the case
    LEAD = "LEAD"  # ... a lead supervising unit (牵头督导单位)
    ASSIST = "ASSIST"  # ... an assisting supervising unit (配合督导单位)
    REFERRED = "REFERRED"  # the case has (or had) an accountability referral (移交问责)
    POSTING = "POSTING"  # the case is in public posting (公示) now: the public may object to it
    # The case is a fanned-out item (issue 13) one of whose child cases names the reader's unit as
    # its responsible unit: a county sees the parent of its own child (what the rule's
    # `limited_parts` grant: its summary), not the parent's record nor the other counties' children.
    CHILD_RESPONSIBLE = "CHILD_RESPONSIBLE"


class Part(StrEnum):
    """The parts of a case view; each is shown only to the roles granted it."""

    SUMMARY = "SUMMARY"  # case number, kind, title, stage
    RECORD = "RECORD"  # problem, complaint text, target, measures, units, leader, round, source, jurisdiction
    DEADLINE = "DEADLINE"  # due date, working days left, its explanation, escalation rung and schedule
    PROGRESS = "PROGRESS"  # measures done, extension request, suspension, verifications, finding, reply
    POSTING = "POSTING"  # when the public posting started and ends
    OBJECTIONS = "OBJECTIONS"  # every objection lodged on a posting, with who lodged it
    OWN_OBJECTIONS = "OWN_OBJECTIONS"  # only the objections the reader lodged
    LEDGER = "LEDGER"  # the ledger timeline (referral reasons in it only with REFERRALS)
    REFERRALS = "REFERRALS"  # referral paths, reasons, reports and outcomes (names of officials)
    CONTACT = "CONTACT"  # the petitioner's contact (filing.complainant_contact)
    REFUSALS = "REFUSALS"  # refused attempts on the case (who tried what)
    HISTORY = "HISTORY"  # the audit pages: workflow histories, hash-chain and cross-checks
    EVIDENCE = "EVIDENCE"  # evidence files (佐证材料: photos, PDFs) and their metadata
    # A fanned-out item's fan-out section: the county list used, the spot-check sample's seed, rate
    # and population (case numbers of every child). The children's own rows are shown only as far as
    # the reader sees each child (each is scoped as a case of its own).
    CHILDREN = "CHILDREN"


class View(StrEnum):
    """Pages over many cases (each still shows only the cases and parts above)."""

    CASE_LIST = "CASE_LIST"
    EXPORT = "EXPORT"
    DASHBOARD = "DASHBOARD"
    MY_WORK = "MY_WORK"
    AUDIT = "AUDIT"
    RUNTIME = "RUNTIME"  # blocked cases and the escalation watchdog (issue 9): office and auditors


@dataclass(frozen=True)
class ReadRule:
    """What one role may read."""

    scopes: frozenset[Scope]
    parts: frozenset[Part]
    views: frozenset[View]
    home_unit: str = ""  # "office" or "discipline": read only from the policy's unit of that name
    # Scopes that grant only `limited_parts` (not `parts`): a county on the parent of its child.
    limited_scopes: frozenset[Scope] = frozenset()
    limited_parts: frozenset[Part] = frozenset()


ALL_PARTS = frozenset(Part)
ALL_VIEWS = frozenset(View)
INTERNAL_VIEWS = frozenset({View.CASE_LIST, View.EXPORT, View.DASHBOARD, View.MY_WORK})
# What a unit working on a case sees: the case and its progress, not who was referred for
# accountability, not the petitioner's contact, not refused attempts, not the histories.
CASEWORK = frozenset({Part.SUMMARY, Part.RECORD, Part.DEADLINE, Part.PROGRESS, Part.POSTING, Part.OBJECTIONS,
                      Part.LEDGER, Part.EVIDENCE, Part.CHILDREN})

OFFICE_RULE = ReadRule(frozenset({Scope.ALL}), ALL_PARTS - {Part.OWN_OBJECTIONS}, ALL_VIEWS, home_unit="office")
# Supervision offices (市委督查室 / 市政府督查室) propose, confirm and refer: all cases and referrals,
# not the petitioner's contact, the refusals or the histories.
SUPERVISION_RULE = ReadRule(frozenset({Scope.ALL}), CASEWORK | {Part.REFERRALS}, INTERNAL_VIEWS)

READ_RULES: dict[Role, ReadRule] = {
    Role.RECTIFICATION_OFFICE: OFFICE_RULE,
    # Auditors read everything but the petitioner's contact, which no audit needs.
    Role.AUDITOR: ReadRule(frozenset({Scope.ALL}), ALL_PARTS - {Part.OWN_OBJECTIONS, Part.CONTACT}, ALL_VIEWS),
    # The responsible unit replies to the petitioner (REPLY): it needs the contact.
    # A responsible unit does not see the fan-out section (every county's child case number) even
    # on a parent it is a responsible unit of (the city-level share): only its own child. A county
    # sees the summary of the parent of its child (CHILD_RESPONSIBLE), not its record or ledger.
    Role.RESPONSIBLE_UNIT: ReadRule(frozenset({Scope.RESPONSIBLE}), (CASEWORK - {Part.CHILDREN}) | {Part.CONTACT},
                                    INTERNAL_VIEWS, limited_scopes=frozenset({Scope.CHILD_RESPONSIBLE}),
                                    limited_parts=frozenset({Part.SUMMARY})),
    Role.LEAD_SUPERVISOR: ReadRule(frozenset({Scope.LEAD}), CASEWORK, INTERNAL_VIEWS),
    Role.ASSIST_SUPERVISOR: ReadRule(frozenset({Scope.ASSIST}), CASEWORK, INTERNAL_VIEWS),
    Role.DISCIPLINE_COMMISSION: ReadRule(frozenset({Scope.REFERRED}), CASEWORK | {Part.REFERRALS}, INTERNAL_VIEWS,
                                         home_unit="discipline"),
    # The public sees nothing of the internal ledger: only the postings open now (to lodge an
    # objection), their number, kind, title and window, and its own objections.
    Role.PUBLIC: ReadRule(frozenset({Scope.POSTING}), frozenset({Part.SUMMARY, Part.POSTING, Part.OWN_OBJECTIONS}),
                          frozenset({View.CASE_LIST, View.MY_WORK})),
}
if "SUPERVISION_OFFICE" in Role.__members__:  # the role comes with the escalation rules (issue 9)
    READ_RULES[Role("SUPERVISION_OFFICE")] = SUPERVISION_RULE

# Ledger events whose reason and data are referral details (a reason naming an official, a
# report reference, an outcome). Entries carrying a `referral_id` count as such too.
REFERRAL_EVENTS = frozenset({"REFER_ACCOUNTABILITY", "REFERRAL_OPENED", "ACCEPT_REFERRAL", "CONCLUDE_REFERRAL"})


@dataclass(frozen=True)
class Reader:
    """Who is reading: a user, its unit and its roles."""

    user_id: str
    unit: str
    roles: tuple[Role, ...]


@dataclass(frozen=True)
class CaseFacts:
    """What scoping needs to know about a case."""

    stage: str
    responsible_units: tuple[str, ...] = ()
    lead_supervising_units: tuple[str, ...] = ()
    assisting_units: tuple[str, ...] = ()
    has_referrals: bool = False
    child_units: tuple[str, ...] = ()  # a fanned-out item: the responsible units of its children


@dataclass(frozen=True)
class HomeUnits:
    """The units the office and the discipline commission read from (from the policy)."""

    office: str = ""
    discipline: str = ""


def rule_for(role: Role) -> ReadRule | None:
    """The read rule of a role; None (deny) for a role without one."""
    return READ_RULES.get(role)


def active_rules(reader: Reader, home: HomeUnits = HomeUnits()) -> list[tuple[Role, ReadRule]]:
    """The rules this reader reads under: one per role it holds that has a rule and whose home unit fits."""
    out = []
    for role in reader.roles:
        rule = rule_for(role)
        if rule is None:
            continue
        need = getattr(home, rule.home_unit, "") if rule.home_unit else ""
        if need and reader.unit != need:
            continue
        out.append((role, rule))
    return out


def in_scope(scope: Scope, unit: str, facts: CaseFacts) -> bool:
    match scope:
        case Scope.ALL:
            return True
        case Scope.RESPONSIBLE:
            return bool(unit) and unit in facts.responsible_units
        case Scope.LEAD:
            return bool(unit) and unit in facts.lead_supervising_units
        case Scope.ASSIST:
            return bool(unit) and unit in facts.assisting_units
        case Scope.REFERRED:
            return facts.has_referrals
        case Scope.POSTING:
            return facts.stage == Stage.PUBLIC_POSTING.value
        case Scope.CHILD_RESPONSIBLE:
            return bool(unit) and unit in facts.child_units
    return False  # pragma: no cover - every scope has a branch


def parts_for(reader: Reader, facts: CaseFacts, home: HomeUnits = HomeUnits()) -> frozenset[Part]:
    """The parts of this case the reader may see; empty: the case is not visible at all."""
    parts: set[Part] = set()
    for _role, rule in active_rules(reader, home):
        if any(in_scope(s, reader.unit, facts) for s in rule.scopes):
            parts |= rule.parts
        elif any(in_scope(s, reader.unit, facts) for s in rule.limited_scopes):
            parts |= rule.limited_parts
    if Part.SUMMARY not in parts:  # nothing is shown of a case whose existence is not
        return frozenset()
    return frozenset(parts)


def may_view(reader: Reader, view: View, home: HomeUnits = HomeUnits()) -> bool:
    """Whether the reader may open a page of this kind at all."""
    return any(view in rule.views for _role, rule in active_rules(reader, home))


def scopes_of(reader: Reader, home: HomeUnits = HomeUnits(), limited: bool = True) -> frozenset[Scope]:
    """Every scope the reader reads under (the read model turns them into one SQL condition).

    `limited=False`: only the scopes granting a rule's full parts (what a filter, a sort order or a
    figure on a case's record or deadline may run over)."""
    out: set[Scope] = set()
    for _role, rule in active_rules(reader, home):
        out |= rule.scopes | (rule.limited_scopes if limited else frozenset())
    return frozenset(out)


# ------------------------------------------------------------------ field redaction

# The fields of a case row / projection and of a filing, by the part that shows them.
ROW_FIELDS: Mapping[Part, tuple[str, ...]] = {
    Part.SUMMARY: ("case_no", "kind", "kind_zh", "title", "stage", "stage_zh", "stage_entered_at", "filed_at",
                   "closed_at", "parent_case_no", "is_parent", "closure_level", "closure_level_en"),
    Part.RECORD: ("responsible_units", "lead_supervising_units", "assisting_units", "inspection_round",
                  "programme_id"),
    Part.DEADLINE: ("due_date", "due_at", "days_left", "overdue_days", "overdue", "escalation_level",
                    "escalation_max_level", "rung", "rung_zh", "suspended", "cycle", "reopen_count", "last_seq",
                    "light", "light_zh"),  # 红黄绿灯 (domain/statistics.py)
    Part.REFERRALS: ("open_referrals",),
}
FILING_FIELDS: Mapping[Part, tuple[str, ...]] = {
    Part.SUMMARY: ("case_no", "kind", "title", "parent_case_no"),
    Part.RECORD: ("problem", "target", "measures", "responsible_units", "lead_supervising_units", "assisting_units",
                  "lead_leader", "deadline", "source", "inspection_round", "jurisdiction", "ladder_profile",
                  "programme_id", "complaint"),
    Part.CONTACT: ("complainant_contact",),
}


def pick(data: Mapping[str, Any], table: Mapping[Part, tuple[str, ...]], parts: Iterable[Part]) -> dict[str, Any]:
    """Only the fields of `data` that the granted parts show (deny by default: unknown keys are dropped)."""
    allowed = {name for p in parts for name in table.get(p, ())}
    return {k: v for k, v in data.items() if k in allowed}


def is_referral_entry(event: str, data: Mapping[str, Any] | None) -> bool:
    """Whether a ledger entry carries referral details."""
    return event in REFERRAL_EVENTS or bool(data and "referral_id" in data)


def notice_may_carry_reason(role: Role, event: str, data: Mapping[str, Any] | None) -> bool:
    """Whether a notice to this role may carry the entry's reason (not a referral's, to a role
    that may not read referral details: the responsible unit is told of a referral, not why)."""
    rule = rule_for(role)
    return not is_referral_entry(event, data) or (rule is not None and Part.REFERRALS in rule.parts)


def ledger_entry_view(entry: Mapping[str, Any], parts: frozenset[Part]) -> dict[str, Any] | None:
    """A ledger row as this reader may see it: None without LEDGER; a referral entry's reason and
    data withheld without REFERRALS (the entry itself, that a referral happened, stays)."""
    if Part.LEDGER not in parts:
        return None
    out = dict(entry)
    if Part.REFERRALS not in parts and is_referral_entry(str(entry.get("event", "")), entry.get("data")):
        out["reason"] = ""
        out["data"] = {}
        out["withheld"] = True
    return out


def objections_view(objections: Iterable[Mapping[str, Any]], reader: Reader,
                    parts: frozenset[Part]) -> list[dict[str, Any]]:
    """The objections of a posting this reader may see: all of them, only its own, or none."""
    if Part.OBJECTIONS in parts:
        return [dict(o) for o in objections]
    if Part.OWN_OBJECTIONS in parts:
        return [dict(o) for o in objections if o.get("by") == reader.user_id]
    return []
