"""InspectionProgrammeWorkflow: one durable workflow per programme (整改方案), thin over domain.programme.

It holds the plan-submission deadline and the six-month report timer (000:427), takes the
office's SUBMIT_PLAN and SUBMIT_REPORT as Updates (validated before anything enters history),
reads its cases' counts from the case projection every `progress_check_hours` (or at once on a
`refresh` signal) and completes when every case is closed or in long-term maintenance.
History stays bounded: a counts check records a ledger row only when the counts changed, and
the run continues as new past `max_history_events`.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from domain import programme as prog
    from domain.errors import CaseError
    from domain.programme import (
        PROGRAMME_WORKFLOW_NAME,
        DispatchScheduleRequest,
        ProgrammeActResult,
        ProgrammeDecision,
        ProgrammeInput,
        ProgrammePolicy,
        ProgrammePolicyRequest,
        ProgrammeRecordInput,
        ProgrammeRequest,
        ProgrammeStage,
        ProgrammeState,
        ProgrammeTimer,
        ProgressCounts,
    )

DISPATCH_SCHEDULE_PATCH = "programme-dispatch-schedule"
RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), backoff_coefficient=2.0,
                    maximum_interval=timedelta(minutes=1), non_retryable_error_types=["PolicyError"])
TIMEOUT = timedelta(seconds=30)


def _refused(e: CaseError) -> ApplicationError:
    return ApplicationError(str(e), type=type(e).__name__, non_retryable=True)


@workflow.defn(name=PROGRAMME_WORKFLOW_NAME)
class ProgrammeWorkflow:
    """Carries one programme from the feedback to the closure of its last case."""

    @workflow.init
    def __init__(self, inp: ProgrammeInput) -> None:
        self._state: ProgrammeState | None = inp.state
        self._lock = asyncio.Lock()
        self._dirty = False
        self._refresh = inp.state is None  # a new run reads its counts at once

    @workflow.run
    async def run(self, inp: ProgrammeInput) -> ProgrammeActResult:
        if self._state is None:
            policy = inp.policy or await workflow.execute_activity(
                "load_programme_policy", ProgrammePolicyRequest(programme_id=inp.spec.programme_id),
                result_type=ProgrammePolicy, start_to_close_timeout=TIMEOUT, retry_policy=RETRY)
            try:
                created = prog.new_programme(inp.spec, policy, workflow.now(), inp.created_by)
            except CaseError as e:
                raise _refused(e) from None
            async with self._lock:
                await self._perform(created)
                if inp.submit_plan is not None:
                    try:
                        await self._perform(prog.decide(self._require(), inp.submit_plan, workflow.now()))
                    except CaseError as e:  # the programme exists; the plan waits for a valid SUBMIT_PLAN
                        workflow.logger.warning("plan submitted with the creation refused: %s", e)
            # 一月一调度: the programme's monthly dispatch Schedule (workflows/dispatch_schedule.py).
            # Programmes created before this step have none (create it with casectl dispatch schedule).
            if workflow.patched(DISPATCH_SCHEDULE_PATCH) and policy.dispatch_day_of_month:
                await workflow.execute_activity(
                    "ensure_dispatch_schedule",
                    DispatchScheduleRequest(programme_id=inp.spec.programme_id,
                                            day_of_month=policy.dispatch_day_of_month),
                    result_type=str, start_to_close_timeout=TIMEOUT, retry_policy=RETRY)
        while True:
            state = self._require()
            if state.stage is ProgrammeStage.COMPLETED:
                break
            if self._continue_as_new_due():
                await workflow.wait_condition(lambda: workflow.all_handlers_finished() and not self._lock.locked())
                state = self._require()
                state.runs += 1
                workflow.continue_as_new(ProgrammeInput(spec=state.spec, created_by=inp.created_by, state=state))
            await self._wait()
            async with self._lock:
                state = self._require()
                woken = prog.on_wakeup(state, workflow.now())
                if woken is not None:
                    await self._perform(woken)
                if self._refresh or self._check_due():
                    self._refresh = False
                    counts = await workflow.execute_activity(
                        "programme_progress", state.programme_id, result_type=ProgressCounts,
                        start_to_close_timeout=TIMEOUT, retry_policy=RETRY)
                    seen = prog.on_progress(self._require(), counts, workflow.now())
                    if seen is not None:
                        await self._perform(seen)
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self._result()

    # ------------------------------------------------------------ the clock

    def _next_check(self):  # type: ignore[no-untyped-def]
        s = self._require()
        if s.counts_at is None:
            return workflow.now()
        return s.counts_at + timedelta(hours=s.policy.progress_check_hours)

    def _check_due(self) -> bool:
        return workflow.now() >= self._next_check()

    async def _wait(self) -> None:
        state = self._require()
        wakes = [self._next_check()]
        nxt = prog.next_wakeup(state)
        if nxt is not None:
            wakes.append(nxt)
        delay = (min(wakes) - workflow.now()).total_seconds()
        self._dirty = False
        if self._refresh or delay <= 0:
            return
        try:
            await workflow.wait_condition(lambda: self._dirty or self._refresh or self._continue_as_new_due(),
                                          timeout=delay, timeout_summary="programme-clock")
        except TimeoutError:
            pass

    def _continue_as_new_due(self) -> bool:
        s = self._state
        if s is None or s.pending_timer is not None:
            return False
        info = workflow.info()
        return info.is_continue_as_new_suggested() or info.get_current_history_length() >= s.policy.max_history_events

    def _require(self) -> ProgrammeState:
        if self._state is None:
            raise ApplicationError("programme is still being created; retry", type="ProgrammeNotReadyError")
        return self._state

    # ------------------------------------------------------------ performing

    async def _perform(self, decision: ProgrammeDecision) -> None:
        self._state = decision.state
        entries, notices = list(decision.entries), list(decision.notices)
        if decision.timer_request is not None:
            timer = await workflow.execute_activity(
                "programme_timer", decision.timer_request, result_type=ProgrammeTimer,
                start_to_close_timeout=TIMEOUT, retry_policy=RETRY)
            applied = prog.apply_timer(self._state, timer, workflow.now())
            self._state = applied.state
            entries += applied.entries
        if entries:
            await workflow.execute_activity(
                "record_programme_events",
                ProgrammeRecordInput(entries=entries, notices=notices, projection=prog.projection(self._state),
                                     workflow_run_id=workflow.info().run_id),
                start_to_close_timeout=TIMEOUT, retry_policy=RETRY)
        self._dirty = True

    def _result(self) -> ProgrammeActResult:
        s = self._require()
        return ProgrammeActResult(programme_id=s.programme_id, stage=s.stage, seq=s.seq,
                                  report_due_date=s.report_timer.due_date if s.report_timer else None)

    # ------------------------------------------------------------ messages

    @workflow.update(name="act")
    async def act(self, req: ProgrammeRequest) -> ProgrammeActResult:
        """The office's SUBMIT_PLAN / SUBMIT_REPORT; refused requests raise a named ApplicationError."""
        await workflow.wait_condition(lambda: self._state is not None and self._state.seq > 0)
        async with self._lock:
            try:
                decision = prog.decide(self._require(), req, workflow.now())
            except CaseError as e:  # validated earlier, but the programme may have moved since
                raise _refused(e) from None
            await self._perform(decision)
            return self._result()

    @act.validator
    def _validate_act(self, req: ProgrammeRequest) -> None:
        try:
            prog.validate(self._require(), req)
        except CaseError as e:
            raise _refused(e) from None

    @workflow.signal(name="refresh")
    def refresh(self, reason: str) -> None:
        """Read the case counts now (a case changed, or an operator asks); harmless when nothing changed."""
        self._refresh = True

    @workflow.query(name="get_state")
    def get_state(self) -> ProgrammeState:
        return self._require()


__all__ = ["ProgrammeWorkflow"]
