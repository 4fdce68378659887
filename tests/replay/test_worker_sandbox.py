"""The worker's sandbox answers every payload-context look-up as the SDK's own path does
(worker_sandbox.py): stored histories of every workflow replayed, each answer compared."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import ActivitySerializationContext, WorkflowSerializationContext
from temporalio.worker import Replayer
from temporalio.worker.workflow_sandbox import _runner as sdk_runner

import worker_sandbox
from worker import PASSTHROUGH, WORKFLOWS, sandbox_runner

HISTORIES = Path(__file__).parent / "histories"


class _Checking(worker_sandbox._ContextDirectInstance):
    """Answers as the worker does, and asks the SDK's `exec` path the same question each time."""

    seen: Counter[str] = Counter()
    differences: list[str] = []

    def get_serialization_context(self, command_info: Any) -> Any:
        ours = super().get_serialization_context(command_info)
        sdks = sdk_runner._Instance.get_serialization_context(self, command_info)
        self._compare("serialization", command_info, ours, sdks)
        return ours

    def get_external_store_context(self, command_info: Any) -> Any:
        ours = super().get_external_store_context(command_info)
        sdks = sdk_runner._Instance.get_external_store_context(self, command_info)
        self._compare("store", command_info, ours, sdks)
        return ours

    def _compare(self, kind: str, command_info: Any, ours: Any, sdks: Any) -> None:
        _Checking.seen[f"{kind}:{type(ours).__name__}"] += 1
        if ours != sdks:
            _Checking.differences.append(f"{kind} {command_info}: ours {ours!r}, the SDK's {sdks!r}")


class _CheckingRunner(worker_sandbox.ContextDirectSandboxRunner):
    def create_instance(self, det: Any) -> sdk_runner._Instance:
        return _Checking(det, self.runner_class, self.restrictions)


async def test_every_context_answer_is_the_sdks_own() -> None:
    paths = sorted(HISTORIES.glob("*.json")) + sorted(HISTORIES.glob("*/*.json"))
    assert len(paths) > 40, "the stored histories are missing"
    runner = _CheckingRunner(restrictions=sandbox_runner().restrictions)
    replayer = Replayer(workflows=WORKFLOWS, data_converter=pydantic_data_converter, workflow_runner=runner)
    _Checking.seen.clear()
    _Checking.differences.clear()
    for path in paths:
        history = WorkflowHistory.from_json(f"wf-{path.stem}", json.loads(path.read_text()))
        result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
        assert result.replay_failure is None, f"{path.name}: {result.replay_failure}"
    assert _Checking.differences == []
    # Not vacuous: workflow-level and activity-level contexts, and store contexts, were all asked.
    seen = _Checking.seen
    assert seen[f"serialization:{WorkflowSerializationContext.__name__}"] > 1000
    assert seen[f"serialization:{ActivitySerializationContext.__name__}"] > 100
    assert sum(n for k, n in seen.items() if k.startswith("store:")) > 500


def test_the_worker_runs_workflows_in_that_sandbox() -> None:
    runner = sandbox_runner()
    assert isinstance(runner, worker_sandbox.ContextDirectSandboxRunner)
    assert set(PASSTHROUGH) <= set(runner.restrictions.passthrough_modules)
