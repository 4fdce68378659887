"""starter.py: batch filing with a per-record report, and single cases from arguments."""

from __future__ import annotations

import json
from pathlib import Path

import asyncpg
import pytest
from temporalio.client import Client

import starter
from domain.enums import Stage
from tests.harness import _STARTED, case_worker
from workflows import client as ops

SAMPLES = Path(__file__).resolve().parents[3] / "shared" / "domain" / "sample_cases.json"


@pytest.fixture
def queue_env(monkeypatch: pytest.MonkeyPatch, task_queue: str) -> str:
    monkeypatch.setenv("TEMPORAL_TASK_QUEUE", task_queue)
    return task_queue


async def test_a_batch_files_good_records_and_names_every_bad_one(
    ts_client: Client, pool: asyncpg.Pool, queue_env: str, tmp_path: Path
) -> None:
    """Good records are filed; an aggregate, a duplicate and a bad deadline are refused by name."""
    doc = json.loads(SAMPLES.read_text(encoding="utf-8"))
    suffix = queue_env[-8:]
    good = [dict(r, case_id=f"{r['case_id']}-{suffix}") for r in doc["cases"] if r["case_id"] in ("FB-09", "RB-03")]
    aggregate = dict(next(r for r in doc["cases"] if r["case_id"] == "PT-01"), case_id=f"PT-01-{suffix}")
    bad_deadline = dict(good[0], case_id=f"BAD-{suffix}", deadline={"kind": None, "raw_zh": "尽快吧"})
    path = tmp_path / "batch.json"
    path.write_text(json.dumps({"cases": [*good, aggregate, good[0], bad_deadline]}, ensure_ascii=False))
    async with case_worker(ts_client, pool, queue_env):
        outcomes = await starter.run(starter.parse_args(["--file", str(path)]), client=ts_client)
        _STARTED.extend(f"case-{o.case_no}" for o in outcomes if o.filed)
        by_no = {}
        for o in outcomes:
            by_no.setdefault(o.case_no, []).append(o)
        assert [o.filed for o in by_no[good[0]["case_id"]]] == [True, False]
        assert "appears twice" in by_no[good[0]["case_id"]][1].reason
        assert by_no[good[1]["case_id"]][0].filed
        assert "aggregate record" in by_no[aggregate["case_id"]][0].reason
        assert "尽快吧" in by_no[bad_deadline["case_id"]][0].reason
        state = await ops.get_state(ts_client, good[0]["case_id"])
        assert state.stage is Stage.REGISTERED and state.filing.deadline.raw_zh == "2023年12月31日"
        again = await starter.run(starter.parse_args(["--file", str(path)]), client=ts_client)
        assert not any(o.filed for o in again)
        assert any("already filed" in o.reason for o in again)


async def test_one_case_is_filed_from_arguments(
    ts_client: Client, pool: asyncpg.Pool, queue_env: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """--case-no with fields files one case and reports it as filed."""
    case_no = f"CLI-{queue_env[-8:]}"
    args = starter.parse_args([
        "--case-no", case_no, "--title", "河道黑臭", "--target", "消除黑臭", "--measure", "截污纳管",
        "--responsible-unit", "蓝山县人民政府", "--lead-unit", "市生态环境局", "--deadline", "2027年6月30日",
    ])
    async with case_worker(ts_client, pool, queue_env):
        outcomes = await starter.run(args, client=ts_client)
        _STARTED.append(f"case-{case_no}")
        starter.report(outcomes, as_json=True)
        assert json.loads(capsys.readouterr().out.strip()) == {"case_no": case_no, "filed": True, "reason": ""}
        state = await ops.get_state(ts_client, case_no)
        assert str(state.filing.deadline.due_date) == "2027-06-30"


def test_a_bad_single_case_is_refused_with_its_reason() -> None:
    """A malformed deadline in arguments is refused before anything is filed."""
    args = starter.parse_args(["--case-no", "X-1", "--title", "t", "--deadline", "下个月"])
    with pytest.raises(starter.InvalidFilingError, match="下个月"):
        starter.filing_from_args(args)
