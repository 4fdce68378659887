"""Replays case histories against the engine's current workflow code.

Replay re-runs the workflow code on the recorded inputs (start input, accepted
Updates, activity results, fired timers) and compares every command the code
produces with the command recorded in the history. Agreement proves that the
recorded decisions are what this code makes of those inputs; the first event
where they disagree is reported.

Runner: by default the unsandboxed runner (faster). The sandbox exists to stop
a *live* worker's workflow code from making non-deterministic calls (clock,
random, I/O) that would poison new histories; it does not change the commands
the code emits for given inputs, and replay compares exactly those commands.
The replay suite in CI (tests/replay/) replays with the sandboxed runner as
well, so code that only works outside the sandbox is still caught there.
`sandboxed=True` opts in here.
"""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass

from temporalio.api.enums.v1 import EventType
from temporalio.runtime import LoggingConfig, Runtime, TelemetryConfig, TelemetryFilter
from temporalio.worker import Replayer, UnsandboxedWorkflowRunner
from temporalio.workflow import NondeterminismError

from audit.history import RunHistory
from ops.codec import data_converter

_EVENT_ID = re.compile(r"HistoryEvent\(id: (\d+)")
_TMPRL_MSG = re.compile(r'message: "(.*?)", source:')

_quiet_runtime: Runtime | None = None


def _runtime() -> Runtime:
    """A runtime whose core logs only errors: replay failures are reported by us, once."""
    global _quiet_runtime
    if _quiet_runtime is None:
        _quiet_runtime = Runtime(
            telemetry=TelemetryConfig(logging=LoggingConfig(filter=TelemetryFilter(core_level="ERROR",
                                                                                    other_level="ERROR")))
        )
    return _quiet_runtime


def make_replayer(sandboxed: bool = False, workflows: list[type] | None = None) -> Replayer:
    """A Replayer with the production data converter and the engine's workflow(s)."""
    if workflows is None:
        from workflows.case_workflow import CaseWorkflow
        from workflows.programme_workflow import ProgrammeWorkflow  # issue 13: 整改方案

        workflows = [CaseWorkflow, ProgrammeWorkflow]
    if sandboxed:
        from worker import sandbox_runner

        runner = sandbox_runner()
    else:
        runner = UnsandboxedWorkflowRunner()
    return Replayer(
        workflows=workflows,
        data_converter=data_converter(),  # with the payload codec when keys are configured
        workflow_runner=runner,
        runtime=_runtime(),
    )


@dataclass
class ReplayOutcome:
    """What replaying one run showed."""

    case_no: str
    run_id: str
    source: str
    origin: str
    events: int
    ok: bool
    nondeterminism: bool = False
    error: str = ""
    diverging_event_id: int | None = None
    diverging_event: str = ""  # e.g. "6 ACTIVITY_TASK_SCHEDULED record_case_events at 2026-..."

    def line(self) -> str:
        where = f"{self.case_no} run {self.run_id} ({self.source}, {self.events} events)"
        if self.ok:
            return f"OK    {where}" + (f": {self.error}" if self.error else "")
        kind = "NONDETERMINISM" if self.nondeterminism else "FAILED"
        first = f"; first diverging event: {self.diverging_event}" if self.diverging_event else ""
        return f"{kind} {where}: {self.error}{first}"

    def as_dict(self) -> dict:
        return {
            "case_no": self.case_no, "run_id": self.run_id, "source": self.source, "origin": self.origin,
            "events": self.events, "ok": self.ok, "nondeterminism": self.nondeterminism, "error": self.error,
            "diverging_event_id": self.diverging_event_id, "diverging_event": self.diverging_event,
        }


def describe_event(run: RunHistory, event_id: int) -> str:
    """A short description of one history event (type, activity/timer/update name, time)."""
    for e in run.history.events:
        if e.event_id != event_id:
            continue
        name = EventType.Name(e.event_type).removeprefix("EVENT_TYPE_")
        extra = ""
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            extra = " " + e.activity_task_scheduled_event_attributes.activity_type.name
        elif e.event_type == EventType.EVENT_TYPE_TIMER_STARTED:
            extra = " timer " + e.timer_started_event_attributes.timer_id
        elif e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED:
            extra = " update " + e.workflow_execution_update_accepted_event_attributes.accepted_request.input.name
        when = e.event_time.ToDatetime().isoformat(timespec="seconds") + "Z"
        return f"{event_id} {name}{extra} at {when}"
    return f"{event_id} (beyond the recorded history: the code issued a command the history lacks)"


