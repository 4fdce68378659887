"""Replays the recorded look-back campaign histories (histories/lookback/, recorded by
tests/replay/record_lookback_histories.py) against the current code and the production converter."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from worker import WORKFLOWS, sandbox_runner

HISTORIES = sorted((Path(__file__).parent / "histories" / "lookback").glob("lookback_*.json"))


@pytest.mark.parametrize("path", HISTORIES, ids=lambda p: p.stem)
async def test_lookback_history_replays_without_nondeterminism(path: Path) -> None:
    raw = json.loads(path.read_text())
    history = WorkflowHistory.from_json(f"lookback-REPLAY-{path.stem}", raw)
    assert len(history.events) >= 3, f"{path.name} holds no completed workflow task; re-record it"
    replayer = Replayer(workflows=WORKFLOWS, data_converter=pydantic_data_converter, workflow_runner=sandbox_runner())
    result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
    assert result.replay_failure is None, f"{path.name}: {result.replay_failure}"


def test_the_lookback_scenarios_are_recorded() -> None:
    """All visited (a reopen, the campaign closing itself), reminders then closed by the office,
    continued as new; each history really holds what it is named after."""
    stems = {re.sub(r"_run\d+$", "", p.stem) for p in HISTORIES}
    assert {"lookback_all_visited", "lookback_reminded_closed", "lookback_continue_as_new"} <= stems
    text = {p.stem: p.read_text() for p in HISTORIES}
    assert "lookback_reopen" in text["lookback_all_visited"]
    assert "TimerFired" in text["lookback_reminded_closed"].replace("EVENT_TYPE_TIMER_FIRED", "TimerFired")
    assert "ContinuedAsNew" in text["lookback_continue_as_new_run1"].replace(
        "EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW", "ContinuedAsNew")
