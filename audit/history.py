"""One run's workflow history as the auditor handles it: parsed, identified, fingerprinted.

A history is kept as the JSON text `temporal workflow show --output json` writes
(`WorkflowHistory.to_json()`); its sha256 is taken over exactly that text (UTF-8).
Payloads are decoded with the production (pydantic) data converter.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter

from domain.programme import PROGRAMME_WORKFLOW_NAME, ProgrammeInput, programme_workflow_id
from ops.codec import decrypt_payloads, env_keys
from workflows.contracts import WORKFLOW_NAME, CaseWorkflowInput, ClockRecordResult, RecordInput, case_workflow_id

PROGRAMME_LABEL = "programme:"  # the "case number" of a programme's history (issue 13)

CLOSE_STATUS = {
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED: "COMPLETED",
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED: "FAILED",
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TIMED_OUT: "TIMED_OUT",
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CANCELED: "CANCELED",
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED: "TERMINATED",
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW: "CONTINUED_AS_NEW",
}


class HistoryError(ValueError):
    """A history file or archive row that is not a usable Case workflow history."""


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def decode(payloads: Any, type_hint: Any) -> Any:
    """The first value of a Payloads message, as the production converter reads it."""
    items = list(payloads.payloads) if hasattr(payloads, "payloads") else list(payloads)
    if not items:
        return None
    items = decrypt_payloads(items, env_keys())  # encrypted histories (ops/codec.py): needs the keys
    return pydantic_data_converter.payload_converter.from_payloads(items, [type_hint])[0]


LOCAL_ACTIVITY_MARKER = "core_local_activity"  # the SDK core's marker for a local activity's result
CLOCK_RECORD_ACTIVITY = "record_clock_events"  # the clock's ledger write inside its task (issue 9)


def local_activity_result(e: HistoryEvent) -> tuple[str, Any] | None:
    """(activity type, result payloads) of a local activity's marker, None for any other event."""
    if e.event_type != EventType.EVENT_TYPE_MARKER_RECORDED:
        return None
    a = e.marker_recorded_event_attributes
    if a.marker_name != LOCAL_ACTIVITY_MARKER or "data" not in a.details or "result" not in a.details:
        return None
    meta = decode(a.details["data"], dict) or {}
    return str(meta.get("activity_type", "")), a.details["result"]


def clock_record(e: HistoryEvent) -> RecordInput | None:
    """The ledger rows a `record_clock_events` marker says were written (None: another event, or a
    write that was refused and decided again)."""
    la = local_activity_result(e)
    if la is None or la[0] != CLOCK_RECORD_ACTIVITY:
        return None
    res = decode(la[1], ClockRecordResult)
    return res.record if res is not None else None


def event_time(e: HistoryEvent) -> datetime:
    return e.event_time.ToDatetime(tzinfo=UTC)


@dataclass
class RunHistory:
    """One run of a case workflow: the history, where it came from, and its fingerprint."""

    case_no: str
    workflow_id: str
    run_id: str
    history: WorkflowHistory
    json_text: str
    sha256: str
    source: str  # archive | temporal | file
    status: str  # RUNNING or a CLOSE_STATUS value
    start_time: datetime
    close_time: datetime | None
    continued_from: str | None
    origin: str = ""
    # Issue 14: a new run of an archived case (reopened) names the completed run it continues;
    # the two are not continue-as-new-linked (the previous run completed).
    reopened_from: str | None = None  # file path or "archive"/"temporal"
    notes: list[str] = field(default_factory=list)

    @property
    def events(self) -> list[HistoryEvent]:
        return list(self.history.events)

    @property
    def previous_run(self) -> str | None:
        """The run this one carries on from: continue-as-new, or the archived run it reopened."""
        return self.continued_from or self.reopened_from

    @property
    def closed(self) -> bool:
        return self.status != "RUNNING"


def _started(events: list[HistoryEvent]) -> HistoryEvent:
    if not events or events[0].event_type != EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
        raise HistoryError("history does not begin with WorkflowExecutionStarted")
    return events[0]