_COMMAND_EVENTS = {
    EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED, EventType.EVENT_TYPE_ACTIVITY_TASK_CANCEL_REQUESTED,
    EventType.EVENT_TYPE_TIMER_STARTED, EventType.EVENT_TYPE_TIMER_CANCELED, EventType.EVENT_TYPE_MARKER_RECORDED,
    EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES, EventType.EVENT_TYPE_WORKFLOW_PROPERTIES_MODIFIED,
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED, EventType.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED,
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW, EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_COMPLETED,
    EventType.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED,
    EventType.EVENT_TYPE_SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED,
    EventType.EVENT_TYPE_REQUEST_CANCEL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED,
}
_QUOTED = re.compile(r"'([^']+)'")


async def locate_divergence(run: RunHistory, replayer: Replayer, message: str) -> int | None:
    """The first event whose recorded command the code no longer produces.

    When the SDK's message names no event id, replay growing prefixes of the
    history (cut at workflow task starts, binary search): the first workflow task
    whose commands fail to match bounds the divergence; within it, the command
    event the message names (an activity/timer name in quotes), else the first one.
    """
    from temporalio.client import WorkflowHistory

    events = list(run.history.events)
    starts = [i for i, e in enumerate(events) if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED]

    async def fails(k: int) -> bool:  # does the prefix through workflow task start #k fail?
        prefix = WorkflowHistory(run.workflow_id, events[: starts[k] + 1])
        res = await replayer.replay_workflow(prefix, raise_on_replay_failure=False)
        return res.replay_failure is not None

    lo, hi = 0, len(starts)  # invariant: prefixes < lo pass; prefix hi (or the whole history) fails
    while lo < hi:
        mid = (lo + hi) // 2
        if await fails(mid):
            hi = mid
        else:
            lo = mid + 1
    # The commands of task #(lo-1) are the events after its start up to task #lo's start.
    begin = starts[lo - 1] + 1 if lo >= 1 else 0
    end = starts[lo] if lo < len(starts) else len(events)
    window = [e for e in events[begin:end] if e.event_type in _COMMAND_EVENTS]
    if not window:
        return events[end - 1].event_id if end else None
    names = set(_QUOTED.findall(message))
    for e in window:
        if names and any(n in describe_event(run, e.event_id) for n in names):
            return e.event_id
    return window[0].event_id


def outcome_of(run: RunHistory, failure: Exception | None) -> ReplayOutcome:
    out = ReplayOutcome(case_no=run.case_no, run_id=run.run_id, source=run.source, origin=run.origin,
                        events=len(run.history.events), ok=failure is None)
    if failure is None:
        return out
    text = str(failure)
    m = _TMPRL_MSG.search(text)
    out.error = m.group(1) if m else text
    out.nondeterminism = isinstance(failure, NondeterminismError) or "Nondeterminism" in text
    if (eid := _EVENT_ID.search(text)) is not None:
        out.diverging_event_id = int(eid.group(1))
        out.diverging_event = describe_event(run, out.diverging_event_id)
    return out


@dataclass
class ReplaySummary:
    outcomes: list[ReplayOutcome]
    seconds: float

    @property
    def failures(self) -> list[ReplayOutcome]:
        return [o for o in self.outcomes if not o.ok]

    @property
    def events(self) -> int:
        return sum(o.events for o in self.outcomes)

    def rates(self) -> tuple[float, float]:
        s = max(self.seconds, 1e-9)
        return len(self.outcomes) / s, self.events / s


