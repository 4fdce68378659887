"""The auditors' "done when", end to end on the real dev server.

A case runs to 销号, a year passes on its clock (look-back window over: ARCHIVED,
the workflow completes), the archiver stores its history, the execution is deleted
from the server (as retention would), and then, with one command each, run as
subprocesses: the case replays from the archive, its timeline reads from the
archive, and `verify` finds the ledger intact, then reports an edited row and a
deleted row by case and seq.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest
import pytest_asyncio
from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.workflowservice.v1 import DeleteWorkflowExecutionRequest
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import WorkflowEnvironment

from audit.archive import archive_pass, load_histories, run_archiver
from audit.history import sha256_text
from audit.replay import replay_runs
from domain.calendar import local_date
from domain.enums import Action, Stage
from tests.harness import LEAD, OFFICE, RU, CaseDriver, case_worker, criteria, make_filing, start_dev_env
from workflows.contracts import CaseWorkflowResult, case_workflow_id

pytestmark = pytest.mark.devserver
ROOT = Path(__file__).resolve().parents[2]


@pytest_asyncio.fixture(scope="module")
async def dev_env() -> AsyncIterator[WorkflowEnvironment]:
    env = await start_dev_env()
    yield env
    await env.shutdown()


def _cli(env: WorkflowEnvironment, database_url: str, *args: str) -> subprocess.CompletedProcess:
    environ = dict(
        os.environ, PYTHONPATH=str(ROOT), DATABASE_URL=database_url,
        TEMPORAL_ADDRESS=env.client.service_client.config.target_host, TEMPORAL_NAMESPACE=env.client.namespace,
    )
    return subprocess.run([sys.executable, "-m", "audit.cli", *args], cwd=ROOT, env=environ,
                          capture_output=True, text=True, timeout=180)


async def _until(predicate, what: str, tries: int = 100, pause: float = 0.2):
    for _ in range(tries):
        value = await predicate()
        if value:
            return value
        await asyncio.sleep(pause)
    raise AssertionError(f"timed out waiting for {what}")


async def _close_case(env: WorkflowEnvironment, c: CaseDriver) -> None:
    await c.file()
    await c.do(Action.TRANSFER, OFFICE)
    await c.do(Action.ACKNOWLEDGE, RU)
    await c.complete_measures()
    await c.do(Action.SUBMIT_COMPLETION, RU, reason="整改措施已全部完成")
    await c.do(Action.PRELIM_PASS, LEAD)
    handle = c.client.get_workflow_handle(case_workflow_id(c.case_no))
    await env.fast_forward(handle, timedelta(days=8))  # the 7-day 公示
    await _until(lambda: _stage_is(c, Stage.CLOSURE_APPLICATION), "posting to end")
    await c.do(Action.APPLY_CLOSURE, RU)
    await c.do(Action.VERIFY_PASS, LEAD, criteria=criteria())
    await c.do(Action.RECORD_FILING, OFFICE, reason="验收合格,予以销号")


async def _stage_is(c: CaseDriver, stage: Stage) -> bool:
    return await c.stage() is stage


async def test_an_auditor_replays_and_reads_a_year_old_case_the_server_no_longer_holds(
    dev_env: WorkflowEnvironment, pool: asyncpg.Pool, database_url: str, task_queue: str, tmp_path: Path
) -> None:
    client = dev_env.client
    today = local_date(datetime.now(UTC))
    c = CaseDriver(client, pool, task_queue, make_filing(due=today + timedelta(days=120)))
    wid = case_workflow_id(c.case_no)
    stop = asyncio.Event()
    archiver = asyncio.create_task(run_archiver(client, pool, stop, poll_seconds=0.5))  # as in the worker
    try:
        async with case_worker(client, pool, task_queue):
            await _close_case(dev_env, c)
            assert await c.stage() is Stage.CLOSED
            handle = client.get_workflow_handle(wid, result_type=CaseWorkflowResult)
            await dev_env.fast_forward(handle, timedelta(days=366))  # a year on: look-back window over
            result = await asyncio.wait_for(handle.result(), timeout=60)
            assert result.stage is Stage.ARCHIVED
        row = await _until(
            lambda: pool.fetchrow("SELECT * FROM history_archive WHERE workflow_id = $1", wid), "the archiver", 150)
    finally:
        stop.set()
        await archiver
    run_id = row["run_id"]
    assert row["case_no"] == c.case_no and row["status"] == "COMPLETED"
    assert row["sha256"] == sha256_text(row["history_json"]) and row["event_count"] > 50
    assert row["close_time"] - row["start_time"] > timedelta(days=365)

    # A catch-up pass stores nothing twice; so does the command.
    again = await archive_pass(client, pool, full=True)
    assert again.archived == 0 and again.already >= 1 and not again.failed
    out = _cli(dev_env, database_url, "archive", "--once")
    assert out.returncode == 0 and "0 archived" in out.stdout, out.stdout + out.stderr

    # Retention (simulated): the server forgets the execution. Deletion is asynchronous on the
    # server; the request is repeated until the history is gone (it is idempotent).
    delete = DeleteWorkflowExecutionRequest(
        namespace=client.namespace, workflow_execution=WorkflowExecution(workflow_id=wid, run_id=run_id))

    async def gone() -> bool:
        try:
            await client.get_workflow_handle(wid, run_id=run_id).fetch_history()
        except RPCError as e:
            if e.status == RPCStatusCode.NOT_FOUND:
                return True
            raise
        try:
            await client.workflow_service.delete_workflow_execution(delete)
        except RPCError as e:
            if e.status != RPCStatusCode.NOT_FOUND:
                raise
        return False

    await _until(gone, "the server to delete the execution", 120, 1.0)
    runs = await load_histories(pool, client, c.case_no)
    assert [(r.run_id, r.source) for r in runs] == [(run_id, "archive")]

    # (b) replay, one command.
    out = _cli(dev_env, database_url, "replay", c.case_no)
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"OK    {c.case_no} run {run_id} (archive," in out.stdout
    assert "1 OK, 0 failed" in out.stdout
    out = _cli(dev_env, database_url, "replay", "--all", "--sandboxed", "--json")
    assert out.returncode == 0, out.stdout + out.stderr
    doc = json.loads(out.stdout)
    assert doc["ok"] and {(r["case_no"], r["run_id"], r["source"]) for r in doc["runs"]} >= {
        (c.case_no, run_id, "archive")} and doc["runner"] == "sandboxed"

    since = (row["close_time"] - timedelta(days=1)).date().isoformat()
    out = _cli(dev_env, database_url, "replay", "--since", since, "--source", "archive", "--json")
    assert out.returncode == 0, out.stdout + out.stderr
    assert run_id in {r["run_id"] for r in json.loads(out.stdout)["runs"]}

    # (c) the account, one command: from the history, with actors, reasons, deadlines, timers.
    out = _cli(dev_env, database_url, "timeline", c.case_no)
    assert out.returncode == 0, out.stderr
    text = out.stdout
    for needle in ("交办 (TRANSFER)", "签收 (ACKNOWLEDGE)", "理由 reason: 验收合格,予以销号", "公示期满",
                   "定时器到期", "期限计算", "归档 (ARCHIVED)", "工作流结束", "整改办 / 整改办 / office-zhang"):
        assert needle in text, needle
    pdf = tmp_path / "timeline.pdf"
    out = _cli(dev_env, database_url, "timeline", c.case_no, "-o", str(pdf))
    assert out.returncode == 0 and pdf.read_bytes().startswith(b"%PDF"), out.stderr

    # Ledger: intact and consistent with the history ...
    out = _cli(dev_env, database_url, "verify", c.case_no)
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"OK     case {c.case_no}" in out.stdout and "history (1 run(s))" in out.stdout

    # ... until a DBA edits one row ...
    seq_edit = await pool.fetchval("SELECT seq FROM ledger WHERE case_no = $1 AND event = 'VERIFY_PASS'", c.case_no)
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("SET LOCAL session_replication_role = replica")
        await conn.execute("UPDATE ledger SET actor_user = 'lead-fake' WHERE case_no = $1 AND seq = $2",
                           c.case_no, seq_edit)
    out = _cli(dev_env, database_url, "verify", c.case_no)
    assert out.returncode == 1, out.stdout + out.stderr
    assert f"case {c.case_no} seq {seq_edit}: CONTENT_CHANGED" in out.stdout
    assert f"case {c.case_no} seq {seq_edit}: LEDGER_DIFFERS_FROM_HISTORY: actor_user: ledger 'lead-fake'" in out.stdout

    # ... or deletes one.
    seq_del = await pool.fetchval("SELECT seq FROM ledger WHERE case_no = $1 AND event = 'POSTING_ENDED'", c.case_no)
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("SET LOCAL session_replication_role = replica")
        await conn.execute("DELETE FROM ledger WHERE case_no = $1 AND seq = $2", c.case_no, seq_del)
    out = _cli(dev_env, database_url, "verify", c.case_no, "--json")
    assert out.returncode == 1
    found = {(f["seq"], f["kind"]) for f in json.loads(out.stdout)["cases"][0]["findings"]}
    assert {(seq_del, "MISSING_ROW"), (seq_del, "HISTORY_ENTRY_NOT_IN_LEDGER"), (seq_edit, "CONTENT_CHANGED")} <= found


async def test_the_archiver_catches_up_runs_that_ended_while_it_was_down(
    dev_env: WorkflowEnvironment, pool: asyncpg.Pool, task_queue: str
) -> None:
    """Terminated and continued-as-new runs end while no archiver runs (the watermark left behind
    by the previous test is older); a pass stores them all, once; the running run comes from Temporal."""
    from domain.policy import Policy

    client = dev_env.client
    a = CaseDriver(client, pool, task_queue, make_filing())
    b = CaseDriver(client, pool, task_queue, make_filing(due=local_date(datetime.now(UTC)) + timedelta(days=90)))
    async with case_worker(client, pool, task_queue):
        await a.file()
        await client.get_workflow_handle(case_workflow_id(a.case_no)).terminate("filed in error")
        await b.file(policy=Policy(max_history_events=60))
        await b.do(Action.TRANSFER, OFFICE)
        await b.do(Action.ACKNOWLEDGE, RU)
        for i in range(12):
            await b.do(Action.REPORT_PROGRESS, RU, reason=f"第{i + 1}次调度")
        query = f"WorkflowId = '{case_workflow_id(b.case_no)}' AND ExecutionStatus = 'ContinuedAsNew'"

        async def continued() -> list:
            return [w async for w in client.list_workflows(query)]

        await _until(continued, "the case to continue as new")

        async def stored() -> list:
            await archive_pass(client, pool)
            return await pool.fetch("SELECT case_no, status FROM history_archive WHERE case_no = ANY($1::text[])",
                                    [a.case_no, b.case_no])

        async def all_stored():
            rows = await stored()
            statuses = {(r["case_no"], r["status"]) for r in rows}
            return rows if {(a.case_no, "TERMINATED"), (b.case_no, "CONTINUED_AS_NEW")} <= statuses else None

        await _until(all_stored, "catch-up", 50, 0.3)
        counted = await pool.fetchval("SELECT count(*) FROM history_archive WHERE case_no = ANY($1::text[])",
                                      [a.case_no, b.case_no])
        await archive_pass(client, pool, full=True)
        assert await pool.fetchval("SELECT count(*) FROM history_archive WHERE case_no = ANY($1::text[])",
                                   [a.case_no, b.case_no]) == counted, "idempotent"
        # b's runs: the archived ones, then the running one from Temporal, in order, replaying cleanly.
        runs = await load_histories(pool, client, b.case_no)
        assert [r.source for r in runs][-1] == "temporal" and runs[0].continued_from is None
        assert all(x.run_id == y.continued_from for x, y in zip(runs, runs[1:], strict=False))
        assert [r.status for r in runs] == ["CONTINUED_AS_NEW"] * (len(runs) - 1) + ["RUNNING"]
        summary = await replay_runs(runs)
        assert len(summary.outcomes) == len(runs) and not summary.failures
