"""Ledger writes: rows/s through the engine's activity vs a raw asyncpg COPY, same table, same run.

The activity figure calls `CaseActivities.record_case_events` directly (no Temporal round trip)
with what a real filing writes (one FILED row and the projection, in one transaction),
`concurrency` calls at a time on a pool the size of the worker's (DB_POOL_MAX). The COPY figure writes the same ledger rows (other case numbers)
with `copy_records_to_table`: the most PostgreSQL can take, no idempotency, no projection, no outbox.
The COPY rows carry the same hash chain (audit/chain.py) as the activity's, computed before the
clock starts: the table refuses unchained rows, and hashing is not what is compared here.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any

import asyncpg

from activities.case_activities import CaseActivities
from audit.chain import GENESIS, ChainRow, row_hash
from bench.common import OFFICE, bounded, filing, new_prefix
from config import Settings
from domain import decide as d
from domain.policy import Policy
from workflows.contracts import RecordInput

_COLUMNS = ["case_no", "seq", "event", "actor_user", "actor_role", "actor_unit", "at", "from_stage", "to_stage",
            "reason", "request_id", "data", "workflow_run_id", "prev_hash", "row_hash"]


def _inputs(prefix: str, n: int) -> list[RecordInput]:
    policy, now = Policy(), datetime.now(UTC)
    out = []
    for i in range(n):
        dec = d.new_case(filing(f"{prefix}-{i:06d}"), policy, now, OFFICE)
        out.append(RecordInput(entries=dec.entries, notices=dec.notices,
                               projection=d.projection(dec.state, with_filing=True), workflow_run_id="bench"))
    return out


async def measure(database_url: str, rows: int, concurrency: int | None = None) -> dict[str, Any]:
    pool_max = Settings().db_pool_max
    concurrency = concurrency or pool_max
    pool = await asyncpg.create_pool(database_url, min_size=pool_max, max_size=pool_max)
    try:
        acts = CaseActivities(pool)
        inputs = _inputs(new_prefix("LA"), rows)
        n_rows = sum(len(x.entries) for x in inputs)
        t0 = time.monotonic()
        await bounded(inputs, concurrency, acts.record_case_events)
        t_act = time.monotonic() - t0

        cprefix = new_prefix("LC")
        records = []
        last: dict[str, str] = {}  # case_no -> row_hash of its latest row
        for x in _inputs(cprefix, rows):
            for e in x.entries:
                prev = last.get(e.case_no, GENESIS)
                own = last[e.case_no] = row_hash(ChainRow.from_entry(e, "bench"), prev)
                records.append((e.case_no, e.seq, e.event, e.actor.user_id, e.actor.role.value, e.actor.unit, e.at,
                                e.from_stage.value if e.from_stage else None,
                                e.to_stage.value if e.to_stage else None, e.reason, e.request_id,
                                json.dumps(e.data, ensure_ascii=False, default=str), "bench", prev, own))
        async with pool.acquire() as conn:
            t0 = time.monotonic()
            await conn.copy_records_to_table("ledger", records=records, columns=_COLUMNS)
            t_copy = time.monotonic() - t0
    finally:
        await pool.close()
    act_rate, copy_rate = n_rows / t_act, len(records) / t_copy
    return {
        "rows": n_rows,
        "calls": len(inputs),
        "concurrency": concurrency,
        "activity_rows_per_s": act_rate,
        "copy_rows_per_s": copy_rate,
        "activity_vs_copy": act_rate / copy_rate,
    }
