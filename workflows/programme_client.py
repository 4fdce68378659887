"""Client-side operations on programmes: create, act, read, refresh (console, casectl, make run, tests)."""

from __future__ import annotations

import asyncpg
from temporalio.client import Client
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

from domain.model import Actor
from domain.programme import (
    ProgrammeActResult,
    ProgrammeInput,
    ProgrammePolicy,
    ProgrammeRequest,
    ProgrammeSpec,
    ProgrammeState,
    authorize_create,
    programme_workflow_id,
)
from workflows.client import ActionRefusedError, record_refusal, update_or_refusal
from workflows.programme_workflow import ProgrammeWorkflow


async def create_programme(
    client: Client, spec: ProgrammeSpec, created_by: Actor, task_queue: str,
    submit_plan: ProgrammeRequest | None = None, policy: ProgrammePolicy | None = None,
    office_unit: str | None = None,
) -> tuple[bool, str]:
    """Start the programme's workflow: (True, "") or (False, why); an id already used is refused.

    With `policy` (or the deployment's `office_unit`) the creator is checked here, before the id is
    taken (NotAuthorizedError); the workflow checks again with the policy it loads."""
    if policy is not None or office_unit is not None:
        authorize_create(created_by, policy or ProgrammePolicy(office_unit=office_unit or ""))
    try:
        await client.start_workflow(
            ProgrammeWorkflow.run,
            ProgrammeInput(spec=spec, created_by=created_by, submit_plan=submit_plan, policy=policy),
            id=programme_workflow_id(spec.programme_id), task_queue=task_queue,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
        )
    except WorkflowAlreadyStartedError:
        return False, f"programme {spec.programme_id} already exists"
    return True, ""


async def act_programme(client: Client, programme_id: str, req: ProgrammeRequest,
                        pool: asyncpg.Pool | None = None) -> ProgrammeActResult:
    """SUBMIT_PLAN / SUBMIT_REPORT; raises ActionRefusedError with the domain's reason when refused.

    A refused Update leaves no trace in the workflow's history: with `pool`, the refusal is
    written to `refused_action` under case_no "programme:<id>", like a case's."""
    handle = client.get_workflow_handle_for(ProgrammeWorkflow.run, programme_workflow_id(programme_id))
    result, error_type, message = await update_or_refusal(
        handle, ProgrammeWorkflow.act, req, update_id=f"{req.actor.user_id}/{req.request_id}",
        not_found=("ProgrammeNotFoundError", f"no programme {programme_id}"),
        ended=("ProgrammeCompletedError", f"programme {programme_id} has completed"),
        not_ready="ProgrammeNotReadyError")
    if result is not None:
        return result
    if pool is not None:
        await record_refusal(pool, refusal_key(programme_id), req, error_type, message)  # type: ignore[arg-type]
    raise ActionRefusedError(programme_id, error_type, message)


def refusal_key(programme_id: str) -> str:
    """The `refused_action.case_no` of a programme's refused actions."""
    return f"programme:{programme_id}"


async def programme_state(client: Client, programme_id: str) -> ProgrammeState:
    handle = client.get_workflow_handle_for(ProgrammeWorkflow.run, programme_workflow_id(programme_id))
    return await handle.query(ProgrammeWorkflow.get_state)


async def refresh_programme(client: Client, programme_id: str, reason: str = "asked") -> None:
    """Make the programme read its case counts now."""
    await client.get_workflow_handle(programme_workflow_id(programme_id)).signal("refresh", reason)
