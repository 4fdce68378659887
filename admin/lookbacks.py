"""The console's read model of look-back campaigns (回头看): every read, scoped to the reader.

Who reads what is `domain.lookback_rules.campaign_read` (deny by default): the office (home
unit), supervision offices and auditors read the WHOLE campaign; a lead supervising unit reads
the header and the items of the cases it leads; anyone else sees no campaign at all (answered
like one that does not exist). Pages, the JSON API, casectl and the report files all read here.
"""

from __future__ import annotations

import json
from typing import Any

import asyncpg

from admin.users import User
from domain.enums import REFERRAL_PATH_LABELS_ZH, ReferralPath
from domain.lookback import (
    FINDING_LABELS_ZH,
    STAGE_LABELS_ZH,
    CampaignFinding,
    CampaignStage,
    Item,
    LookbackPolicy,
    ReopenStatus,
)
from domain.lookback_rules import CampaignRead, campaign_read, may_create, may_inspect, report_figures
from domain.model import Actor
from domain.visibility import Reader

_LIST = """SELECT campaign_id, name, unannounced, start_date, end_date, programme_id, stage, created_at, closed_at,
                  selected, visited FROM lookback_projection ORDER BY created_at DESC LIMIT 500"""
_ONE = "SELECT * FROM lookback_projection WHERE campaign_id = $1"
_ITEMS = "SELECT * FROM lookback_item WHERE campaign_id = $1 ORDER BY case_no"
_LEDGER = """SELECT seq, event, actor_user, actor_role, actor_unit, at, reason, case_no, data
             FROM lookback_ledger WHERE campaign_id = $1 ORDER BY seq DESC LIMIT 300"""


def reader_of(user: User) -> Reader:
    return Reader(user_id=user.username, unit=user.unit, roles=tuple(user.roles))


def _item(r: asyncpg.Record) -> Item:
    inspector = None
    if r["inspector_user"]:
        inspector = Actor(user_id=r["inspector_user"], role=r["inspector_role"], unit=r["inspector_unit"] or "")
    return Item(case_no=r["case_no"], title=r["title"], stage=r["stage_at_selection"],
                responsible_units=list(r["responsible_units"]), lead_supervising_units=list(r["lead_supervising_units"]),
                finding=r["finding"], evidence=r["evidence"], evidence_refs=list(r["evidence_refs"]),
                inspector=inspector, found_at=r["found_at"], finding_seq=r["finding_seq"], reopen=r["reopen"],
                reopen_due_date=r["reopen_due_date"], reopen_error=r["reopen_error"],
                referral_proposed=r["referral_proposed"])


def item_row(i: Item) -> dict[str, Any]:
    return {
        "case_no": i.case_no, "title": i.title, "stage_at_selection": i.stage,
        "responsible_units": i.responsible_units, "lead_supervising_units": i.lead_supervising_units,
        "finding": i.finding.value if i.finding else None,
        "finding_zh": FINDING_LABELS_ZH[i.finding] if i.finding else "未核查",
        "evidence": i.evidence, "evidence_refs": i.evidence_refs,
        "inspector": i.inspector.user_id if i.inspector else "", "inspector_unit": i.inspector.unit if i.inspector else "",
        "found_at": i.found_at, "reopen": i.reopen.value if i.reopen else None,
        "reopen_due_date": i.reopen_due_date, "reopen_error": i.reopen_error,
        "referral_proposed": i.referral_proposed.value if i.referral_proposed else None,
        "referral_proposed_zh": REFERRAL_PATH_LABELS_ZH[ReferralPath(i.referral_proposed)] if i.referral_proposed else "",
    }


class LookbackReads:
    def __init__(self, pool: asyncpg.Pool, policy: LookbackPolicy) -> None:
        self.pool, self.policy = pool, policy

    def read(self, user: User) -> CampaignRead | None:
        return campaign_read(reader_of(user), self.policy)

    def may_read(self, user: User) -> bool:
        return self.read(user) is not None

    def may_create(self, user: User) -> bool:
        return may_create(reader_of(user), self.policy) and not user.read_only

    async def list(self, user: User) -> list[dict[str, Any]]:
        read = self.read(user)
        if read is None:
            return []
        rows = [dict(r) for r in await self.pool.fetch(_LIST)]
        if read is CampaignRead.OWN:  # only campaigns holding a case the reader leads; its own counts
            own = await self.pool.fetch(
                """SELECT campaign_id, count(*) AS selected, count(finding) AS visited FROM lookback_item
                   WHERE $1 = ANY(lead_supervising_units) GROUP BY campaign_id""", user.unit)
            mine = {r["campaign_id"]: r for r in own}
            rows = [{**r, "selected": mine[r["campaign_id"]]["selected"], "visited": mine[r["campaign_id"]]["visited"]}
                    for r in rows if r["campaign_id"] in mine]
        for r in rows:
            r["stage_zh"] = STAGE_LABELS_ZH[CampaignStage(r["stage"])]
        return rows

    async def view(self, user: User, campaign_id: str) -> dict[str, Any] | None:
        """The campaign as this user may see it; None when it may not (or it does not exist)."""
        read = self.read(user)
        if read is None:
            return None
        head = await self.pool.fetchrow(_ONE, campaign_id)
        if head is None:
            return None
        items = [_item(r) for r in await self.pool.fetch(_ITEMS, campaign_id)]
        if read is CampaignRead.OWN:
            items = [i for i in items if user.unit in i.lead_supervising_units]
            if not items:
                return None
        v: dict[str, Any] = {k: head[k] for k in (
            "campaign_id", "name", "basis", "unannounced", "start_date", "end_date", "programme_id", "stage",
            "created_by", "created_at", "closed_at", "close_reason", "population")}
        v["stage_zh"] = STAGE_LABELS_ZH[CampaignStage(head["stage"])]
        v["read"] = read.value
        v["criteria"] = json.loads(head["criteria"]) if isinstance(head["criteria"], str) else head["criteria"]
        v["reminders"] = json.loads(head["reminders"]) if isinstance(head["reminders"], str) else head["reminders"]
        v["items"] = [item_row(i) for i in items]
        v["unvisited"] = [item_row(i) for i in items if i.finding is None]
        v["proposals"] = [item_row(i) for i in items if i.referral_proposed]
        v["figures"] = report_figures(items)
        v["may_find"] = {i.case_no for i in items if i.finding is None and head["stage"] == CampaignStage.VISITING
                         and any(may_inspect(a, i, self.policy) for a in _actors(user))}
        if read is CampaignRead.WHOLE:
            v["ledger"] = [dict(r) for r in await self.pool.fetch(_LEDGER, campaign_id)]
        else:
            v["ledger"] = []
        return v


def _actors(user: User) -> list[Actor]:
    return [Actor(user_id=user.username, role=r, unit=user.unit) for r in user.roles]


FINDING_CHOICES = [(f.value, FINDING_LABELS_ZH[f]) for f in CampaignFinding]
REOPEN_ZH = {ReopenStatus.PENDING.value: "重新打开中", ReopenStatus.REOPENED.value: "已重新整改",
             ReopenStatus.FAILED.value: "重新打开失败"}
