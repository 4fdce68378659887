"""`casectl admin webhook …` as a subprocess on the database: configure a unit's webhook, see a
refused notice, re-arm it and have it posted after the receiver is fixed."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid

import asyncpg

from activities.notices import NoticeSender, SmtpConfig
from config import ROOT
from domain.notice_channels import idempotency_key
from embedded import find_free_port
from tests.integration.test_notice_webhooks import FAST, _notices
from tests.integration.webhook_receiver import Receiver

SECRET = "cli-webhook-secret-0123456789"


async def _casectl(database_url: str, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CASECTL_")}
    env["DATABASE_URL"] = database_url
    return await asyncio.to_thread(subprocess.run, [sys.executable, "-m", "admin.cli", *args], cwd=ROOT, env=env,
                                   input=stdin, capture_output=True, text=True, timeout=120)


async def test_casectl_configures_shows_and_rearms_a_refused_webhook(database_url: str, pool: asyncpg.Pool) -> None:
    fixed = False
    rx = Receiver(find_free_port(), answer=lambda n, r: (200, "ok") if fixed else (404, "no such robot")).start()
    unit = f"机器人县-{uuid.uuid4().hex[:6]}"
    try:
        p = await _casectl(database_url, "admin", "webhook", "set", unit, rx.url, "--secret-stdin", stdin="short\n")
        assert p.returncode == 2 and "secret: at least 16 characters" in p.stderr
        p = await _casectl(database_url, "admin", "webhook", "set", unit, "ftp://x/y", "--secret-stdin",
                           stdin=SECRET + "\n")
        assert p.returncode == 2 and "use http:// or https://" in p.stderr
        p = await _casectl(database_url, "admin", "webhook", "set", unit, rx.url + "?token=abc", "--secret-stdin",
                           "--timeout", "5", stdin=SECRET + "\n")
        assert p.returncode == 0, p.stderr
        p = await _casectl(database_url, "admin", "webhook", "list", "--json")
        mine = [w for w in json.loads(p.stdout) if w["unit"] == unit]
        assert mine == [mine[0] | {"url": rx.url, "enabled": True, "timeout": 5.0}]
        assert SECRET not in p.stdout and "token=abc" not in p.stdout

        (key,) = await _notices(pool, unit)
        sender = NoticeSender(pool, SmtpConfig(), max_backoff=FAST)
        await sender.drain()
        p = await _casectl(database_url, "admin", "webhook", "failed", "--unit", unit)
        assert p.returncode == 0 and key in p.stdout and "HTTP 404: no such robot" in p.stdout

        fixed = True
        p = await _casectl(database_url, "admin", "webhook", "retry", key, "--json")
        assert json.loads(p.stdout) == {"rearmed": 1}
        await sender.drain()
        await sender.aclose()
        row = await pool.fetchrow("SELECT * FROM outbox WHERE notice_key = $1", key)
        assert row["webhook_sent_at"] is not None and row["status"] == "DELIVERED" and row["webhook_attempts"] == 2
        assert rx.counts() == {idempotency_key(key): 2}
        p = await _casectl(database_url, "admin", "webhook", "failed", "--unit", unit)
        assert "(no refused webhooks)" in p.stdout
        p = await _casectl(database_url, "admin", "webhook", "remove", unit)
        assert p.returncode == 0
        p = await _casectl(database_url, "admin", "webhook", "remove", unit)
        assert p.returncode == 1 and "no webhook for unit" in p.stderr
    finally:
        rx.stop()
        await pool.execute("DELETE FROM unit_webhook WHERE unit = $1", unit)
