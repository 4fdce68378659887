"""Replays the recorded histories of the monthly dispatch workflows (Dispatch, DispatchTick).

They live in histories/dispatch/: the case-oriented suites (test_unpatched_change.py, the audit
tool's replay of histories/*.json) parse Case histories only. Re-record them with
`.venv/bin/python -m tests.replay.record_dispatch_histories`.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from temporalio import workflow
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from worker import WORKFLOWS, sandbox_runner
from workflows.dispatch_contracts import DispatchInput, DispatchResult
from workflows.dispatch_workflow import DispatchWorkflow

DIR = Path(__file__).parent / "histories" / "dispatch"
HISTORIES = sorted(DIR.glob("dispatch_*.json"))


@pytest.mark.parametrize("sandboxed", [True, False], ids=["sandboxed", "unsandboxed"])
@pytest.mark.parametrize("path", HISTORIES, ids=lambda p: p.stem)
async def test_a_dispatch_history_replays_without_nondeterminism(path: Path, sandboxed: bool) -> None:
    history = WorkflowHistory.from_json(f"REPLAY-{path.stem}", json.loads(path.read_text()))
    kw = {"workflow_runner": sandbox_runner()} if sandboxed else {}
    replayer = Replayer(workflows=WORKFLOWS, data_converter=pydantic_data_converter, **kw)
    result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
    assert result.replay_failure is None, f"{path.name}: {result.replay_failure}"


def test_the_dispatch_histories_are_present_and_of_their_workflow_types() -> None:
    """A Dispatch that wrote its report, the tick that ran it, and a tick refused for the same month."""
    want = {"dispatch_run": "Dispatch", "dispatch_tick": "DispatchTick", "dispatch_tick_already": "DispatchTick"}
    assert {p.stem for p in HISTORIES} >= set(want)
    for stem, wf_type in want.items():
        events = json.loads((DIR / f"{stem}.json").read_text())["events"]
        assert events[0]["workflowExecutionStartedEventAttributes"]["workflowType"]["name"] == wf_type, stem
        assert events[-1]["eventType"] == "EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED", stem
    assert "START_CHILD_WORKFLOW_EXECUTION_FAILED" in (DIR / "dispatch_tick_already.json").read_text()


@workflow.defn(name="Dispatch", sandboxed=False)
class ChangedDispatch:
    """The real Dispatch run after one extra durable timer: what an unpatched change looks like."""

    @workflow.run
    async def run(self, inp: DispatchInput) -> DispatchResult:
        await workflow.sleep(1)
        return await DispatchWorkflow.run(self, inp)  # type: ignore[arg-type]


async def test_a_changed_dispatch_workflow_fails_replay() -> None:
    """The suite catches a change made without workflow.patched."""
    history = WorkflowHistory.from_json("REPLAY-changed", json.loads((DIR / "dispatch_run.json").read_text()))
    result = await Replayer(workflows=[ChangedDispatch], data_converter=pydantic_data_converter).replay_workflow(
        history, raise_on_replay_failure=False)
    assert result.replay_failure is not None
    assert "Nondeterminism" in type(result.replay_failure).__name__ or "nondetermin" in str(result.replay_failure).lower(), \
        result.replay_failure
