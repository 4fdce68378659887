"""LookbackCampaignWorkflow: one durable workflow per look-back campaign (回头看), thin over domain.lookback.

Workflow id `lookback-<campaign id>`. The office's selection, the inspectors' findings and the
office's close are Updates validated (who, stage, input, one finding per case) before anything
enters history; the reminders are durable timers computed by an activity from the calendar; a
finding that reopens a case calls the `lookback_reopen` activity (workflows/reopen.py) with the
request id `lookback-<campaign>-<seq>`. The run ends when the campaign is CLOSED; it continues as
new past `max_history_events`.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from domain import lookback as lb
    from domain.calendar import local_date
    from domain.errors import CaseError
    from domain.lookback import (
        LOOKBACK_WORKFLOW_NAME,
        CampaignInput,
        CampaignResult,
        CampaignStage,
        CampaignState,
        Candidate,
        CandidateQuery,
        CloseRequest,
        FindingRequest,
        LookbackDecision,
        LookbackPolicy,
        LookbackRecordInput,
        ReopenOutcome,
        Schedule,
        SelectRequest,
    )

RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), backoff_coefficient=2.0,
                    maximum_interval=timedelta(minutes=1),
                    non_retryable_error_types=["PolicyError", "InvalidInput"])
TIMEOUT = timedelta(seconds=30)
REOPEN_TIMEOUT = timedelta(minutes=2)  # reopen_case may resend an unanswered Update for 30 s


def _refused(e: CaseError) -> ApplicationError:
    return ApplicationError(str(e), type=type(e).__name__, non_retryable=True)


@workflow.defn(name=LOOKBACK_WORKFLOW_NAME)
class LookbackCampaignWorkflow:
    """Carries one campaign from its definition to its report."""

    @workflow.init
    def __init__(self, inp: CampaignInput) -> None:
        self._state: CampaignState | None = inp.state
        self._lock = asyncio.Lock()
        self._dirty = False

    @workflow.run
    async def run(self, inp: CampaignInput) -> CampaignResult:
        if self._state is None:
            policy = inp.policy or await workflow.execute_activity(
                "load_lookback_policy", inp.spec.campaign_id, result_type=LookbackPolicy,
                start_to_close_timeout=TIMEOUT, retry_policy=RETRY)
            try:
                created = lb.new_campaign(inp.spec, policy, workflow.now(), inp.created_by)
            except CaseError as e:
                raise _refused(e) from None
            async with self._lock:
                await self._perform(created)
        while self._require().stage is not CampaignStage.CLOSED:
            if self._continue_as_new_due():
                await workflow.wait_condition(lambda: workflow.all_handlers_finished() and not self._lock.locked())
                state = self._require()
                if state.stage is not CampaignStage.CLOSED:
                    state.runs += 1
                    workflow.continue_as_new(CampaignInput(spec=state.spec, created_by=state.created_by, state=state))
            await self._wait()
            async with self._lock:
                woken = lb.on_wakeup(self._require(), workflow.now())
                if woken is not None:
                    await self._perform(woken)
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self._result()

    # ------------------------------------------------------------ the clock

    async def _wait(self) -> None:
        nxt = lb.next_wakeup(self._require())
        self._dirty = False
        if nxt is not None and nxt <= workflow.now():
            return
        wake = lambda: self._dirty or self._continue_as_new_due()  # noqa: E731
        if nxt is None:
            await workflow.wait_condition(wake)
            return
        try:
            await workflow.wait_condition(wake, timeout=(nxt - workflow.now()).total_seconds(),
                                          timeout_summary="lookback-reminder")
        except TimeoutError:
            pass

    def _continue_as_new_due(self) -> bool:
        s = self._state
        if s is None or s.schedule_pending:
            return False
        info = workflow.info()
        return info.is_continue_as_new_suggested() or info.get_current_history_length() >= s.policy.max_history_events

    def _require(self) -> CampaignState:
        if self._state is None:
            raise ApplicationError("campaign is still being created; retry", type="CampaignNotReadyError")
        return self._state

    # ------------------------------------------------------------ performing

    async def _record(self, decision: LookbackDecision) -> None:
        self._state = decision.state
        if decision.entries:
            await workflow.execute_activity(
                "record_lookback_events",
                LookbackRecordInput(entries=decision.entries, notices=decision.notices, state=decision.state,
                                    workflow_run_id=workflow.info().run_id),
                start_to_close_timeout=TIMEOUT, retry_policy=RETRY)
        self._dirty = True

    async def _perform(self, decision: LookbackDecision) -> None:
        await self._record(decision)
        if decision.schedule is not None:
            schedule = await workflow.execute_activity(
                "lookback_schedule", decision.schedule, result_type=Schedule,
                start_to_close_timeout=TIMEOUT, retry_policy=RETRY)
            await self._record(lb.apply_schedule(self._require(), schedule, workflow.now()))
        for order in decision.reopen:
            outcome = await workflow.execute_activity(
                "lookback_reopen", order, result_type=ReopenOutcome,
                activity_id=order.request_id, start_to_close_timeout=REOPEN_TIMEOUT, retry_policy=RETRY)
            await self._record(lb.apply_reopen(self._require(), outcome, order.seq, workflow.now()))
        done = lb.after_finding(self._require(), workflow.now())
        if done is not None:
            await self._record(done)

    def _result(self) -> CampaignResult:
        s = self._require()
        return CampaignResult(campaign_id=s.campaign_id, stage=s.stage, seq=s.seq, selected=len(s.items),
                              unvisited=len(s.unvisited()))

    async def _ready(self) -> None:
        await workflow.wait_condition(lambda: self._state is not None and not self._state.schedule_pending)

    # ------------------------------------------------------------ messages

    @workflow.update(name="select")
    async def select(self, req: SelectRequest) -> CampaignResult:
        """The office selects the cases (once): filters, optionally a sample of a recorded seed."""
        await self._ready()
        async with self._lock:
            state = self._require()
            try:
                lb.validate_select(state, req)
            except CaseError as e:
                raise _refused(e) from None
            candidates = await workflow.execute_activity(
                "lookback_candidates",
                CandidateQuery(campaign_id=state.campaign_id,
                               programme_id=req.criteria.programme_id or state.spec.programme_id,
                               limit=state.policy.max_selection * 4),
                result_type=list[Candidate], start_to_close_timeout=TIMEOUT, retry_policy=RETRY)
            seed = workflow.random().randint(0, 2**31 - 1)
            try:
                decision = lb.decide_select(self._require(), req, candidates, seed, workflow.now())
            except CaseError as e:
                raise _refused(e) from None
            await self._perform(decision)
            return self._result()

    @select.validator
    def _validate_select(self, req: SelectRequest) -> None:
        try:
            lb.validate_select(self._require(), req)
        except CaseError as e:
            raise _refused(e) from None

    @workflow.update(name="finding")
    async def finding(self, req: FindingRequest) -> CampaignResult:
        """An inspector's one finding on a selected case; a reopening finding reopens it."""
        await self._ready()
        async with self._lock:
            try:
                decision = lb.decide_finding(self._require(), req, workflow.now())
            except CaseError as e:
                raise _refused(e) from None
            await self._perform(decision)
            return self._result()

    @finding.validator
    def _validate_finding(self, req: FindingRequest) -> None:
        try:
            lb.validate_finding(self._require(), req, local_date(workflow.now()))
        except CaseError as e:
            raise _refused(e) from None

    @workflow.update(name="close")
    async def close(self, req: CloseRequest) -> CampaignResult:
        """The office ends the campaign (unvisited cases stay unvisited in the report)."""
        await self._ready()
        async with self._lock:
            try:
                decision = lb.decide_close(self._require(), req, workflow.now())
            except CaseError as e:
                raise _refused(e) from None
            await self._perform(decision)
            return self._result()

    @close.validator
    def _validate_close(self, req: CloseRequest) -> None:
        try:
            lb.validate_close(self._require(), req)
        except CaseError as e:
            raise _refused(e) from None

    @workflow.query(name="get_state")
    def get_state(self) -> CampaignState:
        return self._require()


__all__ = ["LookbackCampaignWorkflow"]
