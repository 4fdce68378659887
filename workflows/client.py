"""Client-side operations on cases: file, act, read. Used by the starter, tools and tests.

A refused action (validator rejection) leaves no trace in workflow history, so
`act` records it in the `refused_action` table when given a pool: auditors see
every refused attempt with its reason.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass
from typing import Any

import asyncpg
from pydantic import ValidationError
from temporalio.client import Client, RPCTimeoutOrCancelledError, WorkflowUpdateFailedError
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from domain.blocking import BlockedStep, UnblockRequest
from domain.enums import Action, Stage
from domain.model import ActionRequest, Actor, CaseFiling, CaseState
from domain.policy import Policy
from domain.signing import parse_keys, signed
from domain.text import printable_one_line
from workflows.case_workflow import CaseWorkflow
from workflows.contracts import (
    CASE_KIND,
    CASE_STAGE,
    ESCALATION_RUNG,
    INSPECTION_ROUND,
    RESPONSIBLE_UNITS,
    ActionResult,
    CaseWorkflowInput,
    case_workflow_id,
)

_NOT_READY_RETRIES = 10
# How long `act` keeps re-sending an Update whose answer was lost (the server restarting, a
# connection cut, the RPC deadline passing): the same Update id, so it is applied at most once.
UNANSWERED_RESEND_SECONDS = 30.0
# RPC failures that say nothing about the action, only that the server did not answer.
_TRANSIENT_RPC = frozenset({RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED,
                            RPCStatusCode.CANCELLED, RPCStatusCode.ABORTED})


@dataclass(frozen=True)
class FilingOutcome:
    case_no: str
    filed: bool
    reason: str = ""


class ActionRefusedError(Exception):
    """The case workflow refused an action; `error_type` names the domain error."""

    def __init__(self, case_no: str, error_type: str, message: str) -> None:
        super().__init__(f"{case_no}: {error_type}: {message}")
        self.case_no, self.error_type, self.message = case_no, error_type, message


async def file_case(
    client: Client, filing: CaseFiling, filed_by: Actor, task_queue: str, policy: Policy | None = None
) -> FilingOutcome:
    """Start the case's workflow; a case number already filed is refused, not duplicated.

    The filing is validated again here (a caller may have built it without validation): a
    filing the models refuse, e.g. a NUL in its title, is refused before its number is taken.
    """
    try:
        filing = CaseFiling.model_validate(filing.model_dump(mode="python"))
    except ValidationError as e:
        why = "; ".join(f"{'.'.join(map(str, err['loc']))}: {err['msg']}" for err in e.errors())
        return FilingOutcome(printable_one_line(str(filing.case_no))[:64], False, f"filing refused: {why}")
    pairs = [
        SearchAttributePair(CASE_STAGE, Stage.REGISTERED.value),
        SearchAttributePair(CASE_KIND, filing.kind.value),
        SearchAttributePair(RESPONSIBLE_UNITS, list(filing.responsible_units)),
        SearchAttributePair(ESCALATION_RUNG, 0),  # the run knows it has them and does not upsert again
    ]
    if filing.inspection_round:
        pairs.append(SearchAttributePair(INSPECTION_ROUND, filing.inspection_round))
    try:
        await client.start_workflow(
            CaseWorkflow.run,
            CaseWorkflowInput(filing=filing, filed_by=filed_by, policy=policy),
            id=case_workflow_id(filing.case_no),
            task_queue=task_queue,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
            search_attributes=TypedSearchAttributes(pairs),
        )
    except WorkflowAlreadyStartedError:
        return FilingOutcome(filing.case_no, False, f"case number {filing.case_no} is already filed")
    return FilingOutcome(filing.case_no, True)


async def file_cases(
    client: Client, filings: list[CaseFiling], filed_by: Actor, task_queue: str, concurrency: int = 20
) -> list[FilingOutcome]:
    """File many cases, `concurrency` at a time; outcomes in input order."""
    sem = asyncio.Semaphore(concurrency)

    async def one(f: CaseFiling) -> FilingOutcome:
        async with sem:
            return await file_case(client, f, filed_by, task_queue)

    return list(await asyncio.gather(*(one(f) for f in filings)))


def update_id(req: ActionRequest) -> str:
    """The Update id: the request id bound to the authenticated user who sent it.

    A retry by the same user runs once; another user's request with the same request id is a
    different Update, which the validator refuses as a duplicate request id (and is recorded),
    so it can never receive the first user's result.
    """
    return f"{req.actor.user_id}/{req.request_id}"


async def act(
    client: Client,
    case_no: str,
    req: ActionRequest,
    pool: asyncpg.Pool | None = None,
    signing_keys: tuple[bytes, ...] | None = None,
) -> ActionResult:
    """Send one action; raises ActionRefusedError with the domain's reason when refused.

    The request is signed with the first of `signing_keys` (default: ACTION_SIGNING_KEY from
    the environment; none: unsigned). See `update_id` for retries.
    """
    keys = parse_keys(os.environ.get("ACTION_SIGNING_KEY")) if signing_keys is None else signing_keys
    req = signed(case_no, req, keys)
    handle = client.get_workflow_handle_for(CaseWorkflow.run, case_workflow_id(case_no))
    loop = asyncio.get_running_loop()
    give_up_at = loop.time() + UNANSWERED_RESEND_SECONDS
    not_ready, resent, delay = 0, False, 0.2
    while True:
        try:
            return await handle.execute_update(CaseWorkflow.act, req, id=update_id(req))
        except WorkflowUpdateFailedError as e:
            error_type, message = _refusal(e.cause)
        except RPCTimeoutOrCancelledError as e:  # includes the Update's own timeout-or-cancelled error
            error_type, message = "EngineUnavailable", _unanswered(e)
        except RPCError as e:
            if e.status in _TRANSIENT_RPC:
                error_type, message = "EngineUnavailable", _unanswered(e)
            else:
                error_type, message = _rpc_refusal(case_no, e)
        if error_type == "DuplicateRequestError" and resent:
            # The earlier send was applied and its answer lost (a continued-as-new run no longer
            # knows the Update id, so the re-send meets the request-id check): report it applied.
            return await _already_applied(client, case_no)
        if error_type == "CaseNotReadyError" and not_ready < _NOT_READY_RETRIES:
            not_ready += 1
            await asyncio.sleep(0.2 * not_ready)  # the case is loading its policy
            continue
        if error_type == "EngineUnavailable":
            if loop.time() + delay < give_up_at:
                resent = True
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
                continue
            # Not a refusal: nothing says the action was refused, so nothing goes in refused_action.
            raise ActionRefusedError(case_no, error_type, message)
        break
    if pool is not None:
        await record_refusal(pool, case_no, req, error_type, message)
    raise ActionRefusedError(case_no, error_type, message)


def _unanswered(e: BaseException) -> str:
    return (f"the engine did not answer ({e}); the action may or may not have been recorded: sending it "
            "again with the same request id is safe")


async def _already_applied(client: Client, case_no: str) -> ActionResult:
    state = await get_state(client, case_no)
    due = state.deadline.due_date.isoformat() if state.deadline else None
    return ActionResult(case_no=case_no, stage=state.stage, seq=state.seq, due_date=due)


def _refusal(cause: BaseException | None) -> tuple[str, str]:
    """(error type, message) of a refused Update.

    A request whose text the models refuse (a NUL byte, an over-long field) fails to decode in
    the worker: the SDK rejects the Update with "Failed decoding arguments", the model's own
    message (naming the field) is the cause beneath it.
    """
    if isinstance(cause, ApplicationError) and cause.type == "RuntimeError" and "decoding" in cause.message:
        inner = cause.cause
        detail = inner.message if isinstance(inner, ApplicationError) else str(inner or "")
        return "InvalidInput", f"the request does not match the model: {detail}".strip()
    if isinstance(cause, ApplicationError):
        return cause.type or type(cause).__name__, cause.message
    return type(cause).__name__, str(cause)


def _rpc_refusal(case_no: str, e: RPCError) -> tuple[str, str]:
    text = str(e).lower()
    if "not found" in text:
        return "CaseNotFoundError", f"no case {case_no} has been filed"
    if "already completed" in text:
        return "CaseArchivedError", f"case {case_no} is archived (its look-back window is over)"
    return "RPCError", str(e)


async def record_refusal(pool: asyncpg.Pool, case_no: str, req: Any, error_type: str, message: str,
                         action: str | None = None) -> None:
    """One row per (case, request id, user); text made storable (a refused request may carry a NUL).

    `req` has `request_id` and `actor` (an ActionRequest, a programme's or campaign's request, an
    UnblockRequest); its `action` is recorded unless `action` names it."""

    def safe(v: object, n: int = 500) -> str:
        return printable_one_line(str(getattr(v, "value", v) or ""))[:n]

    actor = req.actor
    await pool.execute(
        """INSERT INTO refused_action (case_no, request_id, action, actor_user, actor_role, actor_unit,
                                       error_type, message)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (case_no, request_id, actor_user) DO NOTHING""",
        safe(case_no, 200), safe(req.request_id, 200), safe(action or req.action, 64), safe(actor.user_id, 200),
        safe(actor.role, 64), safe(actor.unit, 200), safe(error_type, 100), safe(message, 4000),
    )


async def get_state(client: Client, case_no: str) -> CaseState:
    handle = client.get_workflow_handle_for(CaseWorkflow.run, case_workflow_id(case_no))
    return await handle.query(CaseWorkflow.get_state)


async def allowed(client: Client, case_no: str, actor: Actor) -> list[Action]:
    handle = client.get_workflow_handle_for(CaseWorkflow.run, case_workflow_id(case_no))
    return await handle.query(CaseWorkflow.get_allowed_actions, actor)


async def unblock(client: Client, case_no: str, req: UnblockRequest, pool: asyncpg.Pool | None = None) -> str:
    """The office's UNBLOCK of a blocked case (issue 9): "UNBLOCKED", or "BLOCKED" when the
    retried step failed again. Refusals raise ActionRefusedError and, given a pool, are recorded
    in `refused_action` (action UNBLOCK), as a case action's are."""
    handle = client.get_workflow_handle_for(CaseWorkflow.run, case_workflow_id(case_no))
    try:
        return await handle.execute_update(CaseWorkflow.unblock, req, id=req.request_id)
    except WorkflowUpdateFailedError as e:
        error_type, message = _refusal(e.cause)
    except RPCTimeoutOrCancelledError as e:
        # Not a refusal: the engine did not answer (the same request id may be sent again).
        raise ActionRefusedError(case_no, "EngineUnavailable", _unanswered(e)) from None
    except RPCError as e:
        if e.status in _TRANSIENT_RPC:
            raise ActionRefusedError(case_no, "EngineUnavailable", _unanswered(e)) from None
        error_type, message = _rpc_refusal(case_no, e)
    if pool is not None:
        await record_refusal(pool, case_no, req, error_type, message, action="UNBLOCK")
    raise ActionRefusedError(case_no, error_type, message)