def case_no_of(events: list[HistoryEvent]) -> str:
    """The case number, from the workflow's start input."""
    attrs = _started(events).workflow_execution_started_event_attributes
    if attrs.workflow_type.name == PROGRAMME_WORKFLOW_NAME:  # issue 13: a programme's run, labelled so
        pinp = decode(attrs.input, ProgrammeInput)
        if pinp is None:
            raise HistoryError("workflow start event has no input")
        return f"{PROGRAMME_LABEL}{pinp.spec.programme_id}"
    if attrs.workflow_type.name != WORKFLOW_NAME:
        raise HistoryError(f"history is of workflow type {attrs.workflow_type.name!r}, not {WORKFLOW_NAME!r}")
    inp = decode(attrs.input, CaseWorkflowInput)
    if inp is None:
        raise HistoryError("workflow start event has no input")
    return inp.filing.case_no


def reopened_from_of(events: list[HistoryEvent]) -> str | None:
    """Issue 14: the archived run a reopened case's run continues (None for every other run)."""
    attrs = _started(events).workflow_execution_started_event_attributes
    if attrs.workflow_type.name != WORKFLOW_NAME:
        return None
    inp = decode(attrs.input, CaseWorkflowInput)
    return inp.reopen.previous_run_id if inp is not None and inp.reopen is not None else None


def parse_history(
    text_or_dict: str | dict[str, Any], source: str, origin: str = "", workflow_id: str | None = None
) -> RunHistory:
    """Parse the official CLI's JSON (a dict with `events`) into a `RunHistory`.

    The sha256 is over the text as given (a file's content, the archived text);
    protobuf JSON orders map fields arbitrarily, so two exports of one run may
    differ byte-wise: the fingerprint identifies this copy, the run id the run.
    """
    try:
        raw = json.loads(text_or_dict) if isinstance(text_or_dict, str) else text_or_dict
    except json.JSONDecodeError as e:
        raise HistoryError(f"not JSON: {e}") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("events"), list):
        raise HistoryError("not a workflow history (expected an object with an `events` list, "
                           "as `temporal workflow show --output json` writes)")
    try:
        probe = WorkflowHistory.from_json("probe", raw)
    except Exception as e:  # protobuf ParseError and friends
        raise HistoryError(f"not a workflow history: {e}") from None
    events = list(probe.events)
    case_no = case_no_of(events)
    wid = workflow_id or (programme_workflow_id(case_no.removeprefix(PROGRAMME_LABEL))
                          if case_no.startswith(PROGRAMME_LABEL) else case_workflow_id(case_no))
    history = WorkflowHistory(wid, events)
    text = text_or_dict if isinstance(text_or_dict, str) else history.to_json()
    start_attrs = events[0].workflow_execution_started_event_attributes
    last = events[-1]
    status = CLOSE_STATUS.get(last.event_type, "RUNNING")
    return RunHistory(
        case_no=case_no,
        workflow_id=wid,
        run_id=history.run_id,
        history=history,
        json_text=text,
        sha256=sha256_text(text),
        source=source,
        status=status,
        start_time=event_time(events[0]),
        close_time=event_time(last) if status != "RUNNING" else None,
        continued_from=start_attrs.continued_execution_run_id or None,
        origin=origin,
        reopened_from=None if start_attrs.continued_execution_run_id else reopened_from_of(events),
    )


def from_workflow_history(history: WorkflowHistory, source: str = "temporal") -> RunHistory:
    return parse_history(history.to_json(), source=source, origin=source, workflow_id=history.workflow_id)


def order_runs(runs: list[RunHistory]) -> list[RunHistory]:
    """Runs of one case in execution order: follow continue-as-new (and reopen, issue 14) links,
    then by start time."""
    by_id = {r.run_id: r for r in runs}
    ordered = sorted(by_id.values(), key=lambda r: (r.start_time, r.run_id))
    # A run that continued from another comes right after it.
    heads = [r for r in ordered if not r.previous_run or r.previous_run not in by_id]
    next_of = {r.previous_run: r for r in ordered if r.previous_run in by_id}
    out: list[RunHistory] = []
    for h in heads:
        r: RunHistory | None = h
        while r is not None and r not in out:
            out.append(r)
            r = next_of.get(r.run_id)
    out += [r for r in ordered if r not in out]
    return out
