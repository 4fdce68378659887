"""Activity failures classified (issue 9): what retrying cannot fix blocks one case visibly while
other cases move on; transient failures retry; the office's UNBLOCK retries or discards."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import AsyncIterator
from datetime import date, timedelta
from pathlib import Path

import asyncpg
import pytest
import pytest_asyncio
from temporalio import activity
from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.workflowservice.v1 import DescribeWorkflowExecutionRequest
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer, Worker

import activities.failures as failures
from activities.case_activities import CaseActivities
from activities.failures import PERMANENT, TRANSIENT, classified, classify
from config import Settings
from domain.blocking import PERMANENT_DATA_ERROR, UNCLASSIFIED_ERROR, UnblockMode, UnblockRequest
from domain.enums import Action, Stage
from domain.model import DeadlineRequest
from tests.harness import OFFICE, RU, CaseDriver, end_started_cases, make_filing
from worker import sandbox_runner
from workflows import client as ops
from workflows.case_workflow import CaseWorkflow
from workflows.contracts import CASE_BLOCKED, RecordInput


class FaultyActivities(CaseActivities):
    """The real activities, with test-only hooks that inject faults for chosen cases."""

    poison: set[str] = set()  # record_case_events: a NUL byte in the reason (bypasses the validator)
    flaky: dict[str, int] = {}  # compute_deadline: connection lost this many times first
    broken: set[str] = set()  # compute_deadline: an unknown error every time

    @activity.defn(name="record_case_events")
    @classified
    async def record_case_events(self, inp: RecordInput) -> int:
        if inp.projection.case_no in self.poison and any(e.event == "TRANSFER" for e in inp.entries):
            first = inp.entries[0].model_copy(update={"reason": inp.entries[0].reason + "\x00"})
            inp = inp.model_copy(update={"entries": [first, *inp.entries[1:]]})
        return await super().record_case_events(inp)

    @activity.defn(name="compute_deadline")
    @classified
    async def compute_deadline(self, req: DeadlineRequest):  # type: ignore[no-untyped-def]
        if self.flaky.get(req.case_no, 0) > 0:
            self.flaky[req.case_no] -= 1
            raise ConnectionResetError("connection reset by peer (injected)")
        if req.case_no in self.broken:
            raise RuntimeError("something nobody classified (injected)")
        return await super().compute_deadline(req)


@pytest_asyncio.fixture
async def faulty_worker(ts_client: Client, pool: asyncpg.Pool, task_queue: str) -> AsyncIterator[FaultyActivities]:
    acts = FaultyActivities(pool, "", Settings().calendar_overrides_file)
    acts.poison, acts.flaky, acts.broken = set(), {}, set()
    async with Worker(ts_client, task_queue=task_queue, workflows=[CaseWorkflow], activities=acts.all(),
                      workflow_runner=sandbox_runner()):
        try:
            yield acts
        finally:
            await end_started_cases(ts_client)


async def _blocked_search_attribute(client: Client, case_no: str) -> str | None:
    """CaseBlocked as the server holds it (raw: the Java test server's describe has datetimes
    the SDK's typed decoder refuses)."""
    resp = await client.workflow_service.describe_workflow_execution(
        DescribeWorkflowExecutionRequest(namespace=client.namespace,
                                         execution=WorkflowExecution(workflow_id=f"case-{case_no}"))
    )
    field = resp.workflow_execution_info.search_attributes.indexed_fields.get(CASE_BLOCKED.name)
    value = json.loads(field.data) if field is not None and field.data else None
    return value or None


def _filing():  # type: ignore[no-untyped-def]
    return make_filing(due=date.today() + timedelta(days=90))


def _unblock(mode: UnblockMode = UnblockMode.RETRY, actor=OFFICE, reason: str = "fixed") -> UnblockRequest:  # type: ignore[no-untyped-def]
    return UnblockRequest(actor=actor, request_id=f"ub-{uuid.uuid4().hex[:8]}", reason=reason, mode=mode)


async def test_the_database_refusing_a_nul_is_permanent_a_lost_connection_is_not(pool: asyncpg.Pool) -> None:
    with pytest.raises(asyncpg.exceptions.DataError) as e:
        await pool.fetchval("SELECT $1::text", "a\x00b")
    assert classify(e.value) == PERMANENT
    assert classify(ConnectionResetError()) == TRANSIENT
    assert classify(asyncpg.exceptions.SerializationError()) == TRANSIENT
    assert classify(asyncpg.exceptions.UniqueViolationError()) == PERMANENT


async def test_a_poison_input_blocks_one_case_visibly_while_others_move_and_the_office_unblocks(
    ts_client: Client, pool: asyncpg.Pool, task_queue: str, faulty_worker: FaultyActivities,
) -> None:
    bad = CaseDriver(ts_client, pool, task_queue, _filing())
    good = CaseDriver(ts_client, pool, task_queue, _filing())
    await bad.file()
    await good.file()
    faulty_worker.poison.add(bad.case_no)

    with pytest.raises(ops.ActionRefusedError) as refused:
        await bad.do(Action.TRANSFER, OFFICE)
    assert refused.value.error_type == "CaseBlockedError"
    assert "PermanentDataError" in refused.value.message and "nothing of this action was recorded" in refused.value.message

    # Visible: query, search attribute, side table; nothing half-written in the ledger.
    info = await ops.blocked(ts_client, bad.case_no)
    assert info is not None and info.error_type == PERMANENT_DATA_ERROR and info.activity == "record_case_events"
    assert "TRANSFER by office-zhang" == info.origin
    assert await _blocked_search_attribute(ts_client, bad.case_no) == PERMANENT_DATA_ERROR
    row = await pool.fetchrow("SELECT * FROM case_block WHERE case_no = $1", bad.case_no)
    assert row is not None and row["resolved_at"] is None and row["error_type"] == PERMANENT_DATA_ERROR
    assert "0x00" in row["message"] or "\\x00" in row["message"] or "byte sequence" in row["message"]
    assert await bad.events() == ["FILED"]
    assert await bad.stage() is Stage.REGISTERED

    # Other cases move on; a later action on the blocked case is refused at once, not hung.
    assert (await good.do(Action.TRANSFER, OFFICE)).stage is Stage.TRANSFERRED
    with pytest.raises(ops.ActionRefusedError) as again:
        await bad.do(Action.TRANSFER, OFFICE)
    assert again.value.error_type == "CaseBlockedError"

    # Only the office unblocks, with a reason.
    with pytest.raises(ops.ActionRefusedError) as denied:
        await ops.unblock(ts_client, bad.case_no, _unblock(actor=RU))
    assert denied.value.error_type == "NotAuthorizedError"
    with pytest.raises(ops.ActionRefusedError) as no_reason:
        await ops.unblock(ts_client, bad.case_no, _unblock(reason=" "))
    assert no_reason.value.error_type == "MissingInputError"

    # Retrying while the cause persists blocks again; once fixed, RETRY records the held action.
    assert await ops.unblock(ts_client, bad.case_no, _unblock()) == "BLOCKED"
    faulty_worker.poison.discard(bad.case_no)
    assert await ops.unblock(ts_client, bad.case_no, _unblock()) == "UNBLOCKED"
    assert await bad.stage() is Stage.TRANSFERRED
    assert await bad.events() == ["FILED", "TRANSFER", "DEADLINE_SET"]
    assert await ops.blocked(ts_client, bad.case_no) is None
    assert await _blocked_search_attribute(ts_client, bad.case_no) is None
    rows = await pool.fetch("SELECT * FROM case_block WHERE case_no = $1 ORDER BY block_no", bad.case_no)
    assert [r["resolution"] for r in rows] == ["RETRY", "RETRY"] and all(r["resolved_at"] for r in rows)
    assert (await bad.do(Action.ACKNOWLEDGE, RU)).stage is Stage.RECTIFYING

    # The new path (blocked, blocked again, unblocked) replays deterministically; the stored copy
    # in tests/replay/histories/blocked_then_unblocked.json came from this test
    # (RECORD_BLOCKED_HISTORY=1).
    history = await ts_client.get_workflow_handle(f"case-{bad.case_no}").fetch_history()
    if os.environ.get("RECORD_BLOCKED_HISTORY") == "1":
        (Path(__file__).parents[1] / "replay" / "histories" / "blocked_then_unblocked.json").write_text(
            json.dumps(history.to_json_dict(), ensure_ascii=False, indent=1)
        )
    replayed = await Replayer(workflows=[CaseWorkflow], data_converter=pydantic_data_converter,
                              workflow_runner=sandbox_runner()).replay_workflow(history, raise_on_replay_failure=False)
    assert replayed.replay_failure is None


async def test_discard_drops_the_held_action_and_the_case_stays_as_recorded(
    ts_client: Client, pool: asyncpg.Pool, task_queue: str, faulty_worker: FaultyActivities,
) -> None:
    c = CaseDriver(ts_client, pool, task_queue, _filing())
    await c.file()
    faulty_worker.poison.add(c.case_no)
    with pytest.raises(ops.ActionRefusedError):
        await c.do(Action.TRANSFER, OFFICE)
    assert await ops.unblock(ts_client, c.case_no, _unblock(UnblockMode.DISCARD, reason="bad reason text")) == "UNBLOCKED"
    assert await c.stage() is Stage.REGISTERED and await c.events() == ["FILED"]
    faulty_worker.poison.discard(c.case_no)
    assert (await c.do(Action.TRANSFER, OFFICE)).stage is Stage.TRANSFERRED  # sent again, corrected


async def test_transient_failures_retry_and_unknown_ones_block_after_a_bound(
    ts_client: Client, pool: asyncpg.Pool, task_queue: str, faulty_worker: FaultyActivities,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(failures, "UNKNOWN_MAX_ATTEMPTS", 3)
    flaky = CaseDriver(ts_client, pool, task_queue, _filing())
    broken = CaseDriver(ts_client, pool, task_queue, _filing())
    await flaky.file()
    await broken.file()
    faulty_worker.flaky[flaky.case_no] = 2
    assert (await flaky.do(Action.TRANSFER, OFFICE)).stage is Stage.TRANSFERRED  # retried through
    assert faulty_worker.flaky[flaky.case_no] == 0
    assert await ops.blocked(ts_client, flaky.case_no) is None

    faulty_worker.broken.add(broken.case_no)
    with pytest.raises(ops.ActionRefusedError) as refused:
        await broken.do(Action.TRANSFER, OFFICE)
    assert refused.value.error_type == "CaseBlockedError"
    info = await ops.blocked(ts_client, broken.case_no)
    assert info is not None and info.error_type == UNCLASSIFIED_ERROR and info.activity == "compute_deadline"