async def replay_runs(
    runs: Iterable[RunHistory] | AsyncIterator[RunHistory],
    *,
    sandboxed: bool = False,
    workflows: list[type] | None = None,
    on_result: Callable[[ReplayOutcome], None] | None = None,
) -> ReplaySummary:
    """Replay every run in order; never stops at a failure."""
    replayer = make_replayer(sandboxed, workflows)
    pending: list[RunHistory] = []

    outcomes: list[ReplayOutcome] = []

    def trivial(r: RunHistory) -> bool:
        """No workflow task completed yet (a run that has just started): no decision to check.

        The SDK's replayer does not return on such a history, so it is reported here.
        """
        if any(e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED for e in r.history.events):
            return False
        o = outcome_of(r, None)
        o.error = "no workflow task completed yet: no decision to check"
        outcomes.append(o)
        if on_result is not None:
            on_result(o)
        return True

    async def histories():
        if hasattr(runs, "__aiter__"):
            async for r in runs:  # type: ignore[union-attr]
                if not trivial(r):
                    pending.append(r)
                    yield r.history
        else:
            for r in runs:  # type: ignore[union-attr]
                if not trivial(r):
                    pending.append(r)
                    yield r.history

    started = time.perf_counter()
    async with replayer.workflow_replay_iterator(histories()) as results:
        async for res in results:
            run = pending.pop(0)
            o = outcome_of(run, res.replay_failure)
            if not o.ok and o.nondeterminism and o.diverging_event_id is None:
                eid = await locate_divergence(run, make_replayer(sandboxed, workflows), o.error)
                if eid is not None:
                    o.diverging_event_id = eid
                    o.diverging_event = describe_event(run, eid)
            outcomes.append(o)
            if on_result is not None:
                on_result(o)
    return ReplaySummary(outcomes, time.perf_counter() - started)


# ------------------------------------------------------------------ several processes

# A replay source a child process loads itself: parsing a history's JSON costs about as much as
# replaying it, so both happen in the children. {"kind": "archive", <history_archive row>} or
# {"kind": "text", "history_json", "source", "origin", "workflow_id"}.
RunSource = dict


def load_source(src: RunSource) -> RunHistory:
    from audit.archive import run_from_row
    from audit.history import parse_history

    if src["kind"] == "archive":
        return run_from_row(src)  # re-checks the stored sha256
    return parse_history(src["history_json"], source=src["source"], origin=src.get("origin", ""),
                         workflow_id=src.get("workflow_id"))


def _replay_chunk(sources: list[RunSource], sandboxed: bool) -> tuple[list[dict], list[str]]:
    """In a child process: load and replay runs; (outcomes as dicts, problems)."""
    import asyncio

    from audit.history import HistoryError

    runs, problems = [], []
    for src in sources:
        try:
            runs.append(load_source(src))
        except HistoryError as e:
            problems.append(str(e))
    summary = asyncio.run(replay_runs(runs, sandboxed=sandboxed))
    return [o.as_dict() for o in summary.outcomes], problems


def default_jobs(total: int) -> int:
    """Processes for `total` histories: one per core once there are enough to repay a process's
    start-up (about 2 s of imports), else one."""
    import os

    return max(1, min(os.cpu_count() or 1, 8)) if total >= 100 else 1


async def replay_parallel(
    sources: Iterable[RunSource] | AsyncIterator[RunSource],
    *,
    jobs: int,
    sandboxed: bool = False,
    chunk: int = 25,
    on_result: Callable[[ReplayOutcome], None] | None = None,
) -> tuple[ReplaySummary, list[str]]:
    """Replay across `jobs` spawned processes (the Temporal runtime holds threads: no fork),
    `chunk` runs per task, results reported in the order the runs came. Each process is
    independent, so this proves exactly what `replay_runs` proves, on every core."""
    import asyncio
    import multiprocessing
    from collections import deque
    from concurrent.futures import ProcessPoolExecutor

    loop = asyncio.get_running_loop()
    outcomes: list[ReplayOutcome] = []
    problems: list[str] = []
    started = time.perf_counter()
    with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
        in_flight: deque[asyncio.Future] = deque()

        async def collect_oldest() -> None:
            done, probs = await in_flight.popleft()
            problems.extend(probs)
            for d in done:
                o = ReplayOutcome(**d)
                outcomes.append(o)
                if on_result is not None:
                    on_result(o)

        batch: list[RunSource] = []

        async def submit() -> None:
            in_flight.append(loop.run_in_executor(pool, _replay_chunk, list(batch), sandboxed))
            batch.clear()
            while len(in_flight) > 2 * jobs:
                await collect_oldest()

        if hasattr(sources, "__aiter__"):
            async for src in sources:  # type: ignore[union-attr]
                batch.append(src)
                if len(batch) >= chunk:
                    await submit()
        else:
            for src in sources:  # type: ignore[union-attr]
                batch.append(src)
                if len(batch) >= chunk:
                    await submit()
        if batch:
            await submit()
        while in_flight:
            await collect_oldest()
    return ReplaySummary(outcomes, time.perf_counter() - started), problems
