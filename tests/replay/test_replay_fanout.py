"""The fan-out recordings (issue 13) are present and take the new paths (test_replay.py replays them)."""

from __future__ import annotations

import json
from pathlib import Path

HISTORIES = Path(__file__).parent / "histories"


def _types(name: str) -> list[str]:
    return [e["eventType"] for e in json.loads((HISTORIES / name).read_text())["events"]]


def test_the_fanout_histories_are_recorded_and_take_the_new_paths() -> None:
    parent, child = _types("fanout_parent.json"), _types("fanout_child.json")
    assert "EVENT_TYPE_MARKER_RECORDED" in parent  # the fanout-v1 patch marker (and escalation-rules-2)
    assert parent.count("EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED") == 3
    assert parent.count("EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED") >= 3 * 3  # children's reports
    assert "EVENT_TYPE_SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED" in child
