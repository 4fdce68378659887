"""Metrics, probes and log context of a real worker process (and the console's probes).

A `python worker.py` on the dev server with METRICS_BIND and HEALTH_BIND on free ports: its
Prometheus endpoint serves the SDK runtime's metrics and the engine's (cases by stage,
refused actions by reason, outbox, activity failures by error type); `/healthz` and `/readyz`
answer; its JSON log lines from activities and from the workflow logger carry case_no,
workflow_id and run_id.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import httpx
import pytest
import pytest_asyncio
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from config import ROOT
from domain.calendar import local_date
from domain.enums import Action
from embedded import find_free_port
from ops.health import HealthServer, Probes, postgres_check
from tests.deploy.procs import WorkerProcess
from tests.harness import OFFICE, CaseDriver, make_filing, start_dev_env
from workflows.client import ActionRefusedError, file_case
from workflows.contracts import case_workflow_id

pytestmark = [pytest.mark.devserver, pytest.mark.timeout(300)]


@pytest_asyncio.fixture(scope="module")
async def dev_env() -> AsyncIterator[WorkflowEnvironment]:
    env = await start_dev_env()
    yield env
    await env.shutdown()


def parse_prometheus(text: str) -> dict[tuple[str, frozenset], float]:
    """Sample lines -> {(name, labels): value}; comments skipped."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        head, _, value = line.rpartition(" ")
        name, _, rest = head.partition("{")
        labels = frozenset()
        if rest:
            pairs = [p for p in rest.rstrip("}").split(",") if p]
            labels = frozenset(tuple(p.split("=", 1)) for p in pairs)
            labels = frozenset((k, v.strip('"')) for k, v in labels)
        out[(name, labels)] = float(value)
    return out


def samples(metrics: dict, name: str, **labels: str) -> list[float]:
    want = set(labels.items())
    return [v for (n, ls), v in metrics.items() if n == name and want <= set(ls)]


async def _eventually(check, what: str, timeout: float = 240.0):
    deadline = time.monotonic() + timeout
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.3)


async def test_worker_serves_metrics_probes_and_logs_with_case_context(
    dev_env: WorkflowEnvironment, database_url: str, pool: asyncpg.Pool, task_queue: str, tmp_path: Path
) -> None:
    client = dev_env.client
    metrics_port, health_port = find_free_port(), find_free_port()
    w = WorkerProcess("observed", {
        "TEMPORAL_ADDRESS": client.service_client.config.target_host,
        "TEMPORAL_NAMESPACE": client.namespace,
        "TEMPORAL_TASK_QUEUE": task_queue,
        "DATABASE_URL": database_url,
        "DB_POOL_MAX": "3",
        "METRICS_BIND": f"127.0.0.1:{metrics_port}",
        "HEALTH_BIND": f"127.0.0.1:{health_port}",
        "METRICS_DB_POLL_SECONDS": "1",
        "ARCHIVE_POLL_SECONDS": "0",
        "LOG_LEVEL": "DEBUG",
    }, tmp_path)
    try:
        async with httpx.AsyncClient(timeout=10) as http:
            async def ready() -> httpx.Response | None:
                try:
                    r = await http.get(f"http://127.0.0.1:{health_port}/readyz")
                except httpx.TransportError:
                    assert w.proc.poll() is None, w.tail()
                    return None
                return r if r.status_code == 200 else None

            r = await _eventually(ready, "the worker's /readyz to answer 200")
            assert r.json() == {"status": "ok", "checks": {
                "workers_alive": "ok", "worker_parts": "ok", "workers_polling": "ok", "temporal": "ok",
                "postgres": "ok"}}
            alive = await http.get(f"http://127.0.0.1:{health_port}/healthz")
            assert alive.status_code == 200 and alive.json()["checks"] == {"workers_alive": "ok", "worker_parts": "ok"}
            assert (await http.get(f"http://127.0.0.1:{health_port}/nope")).status_code == 404

            today = local_date(datetime.now(UTC))
            c = CaseDriver(client, pool, task_queue, make_filing(due=today + timedelta(days=90)))
            assert (await c.file()).filed
            await c.do(Action.TRANSFER, OFFICE)
            with pytest.raises(ActionRefusedError) as refused:
                await c.do(Action.TRANSFER, OFFICE)  # already transferred: refused, recorded by reason
            reason = refused.value.error_type
            # A case whose ladder profile does not exist: its load_policy activity fails (and retries).
            bad = CaseDriver(client, pool, task_queue, make_filing(ladder=f"no-such-ladder-{uuid.uuid4().hex[:6]}"))
            # Filed without a policy snapshot in the input, so the workflow loads it in the activity.
            assert (await file_case(client, bad.filing, OFFICE, task_queue, policy=None)).filed

            last: list[str] = [""]

            async def scraped() -> dict | None:
                text = last[0] = (await http.get(f"http://127.0.0.1:{metrics_port}/metrics")).text
                m = parse_prometheus(text)
                stages = {dict(ls)["stage"]: v for (n, ls), v in m.items() if n == "case_engine_cases"}
                if (stages.get("RECTIFYING", 0) + stages.get("TRANSFERRED", 0) >= 1
                        and samples(m, "case_engine_refused_actions", reason=reason)
                        and samples(m, "case_engine_activity_failures", activity_type="load_policy")):
                    return m
                return None

            try:
                m = await _eventually(scraped, "the engine's metrics on the worker's endpoint")
            except AssertionError:
                print("\n".join(x for x in last[0].splitlines() if "case_engine" in x))
                raise
        # The SDK runtime's own metrics, on the same endpoint.
        assert samples(m, "temporal_workflow_task_schedule_to_start_latency_count")
        assert samples(m, "temporal_activity_execution_latency_count", activity_type="record_case_events")
        assert max(samples(m, "case_engine_refused_actions", reason=reason)) >= 1
        assert samples(m, "case_engine_outbox_pending") and samples(m, "case_engine_outbox_oldest_pending_seconds")
        assert samples(m, "case_engine_cases_overdue") and samples(m, "case_engine_metrics_db_up") == [1.0]
        assert {dict(ls)["kind"] for (n, ls), _ in m.items() if n == "case_engine_escalations"} == {"fired", "proposed"}
        # Issue 9's runtime gauges (their counts: tests/integration/test_runtime_metrics.py).
        assert {dict(ls)["state"] for (n, ls), _ in m.items() if n == "case_engine_watchdog_nudges"} == {"unhealed", "healed"}
        for gauge in ("case_engine_cases_blocked", "case_engine_watchdog_oldest_unhealed_seconds",
                      "case_engine_escalation_proposals_pending", "case_engine_escalation_oldest_proposal_seconds"):
            assert samples(m, gauge), gauge
        failures = samples(m, "case_engine_activity_failures", activity_type="load_policy")
        assert failures and min(failures) >= 1
        # The unknown ladder is a failure retrying cannot fix (activities/failures.py): that run may
        # already have ended by itself.
        with contextlib.suppress(RPCError):
            await client.get_workflow_handle(case_workflow_id(bad.case_no)).terminate("test done")
        await client.get_workflow_handle(case_workflow_id(c.case_no)).terminate("test done")
    finally:
        assert w.stop() == 0, w.tail()

    lines = w.lines()
    recorded = [x for x in lines if x.get("event") == "case_events_recorded" and x.get("case_no") == c.case_no]
    assert recorded, "no activity log line for the case"
    for x in recorded:
        assert x["workflow_id"] == case_workflow_id(c.case_no) and x["run_id"] and x["activity_type"]
    decided = [x for x in lines if x.get("event") == "case_events_decided" and x.get("case_no") == c.case_no]
    assert decided, "no workflow logger line for the case"
    for x in decided:
        assert x["workflow_id"] == case_workflow_id(c.case_no) and x["run_id"] == recorded[0]["run_id"]
    # Failed attempts are logged by the SDK's activity logger, with the same context.
    failed = [x for x in lines if x.get("case_no") == bad.case_no and x.get("activity_type") == "load_policy"]
    assert failed and all(x["workflow_id"] == case_workflow_id(bad.case_no) for x in failed)


