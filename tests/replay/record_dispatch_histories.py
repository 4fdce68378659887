"""Records histories of the monthly dispatch workflows from the real dev server.

    .venv/bin/python -m tests.replay.record_dispatch_histories

Writes tests/replay/histories/dispatch/dispatch_run.json (a Dispatch that wrote a report and two
notices), dispatch_tick.json (the DispatchTick a Schedule trigger started, which ran it) and
dispatch_tick_already.json (a second trigger in the same month: the child start refused by id).
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
import uuid
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
from temporalio.client import WorkflowExecutionStatus

from activities.migrate import migrate
from domain.dispatch import dispatch_workflow_id, period_of, schedule_id
from domain.enums import Action
from embedded import EmbeddedPostgres, find_free_port
from tests.harness import OFFICE, OTHER_RU, RU, CaseDriver, case_worker, make_filing, start_dev_env
from workflows.dispatch_schedule import delete_dispatch_schedule, ensure_dispatch_schedule

# A subdirectory: the case-oriented suites (test_unpatched_change, the audit tool's replay of
# histories/*.json) read only Case histories; tests/replay/test_dispatch_histories.py replays these.
OUT = Path(__file__).resolve().parent / "histories" / "dispatch"


async def _completed_ticks(client, pid: str, n: int) -> list:  # type: ignore[no-untyped-def]
    for _ in range(200):
        runs = [w async for w in client.list_workflows(f'WorkflowId STARTS_WITH "{schedule_id(pid)}-tick"')]
        done = sorted((w for w in runs if w.status == WorkflowExecutionStatus.COMPLETED), key=lambda w: w.start_time)
        if len(done) >= n:
            return done
        await asyncio.sleep(0.3)
    raise RuntimeError(f"{n} ticks of {pid} never completed")


async def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        pg = EmbeddedPostgres(Path(tmp) / "pg", find_free_port(), fast=True)
        url = await pg.start()
        env = await start_dev_env()
        try:
            conn = await asyncpg.connect(url)
            await migrate(conn)
            await conn.close()
            pool = await asyncpg.create_pool(url)
            tq = "record-dispatch"
            pid = f"REPLAY-{uuid.uuid4().hex[:6]}"
            client = env.client
            async with case_worker(client, pool, tq):
                for units in ([RU.unit], [OTHER_RU.unit]):
                    due = period_of(datetime.now(UTC)).last_day
                    f = make_filing(f"RD-{uuid.uuid4().hex[:6]}", due=due).model_copy(
                        update={"programme_id": pid, "responsible_units": units})
                    c = CaseDriver(client, pool, tq, f)
                    await c.file()
                    await c.do(Action.TRANSFER, OFFICE)
                await ensure_dispatch_schedule(client, pid, 1, tq)
                handle = client.get_schedule_handle(schedule_id(pid))
                await handle.trigger()
                first = (await _completed_ticks(client, pid, 1))[0]
                await handle.trigger()
                second = (await _completed_ticks(client, pid, 2))[1]
                period = period_of(datetime.now(UTC))
                runs = {
                    "dispatch_tick": client.get_workflow_handle(first.id, run_id=first.run_id),
                    "dispatch_tick_already": client.get_workflow_handle(second.id, run_id=second.run_id),
                    "dispatch_run": client.get_workflow_handle(dispatch_workflow_id(pid, period)),
                }
                for name, h in runs.items():
                    hist = await h.fetch_history()
                    (OUT / f"{name}.json").write_text(hist.to_json())
                    print(f"{name}: {len(hist.events)} events")
                await delete_dispatch_schedule(client, pid)
            await pool.close()
        finally:
            await env.shutdown()
            await pg.stop()
    return 0


if __name__ == "__main__":
    status = asyncio.run(main())
    sys.stdout.flush()
    os._exit(status)