async def blocked(client: Client, case_no: str) -> BlockedStep | None:
    handle = client.get_workflow_handle_for(CaseWorkflow.run, case_workflow_id(case_no))
    return await handle.query(CaseWorkflow.get_blocked)


async def nudge(client: Client, case_no: str, reason: str) -> None:
    """Make a case re-evaluate its clock now (the escalation watchdog)."""
    await client.get_workflow_handle(case_workflow_id(case_no)).signal("nudge", reason)


async def update_or_refusal(
    handle: Any, update: Any, req: Any, *, update_id: str, result_type: Any = None,
    not_found: tuple[str, str], ended: tuple[str, str], not_ready: str, attempts: int = 11,
) -> tuple[Any, str, str]:
    """Send one Update to a long-lived workflow (programme, look-back campaign): (result, "", "")
    when accepted, else (None, error type, message). A workflow still loading (error type
    `not_ready`) is asked again, up to `attempts` times; a missing or ended workflow answers with
    the (error type, message) of `not_found` or `ended`."""
    error_type, message = "", ""
    for attempt in range(attempts):
        try:
            kwargs = {"result_type": result_type} if result_type is not None else {}
            return await handle.execute_update(update, req, id=update_id, **kwargs), "", ""
        except WorkflowUpdateFailedError as e:
            error_type, message = _refusal(e.cause)
        except RPCError as e:
            text = str(e).lower()
            if "not found" in text:
                error_type, message = not_found
            elif "already completed" in text:
                error_type, message = ended
            else:
                error_type, message = "RPCError", str(e)
        if error_type != not_ready or attempt == attempts - 1:
            break
        await asyncio.sleep(0.2 * (attempt + 1))
    return None, error_type, message
