"""One real console for the admin tests: the Temporal dev server, a real worker, the session's
PostgreSQL, and `python -m admin.web` started as a subprocess on a free port.

Users (one per role, two responsible units, two lead supervising units) are created
directly in the database, as `casectl admin create-user` would.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import httpx
import pytest
import pytest_asyncio
from temporalio.testing import WorkflowEnvironment

from admin.auth import issue_api_token
from admin.users import create_user
from domain.calendar import local_date
from embedded import find_free_port
from tests.harness import LEAD, LEAD2, OTHER_RU, RU, case_worker, start_dev_env

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
PASSWORD = "demo-pass-1234"

# username -> (unit, roles)
USERS: dict[str, tuple[str, list[str]]] = {
    "office": ("整改办", ["RECTIFICATION_OFFICE"]),
    "ru": (RU.unit, ["RESPONSIBLE_UNIT"]),
    "ru-other": (OTHER_RU.unit, ["RESPONSIBLE_UNIT"]),
    "lead": (LEAD.unit, ["LEAD_SUPERVISOR"]),
    "lead2": (LEAD2.unit, ["LEAD_SUPERVISOR"]),
    "discipline": ("纪委监委", ["DISCIPLINE_COMMISSION"]),
    "duchashi": ("市委督查室", ["SUPERVISION_OFFICE"]),
    "auditor": ("审计组", ["AUDITOR"]),
    "citizen": ("公众", ["PUBLIC"]),
    "citizen2": ("公众", ["PUBLIC"]),
    "lockme": ("整改办", ["RECTIFICATION_OFFICE"]),
}


@dataclass
class Console:
    url: str
    env: WorkflowEnvironment
    pool: asyncpg.Pool
    database_url: str
    task_queue: str
    tokens: dict[str, str] = field(default_factory=dict)
    log: Path | None = None
    config_home: Path = ARTIFACTS / "casectl-home"

    def case_record(self, case_no: str | None = None, due_days: int = 120) -> dict:
        """An engine-format filing record for a complete feedback-problem case."""
        due = local_date(datetime.now(UTC)) + timedelta(days=due_days)
        return {
            "case_no": case_no or f"W-{uuid.uuid4().hex[:8]}",
            "kind": "FEEDBACK_PROBLEM",
            "title": "湘江源头尾矿库污染治理不到位",
            "problem": "尾矿库渗滤液直排",
            "target": "完成尾矿库污染治理设施建设改造",
            "measures": [{"seq": 1, "text": "建设渗滤液收集处理设施"}, {"seq": 2, "text": "开展生态修复"}],
            "responsible_units": [RU.unit],
            "lead_supervising_units": [LEAD.unit, LEAD2.unit],
            "deadline": {"kind": "DATE", "due_date": due.isoformat(), "raw_zh": f"{due:%Y年%m月%d日}"},
            "inspection_round": "第二轮中央生态环境保护督察",
        }

    async def cli(self, *args: str, user: str | None = "office", stdin: str | None = None,
                  extra_env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        """Run casectl in a thread: the test's event loop keeps running the worker meanwhile."""
        import asyncio

        env = {k: v for k, v in os.environ.items() if not k.startswith("CASECTL_")}
        env.update(CASECTL_URL=self.url, DATABASE_URL=self.database_url, XDG_CONFIG_HOME=str(self.config_home))
        if user:
            env["CASECTL_TOKEN"] = self.tokens[user]
        env.update(extra_env or {})
        return await asyncio.to_thread(
            subprocess.run, [sys.executable, "-m", "admin.cli", *args], cwd=ROOT, env=env, input=stdin,
            capture_output=True, text=True, timeout=120)

    def api(self, user: str) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.url, headers={"Authorization": f"Bearer {self.tokens[user]}"},
                                 timeout=60)


@pytest_asyncio.fixture(scope="session")
async def console(pool: asyncpg.Pool, database_url: str, tmp_path_factory: pytest.TempPathFactory
                  ) -> AsyncIterator[Console]:
    env = await start_dev_env()
    task_queue = f"tq-console-{uuid.uuid4().hex[:8]}"
    port = find_free_port()
    log = tmp_path_factory.mktemp("console") / "console.log"
    proc = None
    try:
        async with case_worker(env.client, pool, task_queue):
            for name, (unit, roles) in USERS.items():
                await create_user(pool, name, PASSWORD, unit, roles, if_missing=True)
            c = Console(url=f"http://127.0.0.1:{port}", env=env, pool=pool, database_url=database_url,
                        task_queue=task_queue, log=log, config_home=log.parent / "config")
            c.tokens = {name: await issue_api_token(pool, name, "tests") for name in USERS}
            penv = dict(os.environ)
            penv.update(
                DATABASE_URL=database_url,
                TEMPORAL_ADDRESS=env.client.service_client.config.target_host,
                TEMPORAL_TASK_QUEUE=task_queue,
                CONSOLE_HOST="127.0.0.1",
                CONSOLE_PORT=str(port),
                CONSOLE_LOCKOUT_FAILURES="3",
                CONSOLE_LOCKOUT_MINUTES="15",
                # Hostile-input limits, small so that tests reach them quickly; every test logs in
                # from 127.0.0.1, so the per-address throttle is tested in-process instead.
                CONSOLE_THROTTLE_BASE_MS="300",
                CONSOLE_THROTTLE_ADDRESS_FAILURES="100000",
                CONSOLE_UPLOAD_MAX_BYTES=str(2 * 1024 * 1024),
                CONSOLE_IMPORT_MAX_UNZIPPED_BYTES=str(8 * 1024 * 1024),
                CONSOLE_IMPORT_MAX_ROWS="100",
                LOG_LEVEL="WARNING",
            )
            fh = log.open("wb")
            proc = subprocess.Popen([sys.executable, "-m", "admin.web"], cwd=ROOT, env=penv, stdout=fh,
                                    stderr=subprocess.STDOUT)
            deadline = time.monotonic() + 60
            async with httpx.AsyncClient() as http:
                while True:
                    try:
                        if (await http.get(c.url + "/login")).status_code == 200:
                            break
                    except httpx.HTTPError:
                        pass
                    if proc.poll() is not None or time.monotonic() > deadline:
                        raise AssertionError(f"console did not start:\n{log.read_text(errors='replace')[-3000:]}")
                    await _sleep(0.2)
            yield c
    finally:
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
        await env.shutdown()


async def _sleep(s: float) -> None:
    import asyncio

    await asyncio.sleep(s)


async def file_via_api(c: Console, record: dict) -> str:
    async with c.api("office") as http:
        r = await http.post("/api/v1/cases", json=record)
        assert r.status_code == 201, r.text
    return record["case_no"]


async def act_via_api(c: Console, user: str, case_no: str, action: str, **payload) -> dict:
    async with c.api(user) as http:
        r = await http.post(f"/api/v1/cases/{case_no}/actions/{action}", json=payload)
        assert r.status_code == 200, f"{action} by {user}: {r.status_code} {r.text}"
        return r.json()


async def wait_projection(c: Console, case_no: str, stage: str, timeout: float = 15) -> None:
    """The projection is written by the activity after the update returns; wait for it."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        got = await c.pool.fetchval("SELECT stage FROM case_projection WHERE case_no = $1", case_no)
        if got == stage:
            return
        await _sleep(0.1)
    raise AssertionError(f"projection of {case_no} did not reach {stage} (is {got})")
