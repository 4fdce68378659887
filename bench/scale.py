"""Scale: file N cases and transfer each (交办), so N cases wait on a deadline timer.

Figures: cases filed per second (client side, `start_workflow` accepted) and settled per
second (until every FILED row is in the ledger), transfers per second (an Update that computes
the 签收 deadline and arms its timer), worker and dev-server RSS, and PostgreSQL / SQLite bytes
per case (growth across the ramp divided by the cases added).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from bench.common import OFFICE, act, bounded, filing, new_prefix
from bench.infra import BenchEnv, loadavg
from domain.enums import Action
from workflows import client as ops
from workflows.contracts import TASK_QUEUE


async def _wait_rows(env: BenchEnv, prefix: str, event: str, want: int, timeout: float) -> float:
    assert env.pool is not None
    t_end = time.monotonic() + timeout
    while time.monotonic() < t_end:
        n = await env.pool.fetchval(
            "SELECT count(*) FROM ledger WHERE case_no LIKE $1 AND event = $2", prefix + "%", event
        )
        if n >= want:
            return time.monotonic()
        await asyncio.sleep(0.2)
    raise TimeoutError(f"only some {event} rows of {prefix} arrived within {timeout:.0f}s")


class OpenCases:
    """The cases the scale ramp opened; handed on to the latency and escalation scenarios."""

    def __init__(self) -> None:
        self.prefix = new_prefix("S")
        self.transferred: list[str] = []  # still in TRANSFERRED (a 签收 deadline armed)
        self.count = 0

    def take(self, n: int) -> list[str]:
        taken, self.transferred = self.transferred[:n], self.transferred[n:]
        return taken


async def grow(env: BenchEnv, oc: OpenCases, target: int, concurrency: int = 50, profiler=None) -> dict[str, Any]:
    """File and transfer cases until `target` are open; figures of this step.

    `profiler(phase)`, if given, returns a started profiler (or None) for the filing and the
    transfer phase; its summaries go into the result under `profile`.
    """
    assert env.client is not None
    c = env.client
    new = [f"{oc.prefix}-{i:06d}" for i in range(oc.count, target)]
    if not new:
        return {}
    pg0, sizes0 = await env.pg_bytes(), env.sizes()
    load0 = loadavg()
    profiles: dict[str, Any] = {}
    prof = profiler("filing") if profiler else None
    t0 = time.monotonic()

    async def file_one(n: str) -> bool:
        return (await ops.file_case(c, filing(n), OFFICE, TASK_QUEUE)).filed

    filed = await bounded(new, concurrency, file_one)
    t_filed = time.monotonic()
    t_settled = await _wait_rows(env, oc.prefix, "FILED", target, timeout=600 + len(new) / 5)
    ok = [n for n, f in zip(new, filed, strict=True) if f]
    errors: list[str] = []

    async def transfer_one(n: str) -> str | None:
        try:
            await act(c, n, Action.TRANSFER, OFFICE)
            return n
        except Exception as e:
            errors.append(f"{n}: {e}")
            return None

    if prof is not None:
        profiles["filing"] = await prof.finish()
    prof = profiler("transfer") if profiler else None
    t1 = time.monotonic()
    done = [n for n in await bounded(ok, concurrency, transfer_one) if n]
    t_transferred = time.monotonic()
    if prof is not None:
        profiles["transfer"] = await prof.finish()
    oc.transferred += done
    oc.count = target
    pg1, sizes1 = await env.pg_bytes(), env.sizes()
    added = len(ok)
    return {
        "open_cases": target,
        "added": added,
        "filed_per_s": added / (t_filed - t0),
        "filing_settled_per_s": added / (t_settled - t0),
        "transfers_per_s": len(done) / (t_transferred - t1),
        "transfer_errors": errors[:5],
        "worker_rss": sizes1["worker_rss"],
        "devserver_rss": sizes1["devserver_rss"],
        "pg_bytes_per_case": (pg1["_database"] - pg0["_database"]) / added if added else None,
        "pg_table_bytes_per_case": {
            k: (pg1.get(k, 0) - pg0.get(k, 0)) / added for k in ("ledger", "case_projection", "outbox", "inbox")
        },
        "sqlite_bytes_per_case": (sizes1["devserver_sqlite_bytes"] - sizes0["devserver_sqlite_bytes"]) / added,
        "loadavg_before": load0,
        "loadavg_after": loadavg(),
        "seconds": time.monotonic() - t0,
        "profile": profiles or None,
    }
