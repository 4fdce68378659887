"""`act` when the engine does not answer: the Temporal server is down while an action is sent.

The same Update id is re-sent until the server is back (the action is applied once, the caller
gets its result), and when the server stays away the caller is told the outcome is unknown and
that re-sending is safe, without a row in `refused_action` (nothing refused it).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import date
from pathlib import Path

import pytest
import pytest_asyncio

from domain.enums import Action, Stage
from domain.model import ActionRequest
from tests.faults.cluster import Cluster
from tests.harness import OFFICE, RU, make_filing
from workflows import client as ops

pytestmark = [pytest.mark.devserver, pytest.mark.timeout(300)]


@pytest_asyncio.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[Cluster]:
    c = Cluster(tmp_path)
    try:
        await c.start(smtp=False)
        yield c
    finally:
        await c.stop()


async def _refused_rows(cluster: Cluster, case_no: str) -> int:
    assert cluster.pool is not None
    return int(await cluster.pool.fetchval("SELECT count(*) FROM refused_action WHERE case_no = $1", case_no))


async def _ledger_rows(cluster: Cluster, case_no: str, event: str) -> int:
    assert cluster.pool is not None
    return int(await cluster.pool.fetchval(
        "SELECT count(*) FROM ledger WHERE case_no = $1 AND event = $2", case_no, event))


async def test_an_action_sent_while_temporal_is_down_is_applied_once_when_it_returns(cluster: Cluster) -> None:
    client = cluster.client
    assert client is not None and cluster.pool is not None
    filing = make_filing("UNANSWERED-1", due=date(2030, 6, 30))
    assert (await ops.file_case(client, filing, OFFICE, cluster.task_queue)).filed
    await ops.act(client, filing.case_no, ActionRequest(action=Action.TRANSFER, actor=OFFICE, request_id="t-1"),
                  pool=cluster.pool)

    await cluster.temporal.stop()
    sending = asyncio.create_task(ops.act(
        client, filing.case_no, ActionRequest(action=Action.ACKNOWLEDGE, actor=RU, request_id="ack-1"),
        pool=cluster.pool))
    await asyncio.sleep(3)
    assert not sending.done(), "act gave up while the server was away for only 3 s"
    await cluster.temporal.start()
    result = await asyncio.wait_for(sending, timeout=120)

    assert result.stage is Stage.RECTIFYING
    assert await _ledger_rows(cluster, filing.case_no, "ACKNOWLEDGE") == 1
    assert await _refused_rows(cluster, filing.case_no) == 0


async def test_an_engine_that_stays_away_is_reported_unknown_not_refused(
    cluster: Cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = cluster.client
    assert client is not None and cluster.pool is not None
    filing = make_filing("UNANSWERED-2", due=date(2030, 6, 30))
    assert (await ops.file_case(client, filing, OFFICE, cluster.task_queue)).filed
    # answered: the worker is connected (a worker that cannot connect at its start exits non-zero)
    await ops.act(client, filing.case_no, ActionRequest(action=Action.TRANSFER, actor=OFFICE, request_id="t-2"),
                  pool=cluster.pool)

    ack = ActionRequest(action=Action.ACKNOWLEDGE, actor=RU, request_id="ack-2")
    monkeypatch.setattr(ops, "UNANSWERED_RESEND_SECONDS", 3.0)
    await cluster.temporal.stop()
    try:
        with pytest.raises(ops.ActionRefusedError) as err:
            await ops.act(client, filing.case_no, ack, pool=cluster.pool)
    finally:
        await cluster.temporal.start()
    assert err.value.error_type == "EngineUnavailable"
    assert "same request id is safe" in err.value.message
    assert await _refused_rows(cluster, filing.case_no) == 0
    # Sent again with the same request id once the engine is back (its worker reconnecting and
    # the case's first task re-dispatched may take a while): applied exactly once.
    monkeypatch.setattr(ops, "UNANSWERED_RESEND_SECONDS", 150.0)
    t0 = asyncio.get_running_loop().time()
    result = await ops.act(client, filing.case_no, ack, pool=cluster.pool)
    print(f"re-sent ACKNOWLEDGE answered {asyncio.get_running_loop().time() - t0:.1f} s after the restart")
    assert result.stage is Stage.RECTIFYING
    assert await _ledger_rows(cluster, filing.case_no, "ACKNOWLEDGE") == 1
