"""Worker sizing from the environment (README "Sizing a worker")."""

from __future__ import annotations

from datetime import timedelta

import pytest

from config import Settings
from worker import worker_tuning


def test_sdk_defaults_are_kept_when_nothing_is_set(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("WORKER_STICKY_QUEUE_TIMEOUT_SECONDS", "WORKER_WORKFLOW_TASK_POLLERS", "WORKER_ACTIVITY_TASK_POLLERS",
                 "WORKER_MAX_CONCURRENT_WORKFLOW_TASKS"):
        monkeypatch.delenv(name, raising=False)
    kw = worker_tuning(Settings.from_env())
    assert "sticky_queue_schedule_to_start_timeout" not in kw
    assert "max_concurrent_workflow_task_polls" not in kw
    assert kw["max_concurrent_workflow_tasks"] == Settings().max_concurrent_workflow_tasks


def test_sticky_queue_timeout_is_passed_to_the_worker(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORKER_STICKY_QUEUE_TIMEOUT_SECONDS", "1.5")
    monkeypatch.setenv("WORKER_WORKFLOW_TASK_POLLERS", "12")
    kw = worker_tuning(Settings.from_env())
    assert kw["sticky_queue_schedule_to_start_timeout"] == timedelta(seconds=1.5)
    assert kw["max_concurrent_workflow_task_polls"] == 12


@pytest.mark.parametrize("raw", ["soon", "-1", "nan", "inf"])
def test_a_bad_sticky_queue_timeout_is_refused_by_name(monkeypatch: pytest.MonkeyPatch, raw: str) -> None:
    monkeypatch.setenv("WORKER_STICKY_QUEUE_TIMEOUT_SECONDS", raw)
    with pytest.raises(ValueError, match="WORKER_STICKY_QUEUE_TIMEOUT_SECONDS"):
        Settings.from_env()


def test_make_run_starts_one_worker_process_per_core_at_most_four(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WORKER_PROCESSES", raising=False)
    for cores, expected in ((1, 1), (2, 2), (4, 4), (16, 4)):
        monkeypatch.setattr("config.os.cpu_count", lambda cores=cores: cores)
        assert Settings.from_env().worker_process_count == expected
    monkeypatch.setenv("WORKER_PROCESSES", "6")
    assert Settings.from_env().worker_process_count == 6
    for bad in ("-1", "two"):
        monkeypatch.setenv("WORKER_PROCESSES", bad)
        with pytest.raises(ValueError, match="WORKER_PROCESSES"):
            Settings.from_env()
