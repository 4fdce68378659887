"""Fault injection (issue 11): kill, restart or cut off one real part while cases move, then count.

Each test starts its own PostgreSQL, Temporal dev server (persistent file), SMTP relay and worker
process, drives `SCALE.cases` cases through the lifecycle (tests/faults/driver.py), injects one
fault once about a third of the work is done, lets the run finish and checks that nothing was
lost: every case in the stage its accepted actions imply, exactly one ledger row per accepted
action and no gap, every notice in the outbox, the inbox and e-mailed once.
`make faults` runs the long version (FAULTS=long: 200 cases, a 30 s database outage).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import httpx
import pytest
import pytest_asyncio

from tests.faults.cluster import Cluster
from tests.faults.conftest import SCALE
from tests.faults.driver import Driver, FaultReport

pytestmark = [pytest.mark.devserver, pytest.mark.timeout(SCALE.settle_seconds + 600)]


@pytest_asyncio.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[Cluster]:
    c = Cluster(tmp_path)
    try:
        yield c
    finally:
        await c.stop()


async def _run_with_fault(
    cluster: Cluster, name: str, inject: Callable[[], Awaitable[str]], *, at: float = 0.35, smtp: bool = True
) -> tuple[Driver, FaultReport]:
    """Drive the cases, call `inject` once `at` of the work is done, finish, settle, count."""
    if cluster.client is None:
        await cluster.start(smtp=smtp)
    driver = Driver(cluster, SCALE.cases)
    await cluster.set_unit_emails(driver.units)
    report = FaultReport(fault=name)
    t0 = time.monotonic()
    reached = driver.when_progress(at)
    running = asyncio.create_task(driver.run())
    waiter = asyncio.create_task(reached.wait())
    await asyncio.wait({running, waiter}, return_when=asyncio.FIRST_COMPLETED)
    if running.done():
        running.result()  # a failure before the fault
        raise AssertionError("the run finished before the fault could be injected")
    report.cases_in_flight, report.actions_in_flight = driver.in_flight()
    report.activities_in_flight = await driver.activities_running()
    driver.fault_at = time.monotonic()
    report.injected = await inject()
    await asyncio.wait_for(running, timeout=SCALE.settle_seconds)
    await driver.settle(SCALE.settle_seconds)
    await driver.check(report)
    report.seconds = time.monotonic() - t0
    return driver, report


def _assert_nothing_lost(report: FaultReport, cluster: Cluster, *, resend_allowed: int = 0) -> None:
    assert report.nothing_lost, report.line() + "\n" + cluster.worker_logs()
    assert report.resent_same_message_id <= resend_allowed, report.line()
    assert report.accepted_actions == report.cases * 8


async def test_worker_killed_mid_run(cluster: Cluster, fault_report) -> None:
    """`kill -9` of the worker process with activities in flight; a new worker takes over."""

    async def inject() -> str:
        killed = cluster.kill_workers()
        await asyncio.sleep(1)
        cluster.start_worker()
        return f"kill -9 of {killed} worker process(es), new worker 1 s later"

    _, report = await _run_with_fault(cluster, "worker killed", inject)
    fault_report(report)
    # A notice e-mailed in the instant before the kill (before its commit) goes again, with
    # the same Message-ID: at most one per killed sender (it sends one at a time).
    _assert_nothing_lost(report, cluster, resend_allowed=1)


async def test_temporal_dev_server_restarted_mid_run(cluster: Cluster, fault_report) -> None:
    """The dev server (persistent SQLite file) stopped and started again on the same file."""

    async def inject() -> str:
        await cluster.temporal.stop()
        await asyncio.sleep(2)
        await cluster.temporal.start()
        return "Temporal dev server stopped (SIGTERM) and restarted on its persistent file after 2 s"

    _, report = await _run_with_fault(cluster, "Temporal restarted", inject)
    fault_report(report)
    _assert_nothing_lost(report, cluster)


async def test_postgres_restarted_mid_run(cluster: Cluster, fault_report) -> None:
    async def inject() -> str:
        await cluster.pg.stop()
        await cluster.pg.start()
        return "PostgreSQL stopped (fast shutdown) and started again"

    _, report = await _run_with_fault(cluster, "PostgreSQL restarted", inject)
    fault_report(report)
    _assert_nothing_lost(report, cluster)


async def test_database_unreachable_for_a_while(cluster: Cluster, fault_report) -> None:
    """PostgreSQL gone for SCALE.outage_seconds: workflows wait, the console says 数据库暂不可用."""
    from admin.web.app import create_app

    await cluster.start()
    app = create_app(cluster.settings)
    seen: dict[str, object] = {}
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://console") as http:
            assert (await http.get("/health/db")).json() == {"database": "ok"}

            async def inject() -> str:
                await cluster.pg.stop()
                t_down = time.monotonic()
                health = await http.get("/health/db")
                page = await http.get("/my", headers={"Cookie": "case_console_session=some-session"})
                api = await http.get("/api/v1/me", headers={"Authorization": "Bearer some-token"})
                seen.update(health=(health.status_code, health.json()), page=(page.status_code, page.text),
                            api=(api.status_code, api.json()))
                await asyncio.sleep(max(0.0, SCALE.outage_seconds - (time.monotonic() - t_down)))
                await cluster.pg.start()
                return f"PostgreSQL unreachable for {SCALE.outage_seconds:.0f} s (stopped, then started again)"

            _, report = await _run_with_fault(cluster, "database outage", inject, at=0.3)
            after = await http.get("/health/db")
    fault_report(report)
    _assert_nothing_lost(report, cluster)
    status, health = seen["health"]  # type: ignore[misc]
    assert status == 503 and health["database"] == "unavailable", health
    status, text = seen["page"]  # type: ignore[misc]
    assert status == 503 and "数据库暂不可用" in text and "Traceback" not in text, text[:500]
    status, body = seen["api"]  # type: ignore[misc]
    assert status == 503 and body["error"] == "DatabaseUnavailable", body
    assert after.status_code == 200 and after.json() == {"database": "ok"}, "the console caught up by itself"


async def test_smtp_relay_down_for_the_whole_run(cluster: Cluster, fault_report) -> None:
    """No relay while every case runs: notices reach the inbox at once and are e-mailed once later."""
    await cluster.start(smtp=False)
    driver = Driver(cluster, SCALE.cases)
    await cluster.set_unit_emails(driver.units)
    t0 = time.monotonic()
    await driver.run()
    pool = cluster.pool
    assert pool is not None
    cases = list(driver.runs)
    # The in-app inbox is unaffected: every queued notice is there while no e-mail could go.
    deadline = time.monotonic() + SCALE.settle_seconds
    while True:
        row = await pool.fetchrow(
            """SELECT count(*) AS n, count(*) FILTER (WHERE inbox_at IS NOT NULL) AS in_inbox,
                      count(*) FILTER (WHERE status = 'PENDING' AND attempts > 0) AS waiting,
                      count(*) FILTER (WHERE email_sent_at IS NOT NULL) AS mailed
               FROM outbox WHERE case_no = ANY($1)""", cases)
        # In the inbox, and the first e-mail attempt made (the sender writes a batch's inbox rows
        # first, then tries its e-mails): every notice waits for the relay, none was mailed.
        assert row["mailed"] == 0, dict(row)
        if row["n"] and row["in_inbox"] == row["n"] and row["waiting"] == row["n"]:
            break
        assert time.monotonic() < deadline, dict(row)
        await asyncio.sleep(1)
    inbox = await pool.fetchval("SELECT count(*) FROM inbox WHERE case_no = ANY($1)", cases)
    assert inbox == row["n"]
    cluster.smtp.start()  # the relay returns, on the same address
    report = FaultReport(fault="SMTP relay down", cases=SCALE.cases, cases_in_flight=SCALE.cases,
                         injected=f"no SMTP relay during the whole run ({row['n']} notices waiting in the outbox, "
                               f"all in the in-app inbox), relay started afterwards")
    await driver.settle(SCALE.settle_seconds)
    await driver.check(report)
    report.seconds = time.monotonic() - t0
    fault_report(report)
    _assert_nothing_lost(report, cluster)
    assert report.emails == report.notices
