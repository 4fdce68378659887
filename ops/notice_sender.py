"""The notice sender as a process of its own: `python -m ops.notice_sender`.

For deployments that run the workers with `NOTICE_SENDER=false` and deliver notices from one
or more dedicated processes (several are safe: rows are claimed FOR UPDATE SKIP LOCKED). Same
settings as the worker (DATABASE_URL, SMTP_*, NOTICE_POLL_SECONDS); `HEALTH_BIND` serves
`/healthz` and `/readyz` (PostgreSQL reachable); `METRICS_BIND` serves the outbox gauges.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys

import asyncpg
import structlog

from config import Settings
from ops.context import configure_logging
from ops.health import HealthServer, Probes, postgres_check
from ops.metrics import DbMetrics, runtime_for


async def run(settings: Settings, stop: asyncio.Event) -> None:
    from worker import notice_sender

    log = structlog.get_logger("notice_sender")
    pool = await asyncpg.create_pool(settings.database_url, min_size=1, max_size=min(settings.db_pool_max, 4))
    try:
        probes = Probes()
        sender_task = asyncio.create_task(notice_sender(pool, settings).run(stop))

        async def sending() -> bool:
            return not sender_task.done()

        probes.add_live("sender", sending)
        probes.add_ready("postgres", postgres_check(pool))
        tasks = [sender_task]
        if settings.metrics_bind:
            meter = runtime_for(settings.metrics_bind).metric_meter
            tasks.append(asyncio.create_task(DbMetrics(pool, meter, settings.metrics_db_poll_seconds).run(stop)))
        server = HealthServer(probes, settings.health_bind) if settings.health_bind else None
        if server is not None:
            await server.start()
        log.info("notice_sender_started", email=bool(settings.smtp_host))
        try:
            await asyncio.gather(*tasks)
        finally:
            if server is not None:
                await server.stop()
        log.info("notice_sender_stopped")
    finally:
        await pool.close()


async def _main() -> int:
    settings = Settings.from_env()
    configure_logging(settings.log_level, settings.log_json)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await run(settings, stop)
    return 0


if __name__ == "__main__":
    status = asyncio.run(_main())
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)
