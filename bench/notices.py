"""Notice delivery before/after batching, in one run: outbox rows/s and PostgreSQL CPU per notice.

    python -m bench.notices [--cases 500] [--batches 1,100]

For each batch size: a fresh database in one embedded PostgreSQL, `cases` filed-and-transferred
cases written through the record activity (3 notices each, in-app inbox only: no SMTP), then
`NoticeSender.drain()` with that batch size, timed; CPU of the PostgreSQL process tree and of
this process across the drain. Batch size 1 is the sender as it was (one transaction per notice).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
from temporalio.testing import ActivityEnvironment

from activities.case_activities import CaseActivities
from activities.migrate import migrate
from activities.notices import NoticeSender, SmtpConfig
from bench.common import OFFICE, filing, new_prefix
from bench.infra import loadavg, tree_cpu_seconds
from domain import decide as d
from domain.enums import Action
from domain.model import ActionRequest
from domain.policy import Policy
from embedded import EmbeddedPostgres, find_free_port
from workflows.contracts import RecordInput


def _inputs(n: int) -> list[RecordInput]:
    now = datetime.now(UTC)
    prefix = new_prefix("N")
    out = []
    for i in range(n):
        filed = d.new_case(filing(f"{prefix}-{i:06d}"), Policy(), now, OFFICE)
        moved = d.decide(filed.state, ActionRequest(action=Action.TRANSFER, actor=OFFICE, request_id=f"n{i}"), now)
        out.append(RecordInput(entries=filed.entries + moved.entries, notices=moved.notices,
                               projection=d.projection(moved.state), workflow_run_id="bench"))
    return out


async def measure(pg: EmbeddedPostgres, admin_url: str, cases: int, batch: int) -> dict[str, Any]:
    db = f"notices_b{batch}"
    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(f"DROP DATABASE IF EXISTS {db}")
        await conn.execute(f"CREATE DATABASE {db}")
    finally:
        await conn.close()
    url = admin_url.rsplit("/", 1)[0] + "/" + db
    conn = await asyncpg.connect(url)
    try:
        await migrate(conn)
    finally:
        await conn.close()
    pool = await asyncpg.create_pool(url, min_size=1, max_size=10)
    try:
        acts = CaseActivities(pool)
        env = ActivityEnvironment()
        for inp in _inputs(cases):
            await env.run(acts.record_case_events, inp)
        notices = await pool.fetchval("SELECT count(*) FROM outbox WHERE status = 'PENDING'")
        sender = NoticeSender(pool, SmtpConfig(), batch_size=batch)
        postmaster = int((pg.data_dir / "postmaster.pid").read_text().splitlines()[0])
        cpu0, me0, t0 = tree_cpu_seconds(postmaster), os.times(), time.monotonic()
        handled = await sender.drain(limit=notices + 10)
        secs = time.monotonic() - t0
        cpu1, me1 = tree_cpu_seconds(postmaster), os.times()
        left = await pool.fetchval("SELECT count(*) FROM outbox WHERE status = 'PENDING'")
        return {"batch": batch, "notices": notices, "handled": handled, "left": left, "seconds": secs,
                "per_s": handled / secs if secs else None,
                "pg_cpu_ms_per_notice": 1000 * (cpu1 - cpu0) / max(handled, 1),
                "sender_cpu_ms_per_notice": 1000 * ((me1.user + me1.system) - (me0.user + me0.system)) / max(handled, 1),
                "loadavg": loadavg()}
    finally:
        await pool.close()


async def run(cases: int, batches: list[int]) -> list[dict[str, Any]]:
    tmp = tempfile.TemporaryDirectory(prefix="notice-bench-")
    os.chmod(tmp.name, 0o755)
    pg = EmbeddedPostgres(Path(tmp.name) / "pg", find_free_port())
    url = await pg.start()
    try:
        return [await measure(pg, url, cases, b) for b in batches]
    finally:
        await pg.stop()
        tmp.cleanup()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cases", type=int, default=500)
    ap.add_argument("--batches", default="1,100")
    args = ap.parse_args()
    from worker import configure_logging

    configure_logging("WARNING")
    rows = asyncio.run(run(args.cases, [int(b) for b in args.batches.split(",")]))
    print("batch | notices | delivered/s | PostgreSQL CPU ms/notice | sender CPU ms/notice | load")
    for r in rows:
        print(f"{r['batch']:5d} | {r['handled']:7d} | {r['per_s']:11.0f} | {r['pg_cpu_ms_per_notice']:24.2f} | "
              f"{r['sender_cpu_ms_per_notice']:20.2f} | {r['loadavg']}" + (f"  ({r['left']} LEFT)" if r["left"] else ""))
    return 0


if __name__ == "__main__":
    status = main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)
