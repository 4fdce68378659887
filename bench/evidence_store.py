"""Evidence store: upload and download speed and Python memory for one large file.

    python -m bench.evidence_store [--mib 20] [--runs 3]

Starts an embedded PostgreSQL (durable settings unless --fast), then for each run streams a
fresh random JPEG-like file of --mib MiB through `spool_stream` (64 KiB pieces, as from the
network), `store` (1 MiB chunks in one transaction) and `iter_bytes` (download), and prints
MiB/s for each step and the peak of Python allocations (tracemalloc) during each: the upload
path must not hold the file in several copies. Figures only; nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import asyncpg

from activities.migrate import migrate
from admin import evidence_store as store
from domain.model import Actor
from embedded import EmbeddedPostgres, find_free_port


async def _pieces(data: bytes, size: int = 64 * 1024):
    for i in range(0, len(data), size):
        yield data[i:i + size]


async def main(mib: int, runs: int, fast: bool) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="bench-evidence-"))
    pg = EmbeddedPostgres(tmp / "pg", find_free_port(), fast=fast)
    url = await pg.start()
    try:
        conn = await asyncpg.connect(url)
        await migrate(conn)
        await conn.close()
        pool = await asyncpg.create_pool(url, min_size=1, max_size=4)
        actor = Actor(user_id="bench", role="RECTIFICATION_OFFICE", unit="整改办")
        size = mib * 1024 * 1024
        print(f"file {mib} MiB, {runs} run(s), PostgreSQL {'fast (no fsync)' if fast else 'durable'}")
        print(f"{'run':>3} {'spool MiB/s':>12} {'store MiB/s':>12} {'download MiB/s':>15} "
              f"{'peak spool':>11} {'peak store':>11} {'peak download':>14}")
        for run in range(1, runs + 1):
            data = b"\xff\xd8\xff\xe0" + os.urandom(size - 4)
            tracemalloc.start()
            t0 = time.perf_counter()
            up = await store.spool_stream(_pieces(data), f"bench-{run}.jpg", size)
            t1 = time.perf_counter()
            _, peak_spool = tracemalloc.get_traced_memory()
            tracemalloc.reset_peak()
            base = tracemalloc.get_traced_memory()[0]
            await store.store(pool, f"BENCH-{run}", up, actor)
            t2 = time.perf_counter()
            peak_store = tracemalloc.get_traced_memory()[1] - base
            up.close()
            tracemalloc.reset_peak()
            base = tracemalloc.get_traced_memory()[0]
            n = 0
            async for chunk in store.iter_bytes(pool, up.sha256):
                n += len(chunk)
            t3 = time.perf_counter()
            peak_dl = tracemalloc.get_traced_memory()[1] - base
            tracemalloc.stop()
            assert n == size
            del data
            print(f"{run:>3} {mib / (t1 - t0):>12.0f} {mib / (t2 - t1):>12.0f} {mib / (t3 - t2):>15.0f} "
                  f"{peak_spool / 2**20:>9.1f}Mi {peak_store / 2**20:>9.1f}Mi {peak_dl / 2**20:>12.1f}Mi")
        await pool.close()
    finally:
        await pg.stop()


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mib", type=int, default=20)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--fast", action="store_true", help="PostgreSQL without fsync")
    a = ap.parse_args()
    asyncio.run(main(a.mib, a.runs, a.fast))
    sys.stdout.flush()
    os._exit(0)
