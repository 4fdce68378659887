"""County fan-out in the case workflow (issue 13): a mixin of `CaseLogic`, passed through the
sandbox like it. The parent's TRANSFER loads the county list and starts one child case per
county; a child reports its stage to its parent, which applies the reports in its main loop.
The methods use CaseLogic's state (`_lock`, `_blocked`, `_child_updates`, `_reported`) and its
`_perform_or_block` / `_settle_block`.
"""

from __future__ import annotations

from temporalio import workflow
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import ActivityError, ApplicationError, WorkflowAlreadyStartedError
from temporalio.workflow import ParentClosePolicy

with workflow.unsafe.imports_passed_through():
    from domain import decide as d
    from domain import fanout
    from domain.enums import Stage
    from domain.errors import CaseError
    from domain.fanout_types import ChildStatus, CountyList
    from domain.model import ActionRequest, CaseState
    from workflows.activity_options import ACTIVITY_RETRY, ACTIVITY_TIMEOUT
    from workflows.contracts import WORKFLOW_NAME, CaseWorkflowInput, CountiesRequest, case_workflow_id


class FanoutMixin:
    """The fan-out steps of a case (parent and child)."""

    async def _fanout_transfer(self, state: CaseState, req: ActionRequest) -> d.Decision:
        """TRANSFER of an item that fans out: the county list (configuration) comes from an activity."""
        try:
            counties = await workflow.execute_activity(
                "load_counties", CountiesRequest(case_no=state.case_no), result_type=CountyList,
                start_to_close_timeout=ACTIVITY_TIMEOUT, retry_policy=ACTIVITY_RETRY,
            )
        except ActivityError as e:
            raise ApplicationError(
                f"case {state.case_no}: the county list could not be read: {e.cause or e}",
                type="InvalidFilingError", non_retryable=True,
            ) from None
        return fanout.decide_transfer(state, req, workflow.now(), counties)

    async def _start_children(self, req: ActionRequest) -> None:
        """Start one case workflow per child (ids case-<case_no>.<n>), each transferred at once."""
        s = self._require_state()
        assert s.fanout is not None
        for link in s.fanout.children:
            try:
                await workflow.start_child_workflow(
                    WORKFLOW_NAME,
                    CaseWorkflowInput(
                        filing=fanout.child_filing(s.filing, link), filed_by=req.actor, policy=s.policy,
                        transfer=fanout.child_transfer(req, link),
                    ),
                    id=case_workflow_id(link.case_no),
                    parent_close_policy=ParentClosePolicy.ABANDON,  # children outlive the parent's runs
                    id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                )
            except WorkflowAlreadyStartedError:
                workflow.logger.warning("child case %s already exists; not started again", link.case_no)

    async def _child_transfer(self, req: ActionRequest) -> None:
        async with self._lock:
            state = self._require_state()
            if self._blocked is not None or state.stage is not Stage.REGISTERED:
                return
            try:
                decision = d.decide(state, req, workflow.now())
            except CaseError as e:  # left REGISTERED for the office to transfer by hand
                workflow.logger.warning("child case %s not transferred: %s", state.case_no, e)
                return
            await self._perform_or_block(decision, origin="FANOUT_TRANSFER", request_id=req.request_id)
        await self._settle_block()

    async def _report_to_parent(self) -> None:
        """A child case tells its parent its stage and due date whenever they change."""
        s = self._require_state()
        key = (s.stage, s.deadline.due_date if s.deadline else None, s.cycle)
        if key == self._reported:
            return
        self._reported = key
        status = ChildStatus(case_no=s.case_no, stage=s.stage, due_date=key[1], cycle=s.cycle, seq=s.seq)
        try:
            await workflow.get_external_workflow_handle(case_workflow_id(s.filing.parent_case_no)).signal(
                "child_update", status
            )
        except Exception as e:  # noqa: BLE001 - the parent is gone (archived): nothing to tell
            workflow.logger.warning("child %s could not report to its parent: %s", s.case_no, e)

    async def _apply_child_updates(self) -> None:
        while self._child_updates and self._blocked is None:
            status = self._child_updates.pop(0)
            async with self._lock:
                seed = workflow.random().randint(1, 2**31 - 1)  # recorded if a spot-check sample is drawn
                decision = fanout.on_child_status(self._require_state(), status, workflow.now(), seed)
                if decision is not None:
                    await self._perform_or_block(decision, origin=f"CHILD_UPDATE {status.case_no}")


__all__ = ["FanoutMixin"]
