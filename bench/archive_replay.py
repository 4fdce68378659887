"""Audit replay of an archive, end to end: `python -m bench.archive_replay [--copies 50] [--jobs 1,2]`.

Fills the `history_archive` of a fresh embedded PostgreSQL with `copies` copies of the recorded
histories (tests/replay/histories, each copy under a new run id; continued-as-new runs skipped so
every copy stands alone), then runs `python -m audit.cli replay --all --source archive --jobs N`
for each N and prints its summary line: rows read, sha256 re-checked, JSON parsed and replayed,
process start-up included. This is what an auditor's `replay --all` costs.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

import asyncpg

from activities.migrate import migrate
from audit.history import parse_history, sha256_text
from embedded import find_free_port
from embedded.postgres import EmbeddedPostgres

ROOT = Path(__file__).resolve().parents[1]
HISTORIES = ROOT / "tests" / "replay" / "histories"


async def fill(url: str, copies: int) -> int:
    conn = await asyncpg.connect(url)
    try:
        await migrate(conn)
        base = [(p.read_text(encoding="utf-8"), parse_history(p.read_text(encoding="utf-8"), "file"))
                for p in sorted(HISTORIES.glob("*.json"))]
        n = 0
        for _ in range(copies):
            for text, run in base:
                if run.continued_from:
                    continue
                t = text.replace(run.run_id, str(uuid.uuid4()))
                r = parse_history(t, "file")
                await conn.execute(
                    """INSERT INTO history_archive (run_id, workflow_id, case_no, status, start_time, close_time,
                           continued_from, event_count, history_json, sha256)
                       VALUES ($1, $2, $3, $4, $5, $5, $6, $7, $8, $9)""",
                    r.run_id, r.workflow_id, r.case_no, r.status, r.start_time, r.continued_from,
                    len(r.history.events), t, sha256_text(t))
                n += 1
        return n
    finally:
        await conn.close()


async def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--copies", type=int, default=50)
    ap.add_argument("--jobs", default="1,2", help="comma-separated process counts to run")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-archive-") as d:
        pg = EmbeddedPostgres(Path(d) / "pg", find_free_port())
        url = await pg.start()
        try:
            n = await fill(url, args.copies)
            print(f"archive: {n} runs", flush=True)
            for jobs in args.jobs.split(","):
                out = subprocess.run(
                    [sys.executable, "-m", "audit.cli", "replay", "--all", "--source", "archive", "--jobs", jobs],
                    cwd=ROOT, env=dict(os.environ, DATABASE_URL=url), capture_output=True, text=True)
                last = out.stdout.strip().splitlines()[-1] if out.stdout.strip() else out.stderr[-500:]
                print(f"--jobs {jobs}: {last} (exit {out.returncode}); load {os.getloadavg()[0]:.2f}", flush=True)
        finally:
            await pg.stop()
    return 0


if __name__ == "__main__":
    status = asyncio.run(main())
    sys.stdout.flush()
    os._exit(status)  # sdk-python#300
