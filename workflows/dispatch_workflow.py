"""Monthly dispatch (一月一调度一督办): DispatchWorkflow and the DispatchTick a Schedule starts.

`DispatchTick(programme_id)` is what the programme's Temporal Schedule starts each month
(workflows/dispatch_schedule.py). A Schedule names its runs `<id>-<scheduled time>`, so the tick
reads its nominal time (the `TemporalScheduledStartTime` search attribute the server sets; on a
backfill it is the backfilled month's time), takes the month it falls in (Asia/Shanghai), and
starts the month's `Dispatch` as a child with the workflow id `dispatch-<programme>-<YYYY-MM>`
and the reuse policy ALLOW_DUPLICATE_FAILED_ONLY: a month that has a completed (or running)
dispatch refuses a second one (the tick then ends ALREADY_DISPATCHED); a failed or terminated
one may be run again. `casectl dispatch run-now` starts the same `Dispatch` with the same id.

`Dispatch(programme_id, period)` takes the time from the workflow (`as_of`), the calendar and the
programme's cases from activities (recorded in history), computes the figures in
`domain.dispatch`, and has one activity write the report (xlsx, HTML) and each unit's notice
(outbox key `dispatch:<programme>:<period>:<unit>`) in one transaction.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy, SearchAttributeKey, WorkflowIDReusePolicy
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError

with workflow.unsafe.imports_passed_through():
    from domain.calendar import WorkingCalendar
    from domain.dispatch import (
        CaseSnapshot,
        DispatchError,
        check_programme_id,
        check_runnable,
        compile_dispatch,
        dispatch_workflow_id,
        parse_period,
        period_of,
    )
    from workflows.dispatch_contracts import (
        DISPATCH_TICK_WORKFLOW,
        DISPATCH_WORKFLOW,
        SCHEDULED_START_TIME,
        DispatchInput,
        DispatchReportWrite,
        DispatchReportWritten,
        DispatchResult,
        DispatchTickInput,
        DispatchTickResult,
        ProgrammeCasesRequest,
    )

RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), backoff_coefficient=2.0,
                    maximum_interval=timedelta(minutes=1))
READ_TIMEOUT = timedelta(seconds=60)
WRITE_TIMEOUT = timedelta(minutes=2)  # renders the xlsx and HTML of the whole programme
SCHEDULED_AT = SearchAttributeKey.for_datetime(SCHEDULED_START_TIME)


def _refuse(e: DispatchError) -> ApplicationError:
    return ApplicationError(str(e), type="DispatchError", non_retryable=True)


@workflow.defn(name=DISPATCH_WORKFLOW)
class DispatchWorkflow:
    @workflow.run
    async def run(self, inp: DispatchInput) -> DispatchResult:
        as_of = workflow.now()
        try:
            programme_id = check_programme_id(inp.programme_id)
            period = parse_period(inp.period)
            check_runnable(period, as_of)
        except DispatchError as e:
            raise _refuse(e) from None
        calendar = await workflow.execute_activity(
            "load_dispatch_calendar", result_type=WorkingCalendar,
            start_to_close_timeout=READ_TIMEOUT, retry_policy=RETRY)
        cases = await workflow.execute_activity(
            "load_programme_cases",
            ProgrammeCasesRequest(programme_id=programme_id, period=str(period), as_of=as_of),
            result_type=list[CaseSnapshot], start_to_close_timeout=READ_TIMEOUT, retry_policy=RETRY)
        figures = compile_dispatch(programme_id, period, as_of, cases, calendar)
        info = workflow.info()
        written = await workflow.execute_activity(
            "write_dispatch_report",
            DispatchReportWrite(figures=figures, workflow_id=info.workflow_id, workflow_run_id=info.run_id,
                                trigger=inp.trigger),
            result_type=DispatchReportWritten, start_to_close_timeout=WRITE_TIMEOUT, retry_policy=RETRY)
        return DispatchResult(programme_id=programme_id, period=str(period), workflow_id=info.workflow_id,
                              inserted=written.inserted, units=len(figures.units), cases=figures.cases,
                              notices=written.notices)


@workflow.defn(name=DISPATCH_TICK_WORKFLOW)
class DispatchTickWorkflow:
    @workflow.run
    async def run(self, inp: DispatchTickInput) -> DispatchTickResult:
        scheduled = workflow.info().typed_search_attributes.get(SCHEDULED_AT)
        at = scheduled or workflow.now()  # started by hand (not by the Schedule): this month
        period = period_of(at)
        wid = dispatch_workflow_id(inp.programme_id, period)
        try:
            result = await workflow.execute_child_workflow(
                DispatchWorkflow.run,
                DispatchInput(programme_id=inp.programme_id, period=str(period), trigger="SCHEDULE",
                              scheduled_at=scheduled),
                id=wid,
                id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY,
                parent_close_policy=workflow.ParentClosePolicy.ABANDON,
            )
        except WorkflowAlreadyStartedError:
            workflow.logger.info("dispatch %s exists already: this month was dispatched", wid)
            return DispatchTickResult(programme_id=inp.programme_id, period=str(period),
                                      dispatch_workflow_id=wid, status="ALREADY_DISPATCHED")
        return DispatchTickResult(programme_id=inp.programme_id, period=str(period), dispatch_workflow_id=wid,
                                  status="DISPATCHED", result=result)
