"""CaseWorkflow: one durable workflow per case, a thin shell over `domain/`.

It waits (for handler Updates and for the clock), asks `domain.decide` what
happens, and performs: the calendar activity computes due dates, the record
activity writes ledger, projection and outbox in one transaction. Every change
that could alter a running case's history must go behind `workflow.patched`.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy, SearchAttributeKey
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from domain import decide as d
    from domain import escalation as esc
    from domain.enums import Action, Stage
    from domain.errors import CaseError
    from domain.lifecycle import allowed_actions
    from domain.model import (
        ActionRequest,
        Actor,
        CaseFiling,
        CaseState,
        ComputedDeadline,
    )
    from domain.policy import Policy
    from domain.screening import screen
    from workflows.contracts import (
        CASE_DUE_AT,
        CASE_KIND,
        CASE_STAGE,
        ESCALATION_RUNG,
        INSPECTION_ROUND,
        RESPONSIBLE_UNITS,
        WORKFLOW_NAME,
        ActionResult,
        CaseWorkflowInput,
        CaseWorkflowResult,
        PolicyRequest,
        RecordInput,
    )

ACTIVITY_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=1),
    non_retryable_error_types=["InvalidFilingError", "DeadlineParseError"],
)
ACTIVITY_TIMEOUT = timedelta(seconds=30)
# Issue 9 escalation rules (rung modes, proposals, profile order, resume): runs begun before
# it keep the old ladder until they continue-as-new (domain/escalation.py adopt_rules).
ESCALATION_RULES_PATCH = "escalation-rules-2"


def _new_case(filing: CaseFiling, policy: Policy, filed_by: Actor) -> d.Decision:
    try:
        return d.new_case(filing, policy, workflow.now(), filed_by)
    except CaseError as e:  # e.g. an unknown ladder profile: the case cannot exist
        raise ApplicationError(str(e), type=type(e).__name__, non_retryable=True) from None


@workflow.defn(name=WORKFLOW_NAME)
class CaseWorkflow:
    """Carries one case from filing to 销号 and beyond (long-term, look-back)."""

    @workflow.init
    def __init__(self, inp: CaseWorkflowInput) -> None:
        self._state: CaseState | None = inp.state
        self._lock = asyncio.Lock()
        self._dirty = False
        self._sa: dict[str, object] = {}
        self._filing: d.Decision | None = None
        if inp.state is None and inp.policy is not None:
            # With the policy in the input the case exists from the first instant,
            # so an action sent right after the start is validated, not bounced.
            self._filing = _new_case(inp.filing, inp.policy, inp.filed_by)
            self._state = self._filing.state
        self._filed = inp.state is not None
        self._pending: dict[object, ActionRequest] = {}  # accepted `act` Updates not yet applied

    @workflow.run
    async def run(self, inp: CaseWorkflowInput) -> CaseWorkflowResult:
        self._esc_rules = workflow.patched(ESCALATION_RULES_PATCH)
        if self._state is not None:
            esc.adopt_rules(self._state, self._esc_rules)
        if not self._filed:
            if self._filing is None:
                policy = await workflow.execute_activity(
                    "load_policy",
                    PolicyRequest(case_no=inp.filing.case_no, ladder_profile=inp.filing.ladder_profile),
                    result_type=Policy,
                    start_to_close_timeout=ACTIVITY_TIMEOUT,
                    retry_policy=ACTIVITY_RETRY,
                )
                self._filing = _new_case(inp.filing, policy, inp.filed_by)
                esc.adopt_rules(self._filing.state, self._esc_rules)
            async with self._lock:
                await self._perform(self._filing)
            self._filed = True
        else:
            self._upsert_search_attributes()
        while True:
            state = self._require_state()
            if state.stage is Stage.ARCHIVED:
                break
            if self._continue_as_new_due():
                await workflow.wait_condition(
                    lambda: workflow.all_handlers_finished() and not self._lock.locked()
                )
                state = self._require_state()
                state.runs += 1
                workflow.continue_as_new(
                    CaseWorkflowInput(filing=state.filing, filed_by=inp.filed_by, state=state)
                )
            await self._wait_for_clock_or_action()
            async with self._lock:
                decision = d.on_wakeup(self._require_state(), workflow.now())
                if decision is not None:
                    await self._perform(decision)
        await workflow.wait_condition(workflow.all_handlers_finished)
        s = self._require_state()
        return CaseWorkflowResult(case_no=s.case_no, stage=s.stage, seq=s.seq)

    async def _wait_for_clock_or_action(self) -> None:
        wake = d.next_wakeup(self._require_state())
        self._dirty = False
        woken = lambda: self._dirty or self._continue_as_new_due()  # noqa: E731
        if wake is None:
            await workflow.wait_condition(woken)
            return
        delay = (wake - workflow.now()).total_seconds()
        if delay <= 0:
            return
        try:
            await workflow.wait_condition(woken, timeout=delay, timeout_summary="case-deadline")
        except TimeoutError:
            pass

    def _continue_as_new_due(self) -> bool:
        info = workflow.info()
        state = self._state
        if state is None or state.pending_deadline is not None:
            return False
        return (
            info.is_continue_as_new_suggested()
            or info.get_current_history_length() >= state.policy.max_history_events
        )

    def _require_state(self) -> CaseState:
        if self._state is None:
            raise ApplicationError("case is still being filed; retry", type="CaseNotReadyError")
        return self._state

    # ------------------------------------------------------------ performing

    async def _perform(self, decision: d.Decision) -> None:
        """Adopt a decision: compute its deadline, then record everything once."""
        self._state = decision.state
        entries, notices = list(decision.entries), list(decision.notices)
        if decision.deadline_request is not None:
            computed = await workflow.execute_activity(
                "compute_deadline",
                decision.deadline_request,
                result_type=ComputedDeadline,
                start_to_close_timeout=ACTIVITY_TIMEOUT,
                retry_policy=ACTIVITY_RETRY,
            )
            applied = d.apply_deadline(self._state, computed, workflow.now())
            self._state = applied.state
            entries += applied.entries
            notices = d.attach_deadline(notices, computed) + applied.notices
        if entries:
            await workflow.execute_activity(
                "record_case_events",
                RecordInput(
                    entries=entries,
                    notices=notices,
                    projection=d.projection(
                        self._state, with_filing=any(e.event in d.FILING_EVENTS for e in entries)
                    ),
                    workflow_run_id=workflow.info().run_id,
                ),
                start_to_close_timeout=ACTIVITY_TIMEOUT,
                retry_policy=ACTIVITY_RETRY,
            )
        self._upsert_search_attributes()
        self._dirty = True

    def _upsert_search_attributes(self) -> None:
        s = self._require_state()
        f = s.filing
        wanted: list[tuple[SearchAttributeKey, object]] = [
            (CASE_STAGE, s.stage.value),
            (CASE_KIND, f.kind.value),
            (RESPONSIBLE_UNITS, list(f.responsible_units)),
            (INSPECTION_ROUND, f.inspection_round or None),
            (CASE_DUE_AT, s.deadline.due_at if s.deadline else None),
            (ESCALATION_RUNG, s.escalation.level),
        ]
        updates = []
        for key, value in wanted:
            if self._sa.get(key.name, "<unset>") == value:
                continue
            self._sa[key.name] = value
            updates.append(key.value_unset() if value is None else key.value_set(value))  # type: ignore[arg-type]
        if updates:
            workflow.upsert_search_attributes(updates)

    # ------------------------------------------------------------ messages

    @workflow.update(name="act")
    async def act(self, req: ActionRequest) -> ActionResult:
        """Take one handler action; refused actions raise a named ApplicationError."""
        # Noted before the first await: validators of Updates delivered in the same task see it.
        key = object()
        self._pending[key] = req
        try:
            return await self._act(req, key)
        finally:
            self._pending.pop(key, None)

    async def _act(self, req: ActionRequest, key: object) -> ActionResult:
        await workflow.wait_condition(lambda: self._filed)  # FILED is always ledger row 1
        async with self._lock:
            try:
                decision = d.decide(self._require_state(), req, workflow.now())
            except CaseError as e:
                # Validated earlier, but another action may have moved the case since.
                raise ApplicationError(str(e), type=type(e).__name__, non_retryable=True) from None
            finally:
                self._pending.pop(key, None)  # from here on the state itself holds it
            await self._perform(decision)
            s = self._require_state()
            return ActionResult(
                case_no=s.case_no,
                stage=s.stage,
                seq=s.seq,
                due_date=s.deadline.due_date.isoformat() if s.deadline else None,
            )

    @act.validator
    def _validate_act(self, req: ActionRequest) -> None:
        state = self._require_state()
        try:
            d.validate(state, req, workflow.now())
            screen(state, req, workflow.now(), list(self._pending.values()))  # validator only: replay-safe
        except CaseError as e:
            raise ApplicationError(str(e), type=type(e).__name__, non_retryable=True) from None

    @workflow.query(name="get_state")
    def get_state(self) -> CaseState:
        """The full case state."""
        return self._require_state()

    @workflow.query(name="allowed_actions")
    def get_allowed_actions(self, actor: Actor) -> list[Action]:
        """The actions `actor` may take now (for buttons in the admin tool)."""
        return allowed_actions(self._require_state(), actor)


__all__ = ["CaseWorkflow"]
