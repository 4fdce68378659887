"""A workflow change made without `workflow.patched` fails the replay suite; behind it, it passes.

The change is made to a copy of workflows/case_logic.py, with a copy of
workflows/case_workflow.py that imports it (the real files are untouched): one
extra durable timer before every ledger write, as a developer might add "to let
the database settle". Old histories recorded no such timer.
"""

from __future__ import annotations

import importlib
import sys
import uuid
from pathlib import Path

import pytest
from temporalio.api.enums.v1 import EventType

from audit.history import parse_history
from audit.replay import replay_runs

ROOT = Path(__file__).resolve().parents[2]
HISTORIES = sorted((Path(__file__).parent / "histories").glob("*.json"))
ANCHOR = "        if entries:\n            record = RecordInput("
EXTRA_TIMER = "        await workflow.sleep(1)\n"
PATCHED_TIMER = '        if workflow.patched("settle-before-record"):\n    ' + EXTRA_TIMER


def _changed_workflow(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, insert: str) -> type:
    """Copies of case_logic.py (with the change) and case_workflow.py (importing that copy)."""
    logic = (ROOT / "workflows" / "case_logic.py").read_text(encoding="utf-8")
    assert logic.count(ANCHOR) == 1, "the workflow changed shape: update ANCHOR"
    definition = (ROOT / "workflows" / "case_workflow.py").read_text(encoding="utf-8")
    assert definition.count("from workflows.case_logic import") == 1
    name = f"case_workflow_changed_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{name}_logic.py").write_text(logic.replace(ANCHOR, insert + ANCHOR), encoding="utf-8")
    (tmp_path / f"{name}.py").write_text(
        definition.replace("from workflows.case_logic import", f"from {name}_logic import"), encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))  # the sandbox re-imports the modules by name
    for mod in (f"{name}_logic", name):
        monkeypatch.setitem(sys.modules, mod, importlib.import_module(mod))
    return sys.modules[name].CaseWorkflow


def _is_case(path: Path) -> bool:
    return '"workflowType":{"name":"Case"}' in path.read_text(encoding="utf-8").replace(" ", "").replace("\n", "")


# The change is made to the case workflow: only its runs diverge (the programme workflow's runs,
# issue 13, replay in the last test and in test_replay.py).
CASE_HISTORIES = [p for p in HISTORIES if _is_case(p)]


def _runs(paths: list[Path] = CASE_HISTORIES):
    return [parse_history(p.read_text(encoding="utf-8"), "file", p.name) for p in paths]


def _first_record_activity(run) -> int:
    return next(e.event_id for e in run.history.events
                if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
                and e.activity_task_scheduled_event_attributes.activity_type.name == "record_case_events")


@pytest.mark.parametrize("sandboxed", [True, False], ids=["sandboxed", "unsandboxed"])
async def test_an_unpatched_change_fails_replay_naming_the_first_diverging_event(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sandboxed: bool
) -> None:
    changed = _changed_workflow(tmp_path, monkeypatch, EXTRA_TIMER)
    runs = [r for r in _runs() if r.history.events[0].workflow_execution_started_event_attributes
            .continued_execution_run_id == ""]  # runs that write the FILED row themselves
    summary = await replay_runs(runs, sandboxed=sandboxed, workflows=[changed])
    assert summary.outcomes and len(summary.failures) == len(summary.outcomes)
    for run, o in zip(runs, summary.outcomes, strict=True):
        assert o.nondeterminism, o.line()
        assert o.diverging_event_id == _first_record_activity(run), o.line()
        assert "ACTIVITY_TASK_SCHEDULED record_case_events" in o.diverging_event


async def test_the_same_change_behind_workflow_patched_replays_every_history(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    changed = _changed_workflow(tmp_path, monkeypatch, PATCHED_TIMER)
    summary = await replay_runs(_runs(), sandboxed=True, workflows=[changed])
    assert len(summary.outcomes) == len(CASE_HISTORIES)
    assert not summary.failures, [o.line() for o in summary.failures]


async def test_every_stored_history_also_replays_with_the_audit_default_runner() -> None:
    """`audit replay` defaults to the unsandboxed runner; the suite replays with both."""
    summary = await replay_runs(_runs(HISTORIES), sandboxed=False)
    assert len(summary.outcomes) == len(HISTORIES)
    assert not summary.failures, [o.line() for o in summary.failures]
