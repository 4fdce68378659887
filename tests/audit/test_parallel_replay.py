"""`audit replay --all --jobs N`: the archive replayed by several processes, each loading its runs."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import asyncpg

from activities.migrate import migrate
from audit.history import parse_history, sha256_text

ROOT = Path(__file__).resolve().parents[2]
HISTORIES = ROOT / "tests" / "replay" / "histories"


async def _archive_db(pool: asyncpg.Pool, database_url: str, tamper: bool) -> str:
    """A fresh database whose archive holds every recorded history (one altered if `tamper`)."""
    db = f"archive_{uuid.uuid4().hex[:8]}"
    await pool.execute(f'CREATE DATABASE "{db}"')
    url = database_url.rsplit("/", 1)[0] + f"/{db}"
    conn = await asyncpg.connect(url)
    try:
        await migrate(conn)
        for i, path in enumerate(sorted(HISTORIES.glob("*.json"))):
            text = path.read_text(encoding="utf-8")
            run = parse_history(text, "file", str(path))
            stored = text
            if tamper and i == 0:  # the stored text no longer matches its sha256
                raw = json.loads(text)
                raw["events"][0]["eventTime"] = "2020-01-01T00:00:00Z"
                stored = json.dumps(raw)
            await conn.execute(
                """INSERT INTO history_archive (run_id, workflow_id, case_no, status, start_time, close_time,
                       continued_from, event_count, history_json, sha256)
                   VALUES ($1, $2, $3, $4, $5, $5, $6, $7, $8, $9)""",
                run.run_id, run.workflow_id, run.case_no, run.status, run.start_time, run.continued_from,
                len(run.history.events), stored, sha256_text(text))
    finally:
        await conn.close()
    return url


def _cli(url: str, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT), DATABASE_URL=url)
    return subprocess.run([sys.executable, "-m", "audit.cli", "replay", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=240)


async def test_the_archive_replays_across_processes_in_order(pool: asyncpg.Pool, database_url: str) -> None:
    url = await _archive_db(pool, database_url, tamper=False)
    n = len(list(HISTORIES.glob("*.json")))
    one, two = await asyncio.gather(
        asyncio.to_thread(_cli, url, "--all", "--source", "archive", "--jobs", "1", "--json"),
        asyncio.to_thread(_cli, url, "--all", "--source", "archive", "--jobs", "2", "--json"),
    )
    assert one.returncode == 0 and two.returncode == 0, (one.stderr, two.stderr)
    a, b = json.loads(one.stdout), json.loads(two.stdout)
    assert a["processes"] == 1 and b["processes"] == 2
    assert b["histories"] == n and all(r["ok"] for r in b["runs"])
    # The same runs, in the same (archive) order, with the same verdicts and event counts.
    strip = [(r["run_id"], r["case_no"], r["events"], r["ok"], r["source"]) for r in a["runs"]]
    assert strip == [(r["run_id"], r["case_no"], r["events"], r["ok"], r["source"]) for r in b["runs"]]


async def test_an_altered_archived_history_fails_the_parallel_replay(pool: asyncpg.Pool, database_url: str) -> None:
    url = await _archive_db(pool, database_url, tamper=True)
    r = await asyncio.to_thread(_cli, url, "--all", "--source", "archive", "--jobs", "2")
    assert r.returncode == 1, r.stdout + r.stderr
    assert "ERROR" in r.stdout and "altered in the archive" in r.stdout
    assert "2 processes" in r.stdout
