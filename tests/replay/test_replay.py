"""Replays every stored history against the current workflow code and the production converter."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from worker import WORKFLOWS, sandbox_runner

HISTORIES = sorted((Path(__file__).parent / "histories").glob("*.json"))


@pytest.mark.parametrize("path", HISTORIES, ids=lambda p: p.stem)
async def test_stored_history_replays_without_nondeterminism(path: Path) -> None:
    """A history recorded from the dev server replays cleanly against the current code."""
    raw = json.loads(path.read_text())
    history = WorkflowHistory.from_json(f"case-REPLAY-{path.stem}", raw)
    assert len(history.events) >= 3, f"{path.name} holds no completed workflow task; re-record it"
    replayer = Replayer(
        workflows=WORKFLOWS,
        data_converter=pydantic_data_converter,
        workflow_runner=sandbox_runner(),
    )
    result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
    assert result.replay_failure is None, f"{path.name}: {result.replay_failure}"


def test_the_recorded_scenarios_are_all_present() -> None:
    """The replay suite covers the representative paths (happy, escalation, objection, reopen, CAN,
    a case closed and archived a year later: a completed run; escalation proposals confirmed and
    dismissed, a de-escalation)."""
    stems = {re.sub(r"_run\d+$", "", p.stem) for p in HISTORIES}
    assert {"happy_path", "escalation_to_last_rung", "objection", "reopen", "continue_as_new",
            "archived_after_lookback", "escalation_proposal_confirmed", "escalation_proposal_dismissed",
            "escalation_de_escalated"} <= stems
    # issue 13: the programme workflow (整改方案): report escalated, reported in time, completed with its
    # last case, continued as new
    assert {"programme_report_escalated", "programme_reported_in_time", "programme_completed",
            "programme_continue_as_new"} <= stems
    # issue 13 (milestones): follow-up timers
    assert {"milestones_missed_escalated", "milestones_verify_refused", "milestones_report_escalated"} <= stems
    # issue 14: an archived case (its final state kept) reopened as a linked new run
    assert {"reopen_archived"} <= stems
    # issue 9 (lag): the clock's writes inside their woken tasks, one decided again at the written
    # time, and continued runs under that patch
    assert {"escalation_clock_ledger", "escalation_clock_ledger_redecided", "clock_ledger_continue_as_new"} <= stems
