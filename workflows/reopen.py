"""Issue 14: reopen a case after a look-back (回头看) finding, live or archived.

`reopen_case` is the one entry point (the console's and casectl's REOPEN, and the look-back
campaign): a case whose workflow still runs (CLOSED, LONG_TERM_MAINTENANCE) gets the ordinary
REOPEN Update through `workflows.client.act` (same validator, same refusal recording). A case
whose run ended ARCHIVED comes back as a linked new run of the same workflow id `case-<no>`:

1. the archived final state is read from PostgreSQL (`archived_case_state`, written when the run
   was archived), or, for runs archived before that table existed, by querying the completed run
   (works while the server still holds its history);
2. the REOPEN is checked here with the domain's own rules (domain/reopen.py: who may reopen, the
   finding, the reason, a due date after today) BEFORE anything is started; a refusal is
   recorded in `refused_action`;
3. the new run is started with that state and the REOPEN (id reuse allowed once the previous run
   completed); it applies the REOPEN first, in the same ledger (the chain continues), naming the
   previous run id;
4. the outcome comes back through the run's `reopen_outcome` Update.

Two concurrent reopens of one archived case: one start wins, the other meets
WorkflowAlreadyStartedError; if it is the same request (user and request id) it waits for that
run's outcome, otherwise its REOPEN goes to the new run like any live REOPEN, where the
validator refuses it (the case is RECTIFYING again): exactly one new cycle.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import NoReturn

import asyncpg
from pydantic import ValidationError
from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.workflowservice.v1 import DescribeWorkflowExecutionRequest
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle, WorkflowUpdateFailedError
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from activities.reopen_activities import load_archived_state
from domain.enums import Action, Stage
from domain.errors import CaseError
from domain.model import ActionRequest, Actor, CaseState
from domain.reopen import ArchivedReopen, parse_finding, validate_archived_reopen
from domain.signing import parse_keys, signed
from domain.text import printable_one_line
from workflows import client as ops
from workflows.case_workflow import CaseWorkflow
from workflows.contracts import (
    CASE_KIND,
    CASE_STAGE,
    RESPONSIBLE_UNITS,
    TASK_QUEUE,
    ActionResult,
    CaseWorkflowInput,
    case_workflow_id,
)

_ATTEMPTS = 3  # describe → start, once more after losing a start race


async def reopen_case(
    client: Client,
    pool: asyncpg.Pool,
    *,
    case_no: str,
    actor: Actor,
    new_due_date: date | None,
    lookback_finding: str,
    reason: str,
    request_id: str,
    task_queue: str | None = None,
) -> ActionResult:
    """Reopen `case_no` after a look-back finding; raises `ActionRefusedError` when refused.

    `new_due_date` None (the console's form left it empty): the policy's rework limit, as REOPEN.
    `task_queue`: where the new run of an archived case runs (default: the previous run's queue).
    """
    try:
        req = ActionRequest(action=Action.REOPEN, actor=actor, request_id=request_id, reason=reason,
                            new_due_date=new_due_date, lookback_finding=parse_finding(lookback_finding))
    except CaseError as e:
        await _refuse(pool, case_no, _bare(actor, request_id), type(e).__name__, str(e))
    except ValidationError as e:
        why = "; ".join(f"{'.'.join(map(str, err['loc']))}: {err['msg']}" for err in e.errors())
        await _refuse(pool, case_no, _bare(actor, request_id), "InvalidInput", f"the request is invalid: {why}")
    wid = case_workflow_id(case_no)
    for _ in range(_ATTEMPTS):
        try:
            desc = await latest_run(client, wid)
        except RPCError as e:
            if e.status is RPCStatusCode.NOT_FOUND:
                await _refuse(pool, case_no, req, "CaseNotFoundError", f"no case {case_no} has been filed")
            raise
        if desc.status is WorkflowExecutionStatus.RUNNING:
            return await _live(client, pool, case_no, req, desc.run_id)
        if desc.status is not WorkflowExecutionStatus.COMPLETED:
            await _refuse(pool, case_no, req, "CaseNotReopenableError",
                          f"the last run of case {case_no} ended {desc.status.name}, "
                          "not archived; the operators must look at it")
        state, source = await _archived_state(client, pool, case_no, desc.run_id)
        try:
            validate_archived_reopen(state, req, datetime.now(UTC))
        except CaseError as e:
            await _refuse(pool, case_no, req, type(e).__name__, str(e))
        signed_req = signed(case_no, req, parse_keys(os.environ.get("ACTION_SIGNING_KEY")))
        state.runs += 1
        inp = CaseWorkflowInput(filing=state.filing, filed_by=actor, state=state,
                                reopen=ArchivedReopen(request=signed_req, previous_run_id=desc.run_id,
                                                      state_source=source))
        try:
            handle = await client.start_workflow(
                CaseWorkflow.run, inp, id=wid, task_queue=task_queue or desc.task_queue or TASK_QUEUE,
                id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
                id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
                search_attributes=TypedSearchAttributes([
                    SearchAttributePair(CASE_STAGE, Stage.ARCHIVED.value),
                    SearchAttributePair(CASE_KIND, state.filing.kind.value),
                    SearchAttributePair(RESPONSIBLE_UNITS, list(state.filing.responsible_units)),
                ]),
            )
        except WorkflowAlreadyStartedError:
            continue  # another reopen (or a retry of this one) started it first: look again
        return await _outcome(client, pool, case_no, req, handle)
    raise ops.ActionRefusedError(case_no, "EngineUnavailable", f"case {case_no} kept changing while reopening it")


@dataclass(frozen=True)
class RunInfo:
    run_id: str
    status: WorkflowExecutionStatus
    task_queue: str


async def latest_run(client: Client, workflow_id: str) -> RunInfo:
    """The latest run of a workflow id: run id, status, task queue (raw describe: the typed one
    decodes search attributes, which the time-skipping test server returns in a form it cannot read)."""
    resp = await client.workflow_service.describe_workflow_execution(DescribeWorkflowExecutionRequest(
        namespace=client.namespace, execution=WorkflowExecution(workflow_id=workflow_id)))
    info = resp.workflow_execution_info
    return RunInfo(info.execution.run_id, WorkflowExecutionStatus(info.status), info.task_queue)


async def _live(client: Client, pool: asyncpg.Pool, case_no: str, req: ActionRequest, run_id: str) -> ActionResult:
    """The case's workflow runs: a retry of the reopen that started it, or an ordinary REOPEN."""
    handle = client.get_workflow_handle_for(CaseWorkflow.run, case_workflow_id(case_no), run_id=run_id)
    try:
        return await _outcome(client, pool, case_no, req, handle, only_if_ours=True)
    except _NotOurs:
        pass
    done = await pool.fetchval(
        "SELECT seq FROM ledger WHERE case_no = $1 AND request_id = $2 AND event = 'REOPEN' AND actor_user = $3",
        case_no, req.request_id, req.actor.user_id,
    )
    if done is not None:  # this very request reopened the case earlier (the answer was lost)
        return await ops._already_applied(client, case_no)
    return await ops.act(client, case_no, req, pool=pool)


class _NotOurs(Exception):
    pass


async def _outcome(
    client: Client, pool: asyncpg.Pool, case_no: str, req: ActionRequest, handle: WorkflowHandle,
    only_if_ours: bool = False,
) -> ActionResult:
    uid = ops.update_id(req)
    try:
        return await handle.execute_update(CaseWorkflow.reopen_outcome, uid, id=f"reopen-outcome/{uid}")
    except WorkflowUpdateFailedError as e:
        error_type, message = ops._refusal(e.cause)
        if error_type == "NotThisReopen" or (only_if_ours and "not found" in message.lower()):
            raise _NotOurs() from None
    except RPCError as e:
        if only_if_ours:
            raise _NotOurs() from None
        if "already completed" not in str(e).lower():
            raise
        # The run refused the REOPEN and ended ARCHIVED again before the outcome was asked.
        result = await handle.result()
        error_type, _, message = (result.reopen_refused or "CaseArchivedError: the case is archived").partition(": ")
    await _refuse(pool, case_no, req, error_type, message)


async def _archived_state(client: Client, pool: asyncpg.Pool, case_no: str, run_id: str) -> tuple[CaseState, str]:
    """The archived final state of run `run_id`: PostgreSQL first, then the completed run itself."""
    state = await load_archived_state(pool, case_no, run_id)
    if state is not None:
        return state, "snapshot"
    try:
        handle = client.get_workflow_handle_for(CaseWorkflow.run, case_workflow_id(case_no), run_id=run_id)
        return await handle.query(CaseWorkflow.get_state), "query"
    except RPCError as e:
        raise ops.ActionRefusedError(
            case_no, "ArchivedStateUnavailable",
            f"case {case_no}: the final state of its archived run {run_id} is neither kept in PostgreSQL "
            f"(it was archived before migration 019) nor readable from Temporal any more ({e}); file the "
            "look-back finding as a new case",
        ) from None


def _bare(actor: Actor, request_id: str) -> ActionRequest:
    """A request to record a refusal under when the real one cannot even be built."""
    rid = printable_one_line(str(request_id))[:128] or "invalid-request-id"
    return ActionRequest(action=Action.REOPEN, actor=actor, request_id=rid)


async def _refuse(pool: asyncpg.Pool, case_no: str, req: ActionRequest, error_type: str, message: str) -> NoReturn:
    await ops.record_refusal(pool, case_no, req, error_type, message)
    raise ops.ActionRefusedError(case_no, error_type, message)


__all__ = ["reopen_case"]