async def test_readiness_names_the_dependency_that_is_down(database_url: str) -> None:
    """/readyz is 503 with the failing check named once PostgreSQL cannot be reached."""
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=1)
    probes = Probes()
    probes.add_ready("postgres", postgres_check(pool))
    async with HealthServer(probes, "127.0.0.1:0") as server, httpx.AsyncClient(timeout=10) as http:
        url = f"http://127.0.0.1:{server.port}/readyz"
        assert (await http.get(url)).json() == {"status": "ok", "checks": {"postgres": "ok"}}
        await pool.close()
        r = await http.get(url)
        assert r.status_code == 503
        body = r.json()
        assert body["status"] == "fail" and body["checks"]["postgres"] != "ok"
        assert "postgresql://" not in r.text  # no connection string in a probe answer
        assert (await http.get(f"http://127.0.0.1:{server.port}/healthz")).status_code == 200


async def test_console_answers_probes_without_login(
    dev_env: WorkflowEnvironment, database_url: str, tmp_path: Path
) -> None:
    port = find_free_port()
    client = dev_env.client
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TEMPORAL_", "PAYLOAD_"))}
    env.update({"TEMPORAL_ADDRESS": client.service_client.config.target_host, "DATABASE_URL": database_url,
                "CONSOLE_HOST": "127.0.0.1", "CONSOLE_PORT": str(port), "DB_POOL_MAX": "2"})
    log = open(tmp_path / "console.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen([sys.executable, "-m", "admin.web"], cwd=ROOT, env=env, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    try:
        async with httpx.AsyncClient(timeout=10) as http:
            async def ready() -> httpx.Response | None:
                try:
                    return await http.get(f"http://127.0.0.1:{port}/readyz")
                except httpx.TransportError:
                    assert proc.poll() is None, (tmp_path / "console.log").read_text()
                    return None

            r = await _eventually(ready, "the console's /readyz")
            assert r.status_code == 200, r.text
            assert r.json()["checks"] == {"event_loop": "ok", "postgres": "ok", "temporal": "ok"}
            h = await http.get(f"http://127.0.0.1:{port}/healthz")
            assert h.status_code == 200 and h.json() == {"status": "ok", "checks": {"event_loop": "ok"}}
            # Every other page still needs a login.
            assert (await http.get(f"http://127.0.0.1:{port}/cases")).status_code in (302, 303, 401)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()
