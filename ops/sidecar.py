"""What runs beside the worker for operations: the probe server and the database metrics.

`worker_sidecars` is entered by `worker.run_worker` before the workers start and left after
they stop. It adds the checks (`/healthz`: no worker has shut down on its own; `/readyz`:
every worker polls, Temporal and PostgreSQL answer) and, when metrics are on, refreshes the
database gauges. Further named checks can be added to the yielded `Probes`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from typing import Any

import asyncpg

from ops.health import HealthServer, Probes, postgres_check, temporal_check
from ops.metrics import DbMetrics, runtime_for


@contextlib.asynccontextmanager
async def worker_sidecars(
    settings: Any, client: Any, pool: asyncpg.Pool, workers: Sequence[Any], stop: asyncio.Event
) -> AsyncIterator[Probes]:
    probes = Probes()

    async def workers_alive() -> bool:
        # A worker that shut down while nobody asked it to has stopped polling for good.
        return stop.is_set() or not any(w.is_shutdown for w in workers)

    async def workers_polling() -> bool:
        return all(w.is_running for w in workers)

    probes.add_live("workers_alive", workers_alive)
    probes.add_ready("workers_polling", workers_polling)
    probes.add_ready("temporal", temporal_check(client))
    probes.add_ready("postgres", postgres_check(pool))
    metrics_task = None
    if settings.metrics_bind:
        db = DbMetrics(pool, runtime_for(settings.metrics_bind).metric_meter, settings.metrics_db_poll_seconds)
        metrics_task = asyncio.create_task(db.run(stop))
    server = HealthServer(probes, settings.health_bind) if settings.health_bind else None
    if server is not None:
        await server.start()
    try:
        yield probes
    finally:
        if server is not None:
            await server.stop()
        if metrics_task is not None:
            metrics_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await metrics_task
