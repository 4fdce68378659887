"""The public disclosure site for the tests: `python -m admin.public` as a subprocess beside the
console fixture (same PostgreSQL, Temporal dev server and worker), and a programme whose cases
carry internal data (sentinel strings) that no public page may show.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

import httpx
import pytest_asyncio

from admin.auth import issue_api_token
from admin.users import create_user
from domain.calendar import local_date
from embedded import find_free_port
from tests.admin.conftest import PASSWORD, Console, act_via_api, file_via_api, wait_projection
from tests.harness import RU

ROOT = __import__("pathlib").Path(__file__).resolve().parents[2]
PER_ADDRESS, PER_CONTACT, MAX_CHARS = 3, 2, 500
REDELIVER_SECONDS = 2  # the site sends stored, undelivered objections again this often


@dataclass
class PublicSite:
    url: str
    log: object


@pytest_asyncio.fixture(scope="module")
async def public_site(console: Console, tmp_path_factory) -> AsyncIterator[PublicSite]:  # type: ignore[no-untyped-def]
    port = find_free_port()
    log = tmp_path_factory.mktemp("public") / "public.log"
    env = dict(os.environ)
    env.update(DATABASE_URL=console.database_url,
               TEMPORAL_ADDRESS=console.env.client.service_client.config.target_host,
               TEMPORAL_TASK_QUEUE=console.task_queue, PUBLIC_HOST="127.0.0.1", PUBLIC_PORT=str(port),
               # Each test speaks from its own address (X-Forwarded-For), so the limits are per test.
               PUBLIC_TRUST_FORWARDED="true", PUBLIC_RATE_PER_ADDRESS=str(PER_ADDRESS),
               PUBLIC_RATE_PER_CONTACT=str(PER_CONTACT), PUBLIC_OBJECTION_MAX_CHARS=str(MAX_CHARS),
               PUBLIC_REDELIVER_SECONDS=str(REDELIVER_SECONDS), LOG_LEVEL="WARNING")
    fh = log.open("wb")
    proc = subprocess.Popen([sys.executable, "-m", "admin.public"], cwd=ROOT, env=env, stdout=fh,
                            stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        async with httpx.AsyncClient() as http:
            while True:
                try:
                    if (await http.get(url + "/healthz")).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"public site did not start:\n{log.read_text(errors='replace')[-3000:]}")
                await asyncio.sleep(0.2)
        yield PublicSite(url, log)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        fh.close()


@dataclass
class Programme:
    pid: str
    posting: str  # an item in public posting (objections open)
    rectifying: str  # an item still being rectified (no objections)
    petition: str  # a petition with the petitioner's details
    sentinels: list[str] = field(default_factory=list)  # strings no public page may contain
    handler: str = ""  # the API user of the responsible unit with a sentinel name


async def make_programme(c: Console, hostile_title: str = "") -> Programme:
    """A programme with an item in 公示 that carries internal data of every kind."""
    tag = uuid.uuid4().hex[:6]
    pid = f"PUB-{tag}"
    handler = f"zhang-handler-{tag}"
    await create_user(c.pool, handler, PASSWORD, RU.unit, ["RESPONSIBLE_UNIT"], if_missing=True)
    c.tokens[handler] = await issue_api_token(c.pool, handler, "tests")
    s = {k: f"{k}-SENTINEL-{tag}" for k in ("transfer", "prelim", "referral", "report", "rung", "leader",
                                             "problem", "measure", "contact", "complaint", "progress")}
    async with c.api("office") as http:
        r = await http.post("/api/v1/programmes", json={
            "programme_id": pid, "name": f"xx市公开测试方案 {tag}", "inspection_round": "第二轮中央生态环境保护督察",
            "locality": "xx市", "counties": ["蓝山县"], "feedback_date": local_date(datetime.now(UTC)).isoformat(),
            "plan_text": f"PLAN-TEXT-{tag}", "submit_plan": f"PLAN-REF-{tag}"})
        assert r.status_code == 201, r.text
    for _ in range(100):
        if await c.pool.fetchval("SELECT 1 FROM programme_projection WHERE programme_id = $1", pid):
            break
        await asyncio.sleep(0.1)
    base = {"programme_id": pid, "lead_leader": s["leader"], "problem": s["problem"],
            "measures": [{"seq": 1, "text": s["measure"]}]}
    posting = await file_via_api(c, c.case_record(f"PUB{tag}-A") | base | {
        "title": hostile_title or f"湘江支流黑臭水体整治 {tag}"})
    rectifying = await file_via_api(c, c.case_record(f"PUB{tag}-B") | base | {"title": f"矿山生态修复 {tag}"})
    petition = await file_via_api(c, c.case_record(f"PUB{tag}-C") | base | {
        "kind": "PETITION", "title": f"群众举报某厂偷排 {tag}", "complaint": s["complaint"],
        "complainant_contact": s["contact"]})
    await act_via_api(c, "office", posting, "TRANSFER", reason=s["transfer"])
    await act_via_api(c, handler, posting, "ACKNOWLEDGE")
    await act_via_api(c, handler, posting, "REPORT_PROGRESS", reason=s["progress"])
    await act_via_api(c, handler, posting, "SUBMIT_COMPLETION", reason="整改完成")
    await act_via_api(c, "lead", posting, "PRELIM_PASS", reason=s["prelim"])
    await act_via_api(c, "office", posting, "REFER_ACCOUNTABILITY", referral_path="PERFORMANCE",
                      reason=s["referral"], report_ref=s["report"])
    await act_via_api(c, "office", rectifying, "TRANSFER")
    await act_via_api(c, handler, rectifying, "ACKNOWLEDGE")
    await act_via_api(c, "office", rectifying, "APPLY_RUNG", rung="WARNING", reason=s["rung"])
    await wait_projection(c, posting, "PUBLIC_POSTING")
    await wait_projection(c, rectifying, "RECTIFYING")
    sentinels = [*s.values(), handler, f"PLAN-TEXT-{tag}", f"PLAN-REF-{tag}", RU.unit]
    return Programme(pid, posting, rectifying, petition, sentinels, handler)


async def form_token(http: httpx.AsyncClient, site: PublicSite, pid: str, case_no: str) -> str:
    r = await http.get(f"{site.url}/p/{pid}/items/{case_no}")
    assert r.status_code == 200, r.text
    m = re.search(r'name="token" value="([^"]+)"', r.text)
    assert m, "no objection form on the item page"
    return m.group(1)


async def lodge(http: httpx.AsyncClient, site: PublicSite, pid: str, case_no: str, text: str, contact: str,
                address: str, token: str | None = None) -> httpx.Response:
    tok = token if token is not None else await form_token(http, site, pid, case_no)
    return await http.post(f"{site.url}/p/{pid}/items/{case_no}/objections",
                           data={"token": tok, "text": text, "contact": contact},
                           headers={"X-Forwarded-For": address})
