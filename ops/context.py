"""Log context: case number, workflow id and run id on every log line of activities and workflows.

* `configure_logging` sets up structlog (JSON with `LOG_JSON=true`) and renders stdlib records,
  Temporal's included, the same way. Records of `temporalio.workflow.logger` and
  `temporalio.activity.logger` carry the SDK's `temporal_workflow` / `temporal_activity` extras;
  `temporal_fields` lifts them into top-level `case_no`, `workflow_id`, `run_id` fields.
* `EngineInterceptor` (a worker interceptor) binds the same fields as structlog context
  variables around every activity attempt, so `structlog.get_logger(...)` lines inside
  activities carry them too, and counts failed attempts by error type
  (`case_engine_activity_failures`, see ops.metrics).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog
from temporalio import activity
from temporalio.exceptions import ApplicationError
from temporalio.worker import (
    ActivityInboundInterceptor,
    ExecuteActivityInput,
    Interceptor,
)

CASE_WORKFLOW_PREFIX = "case-"  # workflows.contracts.case_workflow_id


def case_no_of(workflow_id: str | None) -> str | None:
    if workflow_id and workflow_id.startswith(CASE_WORKFLOW_PREFIX):
        return workflow_id[len(CASE_WORKFLOW_PREFIX):]
    return None


def temporal_fields(_logger: Any, _name: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """structlog processor: workflow / activity identity from a stdlib record's Temporal extras."""
    record = event.get("_record")
    if record is None:
        return event
    details = getattr(record, "temporal_workflow", None) or getattr(record, "temporal_activity", None)
    if not isinstance(details, dict):
        return event
    wid = details.get("workflow_id")
    event.setdefault("workflow_id", wid)
    event.setdefault("run_id", details.get("run_id") or details.get("workflow_run_id"))
    case_no = case_no_of(wid)
    if case_no is not None:
        event.setdefault("case_no", case_no)
    for key in ("activity_type", "workflow_type", "attempt", "update_name", "update_id"):
        if details.get(key) is not None:
            event.setdefault(key, details[key])
    return event


def configure_logging(level: str = "INFO", json_logs: bool = False) -> None:
    """structlog for our code; stdlib (incl. Temporal's loggers) rendered the same way."""
    from temporalio import activity as t_activity
    from temporalio import workflow as t_workflow

    renderer = structlog.processors.JSONRenderer(ensure_ascii=False) if json_logs \
        else structlog.dev.ConsoleRenderer(colors=False)
    shared = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(structlog.stdlib.ProcessorFormatter(
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        foreign_pre_chain=[*shared, temporal_fields, structlog.processors.format_exc_info],
    ))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    if json_logs:  # the fields are on the line already; no dict appended to the message
        t_workflow.logger.workflow_info_on_message = False
        t_activity.logger.activity_info_on_message = False


class _ActivityInbound(ActivityInboundInterceptor):
    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        info = activity.info()
        fields = {
            "workflow_id": info.workflow_id,
            "run_id": info.workflow_run_id,
            "activity_type": info.activity_type,
            "attempt": info.attempt,
        }
        case_no = case_no_of(info.workflow_id)
        if case_no is not None:
            fields["case_no"] = case_no
        with structlog.contextvars.bound_contextvars(**fields):
            try:
                return await self.next.execute_activity(input)
            except BaseException as e:
                if isinstance(e, Exception):
                    activity.metric_meter().create_counter(
                        "case_engine_activity_failures", "Activity attempts that raised, by error type"
                    ).add(1, {"error_type": (e.type if isinstance(e, ApplicationError) and e.type else None)
                              or type(e).__name__})
                raise


class EngineInterceptor(Interceptor):
    """Worker interceptor: log context for activities, failure counts by error type."""

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _ActivityInbound(next)
