"""Reopening a closed case after a look-back (回头看): the ONE function every caller uses.

MINIMAL VERSION on the look-back branch (issue 14): it sends the existing REOPEN action to the
case's live workflow through `workflows.client.act`, so it reopens CLOSED and
LONG_TERM_MAINTENANCE cases only. An ARCHIVED case (its workflow has completed) is refused
(CaseArchivedError). The `reopen` part of issue 14 replaces this file at merge with the real
version, which brings an archived case back as a linked new cycle; keep the signature.
"""

from __future__ import annotations

from datetime import date

import asyncpg
from temporalio.client import Client

from domain.enums import Action, LookbackFinding
from domain.model import ActionRequest, Actor
from workflows.client import act
from workflows.contracts import ActionResult


async def reopen_case(client: Client, pool: asyncpg.Pool, *, case_no: str, actor: Actor, new_due_date: date,
                      lookback_finding: str, reason: str, request_id: str) -> ActionResult:
    """REOPEN `case_no` into a new rectification cycle due `new_due_date`; raises
    workflows.client.ActionRefusedError (recorded in refused_action) when refused."""
    req = ActionRequest(action=Action.REOPEN, actor=actor, request_id=request_id, reason=reason,
                        lookback_finding=LookbackFinding(lookback_finding), new_due_date=new_due_date)
    return await act(client, case_no, req, pool=pool)
