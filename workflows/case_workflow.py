"""CaseWorkflow: one durable workflow per case, a thin shell over `domain/`.

This module is only the workflow's definition: its run method, Updates with their validators,
signals and queries, each one line into `workflows/case_logic.py::CaseLogic`, where the case's
behaviour is (waiting, deciding through `domain/`, performing). This module, case_logic.py and
`domain/` are passed through the SDK's sandbox and imported once per process (issues 15 and 9:
a new or rebuilt case re-imports nothing), so `tests/test_architecture.py` and the replay suite,
not the sandbox, keep I/O, clocks and randomness out of them.
Every change that could alter a running case's history must go behind `workflow.patched`.
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from domain.blocking import BlockedStep, UnblockRequest
    from domain.enums import Action
    from domain.fanout_types import ChildStatus
    from domain.lifecycle import allowed_actions
    from domain.model import ActionRequest, Actor, CaseState
    from workflows.case_logic import (  # noqa: F401 - the patch ids are read here (worker.known_patch_ids)
        ACTIVITY_RETRY,
        ACTIVITY_TIMEOUT,
        ARCHIVE_SNAPSHOT_PATCH,
        BLOCKED_PATCH,
        CLOCK_LEDGER_PATCH,
        ESCALATION_RULES_PATCH,
        FANOUT_PATCH,
        FOLLOWUP_PATCH,
        IMPLIED_BY_CLOCK,
        IMPLIED_BY_LOCAL,
        LOCAL_ACTIVITIES_PATCH,
        CaseLogic,
    )
    from workflows.contracts import WORKFLOW_NAME, ActionResult, CaseWorkflowInput, CaseWorkflowResult


@workflow.defn(name=WORKFLOW_NAME)
class CaseWorkflow(CaseLogic):
    """Carries one case from filing to 销号 and beyond (long-term, look-back)."""

    @workflow.init
    def __init__(self, inp: CaseWorkflowInput) -> None:
        self._setup(inp)

    @workflow.run
    async def run(self, inp: CaseWorkflowInput) -> CaseWorkflowResult:
        return await self._run(inp)

    @workflow.update(name="act")
    async def act(self, req: ActionRequest) -> ActionResult:
        """Take one handler action; refused actions raise a named ApplicationError."""
        return await self._act_update(req)

    @act.validator
    def _validate_act(self, req: ActionRequest) -> None:
        self._check_act(req)

    @workflow.update(name="reopen_outcome")
    async def reopen_outcome(self, update_id: str) -> ActionResult:
        """Issue 14: the outcome of the REOPEN this run of an archived case was started with."""
        return await self._reopen_outcome_update(update_id)

    @reopen_outcome.validator
    def _validate_reopen_outcome(self, update_id: str) -> None:
        self._check_reopen_outcome(update_id)

    @workflow.update(name="unblock")
    async def unblock(self, req: UnblockRequest) -> str:
        """The office's UNBLOCK (domain/blocking.py): retry or drop the held decision."""
        return await self._unblock_update(req)

    @unblock.validator
    def _validate_unblock(self, req: UnblockRequest) -> None:
        self._check_unblock(req)

    @workflow.signal(name="child_update")
    def child_update(self, status: ChildStatus) -> None:
        """A child case of this fanned-out item reports its stage (issue 13; applied in the main loop)."""
        self._on_child_update(status)

    @workflow.signal(name="nudge")
    def nudge(self, reason: str) -> None:
        """The escalation watchdog's nudge: re-evaluate the clock now (harmless when nothing is due)."""
        self._on_nudge(reason)

    @workflow.query(name="blocked")
    def get_blocked(self) -> BlockedStep | None:
        """Why the case is blocked (None when it is not)."""
        return self._blocked

    @workflow.query(name="get_state")
    def get_state(self) -> CaseState:
        """The full case state."""
        return self._require_state()

    @workflow.query(name="allowed_actions")
    def get_allowed_actions(self, actor: Actor) -> list[Action]:
        """The actions `actor` may take now (for buttons in the admin tool)."""
        return allowed_actions(self._require_state(), actor)


__all__ = ["CaseWorkflow"]
