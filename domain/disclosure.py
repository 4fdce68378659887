"""What the public disclosure site shows, and what it accepts (issue 14, part "public"). Pure.

Seeds: publish the plan and the progress (000:430, 001:3 @3305), publish completion (公示公开)
before acceptance and hear objections (003:38, 000:429), name lagging units (曝光, 000:430,
001:3 @3391).

Deny by default: a public item is built field by field from an explicit list (`PUBLIC_ITEM_FIELDS`);
nothing of a case row reaches a public page unless this module copies it. The office's choices
(`PublicationOptions`) only ever add fields from that list: titles and progress are always shown,
due dates and units only when the office chose so. Never shown, whatever the options: reasons,
the ledger, referrals, escalations, the petitioner's details, handler names, objectors' contacts,
objection texts of others.

Also here: the plain public stage terms, the posting window as the public sees it, the objection
form's input rules (contact, text, size), the per-address / per-contact rate rule, the signed
form token, and who lags (the units the office may name).
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from domain.enums import DONE_STAGES, Role, Stage
from domain.text import check_text

# ------------------------------------------------------------------ the office's choices

OPTION_LABELS = {  # option -> (中文, English)
    "publish_plan": ("公开整改方案", "Publish the plan"),
    "show_due_dates": ("公开整改时限", "Show due dates"),
    "show_units": ("公开责任单位", "Show each item's responsible unit"),
}


@dataclass(frozen=True)
class PublicationOptions:
    """What the office chose to publish for one programme, beyond titles and progress."""

    publish_plan: bool = False
    show_due_dates: bool = False
    show_units: bool = False

    @classmethod
    def from_data(cls, data: Mapping[str, Any] | None) -> PublicationOptions:
        d = data or {}
        return cls(**{k: bool(d.get(k, False)) for k in OPTION_LABELS})

    def as_data(self) -> dict[str, bool]:
        return {k: bool(getattr(self, k)) for k in OPTION_LABELS}


@dataclass(frozen=True)
class Naming:
    """A decision to name a lagging unit publicly (曝光), possibly revoked later."""

    naming_id: str
    unit: str
    reason: str
    at: datetime
    by: str
    revoked_at: datetime | None = None
    revoke_reason: str = ""


@dataclass
class Publication:
    """The publication state of a programme, folded from its publication ledger."""

    options: PublicationOptions = field(default_factory=PublicationOptions)
    namings: list[Naming] = field(default_factory=list)

    def active_namings(self) -> list[Naming]:
        return [n for n in self.namings if n.revoked_at is None]


PUBLICATION_EVENTS = ("SET_OPTIONS", "NAME_UNIT", "REVOKE_NAMING")
EVENT_LABELS = {"SET_OPTIONS": "公开范围 Publication options", "NAME_UNIT": "曝光 Name unit",
                "REVOKE_NAMING": "撤销曝光 Revoke naming"}


class PublicationError(ValueError):
    """A publication decision refused (who, what or why), with a message naming it."""


def fold(rows: Iterable[Mapping[str, Any]]) -> Publication:
    """The current state from the ledger rows (event, at, actor_user, reason, data), in seq order."""
    pub = Publication()
    by_id: dict[str, int] = {}
    for r in rows:
        data = r.get("data") or {}
        match r["event"]:
            case "SET_OPTIONS":
                pub.options = PublicationOptions.from_data(data.get("options"))
            case "NAME_UNIT":
                by_id[data["naming_id"]] = len(pub.namings)
                pub.namings.append(Naming(data["naming_id"], data["unit"], r.get("reason", ""), r["at"],
                                          r.get("actor_user", "")))
            case "REVOKE_NAMING":
                i = by_id.get(data.get("naming_id", ""))
                if i is not None:
                    n = pub.namings[i]
                    pub.namings[i] = Naming(n.naming_id, n.unit, n.reason, n.at, n.by, r["at"], r.get("reason", ""))
    return pub


def check_office(role_values: Iterable[str], unit: str, office_unit: str) -> None:
    """Only the rectification office (from the policy's office unit) decides what is public."""
    if Role.RECTIFICATION_OFFICE.value not in set(role_values):
        raise PublicationError("only the rectification office (整改办) decides what is published")
    if office_unit and unit != office_unit:
        raise PublicationError(f"unit {unit!r} is not the rectification office ({office_unit!r})")


def check_reason(reason: str, what: str) -> str:
    reason = (reason or "").strip()
    if not reason:
        raise PublicationError(f"{what}: a reason is required (理由必填)")
    try:
        return check_text(reason, 1000, multiline=True)
    except ValueError as e:
        raise PublicationError(f"{what}: reason {e}") from None


def check_naming(pub: Publication, unit: str, reason: str, lagging: Mapping[str, int]) -> str:
    """A unit may be named only while it lags (has overdue open items) and is not named already."""
    unit = (unit or "").strip()
    if unit not in lagging:
        raise PublicationError(f"unit {unit!r} has no overdue item in this programme: only a lagging unit "
                               "may be named (曝光)")
    if any(n.unit == unit for n in pub.active_namings()):
        raise PublicationError(f"unit {unit!r} is already named")
    return check_reason(reason, "曝光 naming")


def check_revoke(pub: Publication, naming_id: str, reason: str) -> str:
    if not any(n.naming_id == naming_id for n in pub.active_namings()):
        raise PublicationError(f"no active naming {naming_id!r}")
    return check_reason(reason, "撤销曝光 revoking")


# ------------------------------------------------------------------ public progress of an item

# Stage -> (中文, English) in plain public terms.
PUBLIC_STAGE_TERMS: dict[Stage, tuple[str, str]] = {
    Stage.REGISTERED: ("已立项", "Registered"),
    Stage.TRANSFERRED: ("已交办", "Assigned"),
    Stage.INVESTIGATING: ("调查核实中", "Being investigated"),
    Stage.RECTIFYING: ("整改中", "Being rectified"),
    Stage.PRELIM_REVIEW: ("整改完成待审核", "Completed, under review"),
    Stage.PUBLIC_POSTING: ("公示中", "Public posting"),
    Stage.CLOSURE_APPLICATION: ("验收中", "Under acceptance"),
    Stage.VERIFICATION: ("验收中", "Under acceptance"),
    Stage.FILING: ("验收中", "Under acceptance"),
    Stage.REPLY: ("答复中", "Being answered"),
    Stage.DISCLOSURE: ("答复中", "Being answered"),
    Stage.CLOSED: ("已完成", "Completed"),
    Stage.ARCHIVED: ("已完成", "Completed"),
    Stage.LONG_TERM_MAINTENANCE: ("已完成,长期坚持", "Completed, maintained long-term"),
}

# Every field a public item may carry; `public_item` builds nothing else.
PUBLIC_ITEM_FIELDS = ("item_no", "title", "stage_zh", "stage_en", "completed", "posting_open", "due_date",
                      "overdue", "units")


def public_item(row: Mapping[str, Any], opts: PublicationOptions, today: date) -> dict[str, Any]:
    """One item of the published rectification list, from a case projection row."""
    stage = Stage(row["stage"])
    zh, en = PUBLIC_STAGE_TERMS.get(stage, ("进行中", "In progress"))
    done = stage in DONE_STAGES
    out: dict[str, Any] = {"item_no": row["case_no"], "title": row["title"], "stage_zh": zh, "stage_en": en,
                           "completed": done, "posting_open": stage is Stage.PUBLIC_POSTING}
    if opts.show_due_dates:
        due = row.get("due_date")
        out["due_date"] = due
        out["overdue"] = bool(due and not done and due < today)
    if opts.show_units:
        out["units"] = list(row.get("responsible_units") or [])
    assert set(out) <= set(PUBLIC_ITEM_FIELDS)
    return out


PUBLIC_PROGRAMME_FIELDS = ("programme_id", "name", "locality", "inspection_round", "feedback_date",
                           "total_items", "completed_items", "plan_ref", "plan_text", "plan_submitted_at")


def public_programme(row: Mapping[str, Any], opts: PublicationOptions, items: Sequence[Mapping[str, Any]]
                     ) -> dict[str, Any]:
    """A programme's public header: name, locality, round, counts of the published items; the plan
    (reference, text, date submitted) only when the office chose to publish it."""
    out: dict[str, Any] = {k: row[k] for k in ("programme_id", "name", "locality", "inspection_round",
                                               "feedback_date")}
    out["total_items"] = len(items)
    out["completed_items"] = sum(1 for i in items if i["completed"])
    if opts.publish_plan:
        out["plan_ref"] = row.get("plan_ref") or ""
        out["plan_text"] = str((row.get("detail") or {}).get("plan_text") or "")
        out["plan_submitted_at"] = row.get("plan_submitted_at")
    assert set(out) <= set(PUBLIC_PROGRAMME_FIELDS)
    return out


def lagging_units(rows: Iterable[Mapping[str, Any]], today: date) -> dict[str, int]:
    """Responsible unit -> number of its open items past their due date (who may be named)."""
    out: dict[str, int] = {}
    for r in rows:
        due = r.get("due_date")
        if due is None or due >= today or Stage(r["stage"]) in DONE_STAGES:
            continue
        for u in r.get("responsible_units") or []:
            out[u] = out.get(u, 0) + 1
    return dict(sorted(out.items()))


# ------------------------------------------------------------------ 公示 notices and their windows

RULING_ZH = {"UPHELD": "异议成立 Upheld", "DISMISSED": "异议不成立 Dismissed", None: "待裁定 Awaiting ruling"}


def posting_notices(detail: Mapping[str, Any], now: datetime) -> list[dict[str, Any]]:
    """The item's 公示 notices (earlier rounds and the current one), newest first, as the public sees
    them: start, end (or paused, with the time left), open or not, and each objection's number, time
    and ruling (not its text, not who lodged it)."""
    rounds = list(detail.get("postings") or [])
    current = detail.get("posting")
    out = []
    for i, p in enumerate([*rounds, current] if current else rounds):
        is_current = current is not None and i == len(rounds)
        ends = _dt(p.get("ends_at"))
        paused = is_current and ends is None and p.get("remaining_seconds") is not None
        out.append({
            "round": i + 1,
            "started_at": _dt(p.get("started_at")),
            "ends_at": ends,
            "paused": paused,
            "remaining_hours": round(float(p["remaining_seconds"]) / 3600, 1) if paused else None,
            "open": is_current and (paused or (ends is not None and ends > now)),
            "objections": [{"objection_id": o.get("objection_id"), "at": _dt(o.get("at")),
                            "ruling": o.get("ruling"), "ruling_zh": RULING_ZH.get(o.get("ruling"), ""),
                            "ruled_at": _dt(o.get("ruled_at"))} for o in p.get("objections") or []],
        })
    return list(reversed(out))


def _dt(v: Any) -> datetime | None:
    if v is None or isinstance(v, datetime):
        return v
    return datetime.fromisoformat(str(v))


def accepts_objections(stage: str, detail: Mapping[str, Any], now: datetime) -> bool:
    """An item takes objections while it is in 公示 and its window has not run out (a paused window,
    an objection awaiting its ruling, has not)."""
    if stage != Stage.PUBLIC_POSTING.value:
        return False
    notices = posting_notices(detail, now)
    return bool(notices) and notices[0]["open"]


# ------------------------------------------------------------------ the objection form

PHONE = re.compile(r"^(?:\+?86[- ]?)?(?:1[3-9]\d{9}|0\d{2,3}-?\d{7,8})$")
EMAIL = re.compile(r"^[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9-]{1,63}(?:\.[A-Za-z0-9-]{1,63})+$")
MIN_TEXT, MAX_TEXT, MAX_CONTACT = 10, 2000, 254


class ObjectionInputError(ValueError):
    """Bad objection input, naming the field and what is wrong."""

    def __init__(self, fld: str, message: str) -> None:
        super().__init__(f"{fld}: {message}")
        self.field = fld


@dataclass(frozen=True)
class ObjectionInput:
    text: str
    contact: str  # normalised: lower-case e-mail or digits-only phone
    contact_kind: str  # PHONE / EMAIL


def check_objection(text: str, contact: str, max_text: int = MAX_TEXT) -> ObjectionInput:
    """The objection's text and contact, or ObjectionInputError naming the field."""
    contact = (contact or "").strip()
    if not contact:
        raise ObjectionInputError("contact 联系方式", "required (a phone number or an e-mail address)")
    try:
        check_text(contact, MAX_CONTACT, multiline=False)
    except ValueError as e:
        raise ObjectionInputError("contact 联系方式", str(e)) from None
    if PHONE.match(contact):
        digits = re.sub(r"\D", "", contact)
        kind, norm = "PHONE", digits[2:] if contact.startswith(("+86", "86")) else digits
    elif EMAIL.match(contact):
        kind, norm = "EMAIL", contact.lower()
    else:
        raise ObjectionInputError("contact 联系方式", "not a valid phone number (e.g. 13800138000, 0731-12345678) "
                                  "or e-mail address")
    body = (text or "").strip()
    try:
        check_text(body, max_text, multiline=True)
    except ValueError as e:
        raise ObjectionInputError("text 异议内容", str(e)) from None
    if len(body) < MIN_TEXT:
        raise ObjectionInputError("text 异议内容", f"too short: {len(body)} characters, at least {MIN_TEXT}")
    return ObjectionInput(body, norm, kind)


@dataclass(frozen=True)
class RateLimits:
    per_address: int = 5  # objections from one network address ...
    address_window: timedelta = timedelta(hours=1)  # ... within this window
    per_contact: int = 3  # objections giving one contact ...
    contact_window: timedelta = timedelta(days=1)  # ... within this window


def rate_refusal(limits: RateLimits, by_address: int, by_contact: int) -> str | None:
    """None if one more objection is allowed; otherwise the limit reached, named."""
    if by_address >= limits.per_address:
        return (f"per-address limit: at most {limits.per_address} objections from one network address per "
                f"{_span(limits.address_window)} (PUBLIC_RATE_PER_ADDRESS)")
    if by_contact >= limits.per_contact:
        return (f"per-contact limit: at most {limits.per_contact} objections with one contact per "
                f"{_span(limits.contact_window)} (PUBLIC_RATE_PER_CONTACT)")
    return None


def _span(d: timedelta) -> str:
    s = int(d.total_seconds())
    return f"{s // 86400} day(s)" if s % 86400 == 0 else f"{s // 3600} hour(s)" if s % 3600 == 0 else f"{s} s"


# The form token: HMAC over the item and the time the form was served. No session and no cookie
# exist on the public site, so a cross-site POST rides on no ambient authority; the token only makes
# sure a POST comes from a form served for this item, recently (not a blind replay years later).
TOKEN_MAX_AGE = timedelta(hours=2)


def form_token(key: bytes, item_no: str, issued: datetime) -> str:
    ts = str(int(issued.timestamp()))
    mac = hmac.new(key, f"{item_no}|{ts}".encode(), hashlib.sha256).hexdigest()[:32]
    return f"{ts}.{mac}"


def check_form_token(key: bytes, item_no: str, token: str, now: datetime,
                     max_age: timedelta = TOKEN_MAX_AGE) -> None:
    """ObjectionInputError unless the token was issued by us for this item within `max_age`."""
    ts, _, mac = (token or "").partition(".")
    if not ts.isdigit() or len(ts) > 12:
        raise ObjectionInputError("form", "the form is missing its token: reload the item page")
    issued = datetime.fromtimestamp(int(ts), tz=now.tzinfo)
    if not hmac.compare_digest(form_token(key, item_no, issued), token):
        raise ObjectionInputError("form", "the form token does not belong to this item: reload the item page")
    if now - issued > max_age or issued - now > timedelta(minutes=5):
        raise ObjectionInputError("form", f"the form has expired (valid {_span(max_age)}): reload the item page")


def public_actor_id(objection_ref: str) -> str:
    """The user id of the system actor (Role.PUBLIC) that lodges a public-site objection on a case."""
    return f"public-site:{objection_ref}"


def ruling_reasons(ledger_rows: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    """objection id -> the office's published ruling reason, from UPHOLD/DISMISS_OBJECTION rows only."""
    out = {}
    for r in ledger_rows:
        if r["event"] in ("UPHOLD_OBJECTION", "DISMISS_OBJECTION"):
            oid = (r.get("data") or {}).get("objection_id")
            if oid:
                out[str(oid)] = r.get("reason", "")
    return out
