"""Client-side operations on look-back campaigns: create, select, finding, close, read (console, casectl, tests)."""

from __future__ import annotations

from types import SimpleNamespace

import asyncpg
from pydantic import BaseModel
from temporalio.client import Client
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

from domain.errors import CaseError
from domain.lookback import (
    CampaignInput,
    CampaignResult,
    CampaignSpec,
    CampaignState,
    CloseRequest,
    FindingRequest,
    LookbackPolicy,
    SelectRequest,
    lookback_workflow_id,
    refusal_key,
)
from domain.lookback_rules import authorize_office
from domain.model import Actor
from workflows.client import ActionRefusedError, record_refusal, update_or_refusal
from workflows.lookback_workflow import LookbackCampaignWorkflow

_ACTIONS = {SelectRequest: "LOOKBACK_SELECT", FindingRequest: "LOOKBACK_FINDING", CloseRequest: "LOOKBACK_CLOSE"}


async def create_campaign(client: Client, spec: CampaignSpec, created_by: Actor, task_queue: str,
                          office_unit: str | None = None, policy: LookbackPolicy | None = None,
                          pool: asyncpg.Pool | None = None) -> tuple[bool, str]:
    """Start the campaign's workflow: (True, "") or (False, why). With `office_unit` (or `policy`) the
    creator is checked here before the id is taken; the workflow checks again with its policy."""
    if policy is not None or office_unit is not None:
        try:
            authorize_office(created_by, policy or LookbackPolicy(office_unit=office_unit or ""), "创建回头看 create")
        except CaseError as e:
            if pool is not None:
                await _record(pool, spec.campaign_id, SimpleNamespace(
                    request_id=f"create-{spec.campaign_id}", action="LOOKBACK_CREATE", actor=created_by),
                    type(e).__name__, str(e))
            raise ActionRefusedError(refusal_key(spec.campaign_id), type(e).__name__, str(e)) from None
    try:
        await client.start_workflow(
            LookbackCampaignWorkflow.run, CampaignInput(spec=spec, created_by=created_by, policy=policy),
            id=lookback_workflow_id(spec.campaign_id), task_queue=task_queue,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE, id_conflict_policy=WorkflowIDConflictPolicy.FAIL)
    except WorkflowAlreadyStartedError:
        return False, f"look-back campaign {spec.campaign_id} already exists"
    return True, ""


async def _record(pool: asyncpg.Pool, campaign_id: str, req: object, error_type: str, message: str) -> None:
    await record_refusal(pool, refusal_key(campaign_id), req, error_type, message)  # type: ignore[arg-type]


async def _update(client: Client, campaign_id: str, name: str, req: BaseModel,
                  pool: asyncpg.Pool | None) -> CampaignResult:
    handle = client.get_workflow_handle(lookback_workflow_id(campaign_id))
    actor: Actor = req.actor  # type: ignore[attr-defined]
    result, error_type, message = await update_or_refusal(
        handle, name, req, update_id=f"{actor.user_id}/{req.request_id}",  # type: ignore[attr-defined]
        result_type=CampaignResult,
        not_found=("CampaignNotFoundError", f"no look-back campaign {campaign_id}"),
        ended=("CampaignClosedError", f"look-back campaign {campaign_id} has ended"),
        not_ready="CampaignNotReadyError")
    if result is not None:
        return result
    if pool is not None:
        shim = SimpleNamespace(request_id=req.request_id, action=_ACTIONS.get(type(req), name), actor=actor)  # type: ignore[attr-defined]
        await _record(pool, campaign_id, shim, error_type, message)
    raise ActionRefusedError(refusal_key(campaign_id), error_type, message)


async def select_cases(client: Client, campaign_id: str, req: SelectRequest,
                       pool: asyncpg.Pool | None = None) -> CampaignResult:
    return await _update(client, campaign_id, "select", req, pool)


async def record_finding(client: Client, campaign_id: str, req: FindingRequest,
                         pool: asyncpg.Pool | None = None) -> CampaignResult:
    return await _update(client, campaign_id, "finding", req, pool)


async def close_campaign(client: Client, campaign_id: str, req: CloseRequest,
                         pool: asyncpg.Pool | None = None) -> CampaignResult:
    return await _update(client, campaign_id, "close", req, pool)


async def campaign_state(client: Client, campaign_id: str) -> CampaignState:
    handle = client.get_workflow_handle(lookback_workflow_id(campaign_id))
    return await handle.query("get_state", result_type=CampaignState)
