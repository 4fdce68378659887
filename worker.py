"""Runs the case worker: workflows, activities, and the notice sender beside them.

Usage: python worker.py   (settings from environment variables; see README)
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sys
import time
from collections.abc import Callable
from datetime import timedelta

import asyncpg
import structlog
from temporalio.client import Client
from temporalio.worker import UnsandboxedWorkflowRunner, Worker
from temporalio.worker.workflow_sandbox import (
    SandboxedWorkflowRunner,
    SandboxRestrictions,
)

from activities.case_activities import CaseActivities
from activities.notices import NoticeSender, SmtpConfig
from activities.programme_activities import ProgrammeActivities
from config import Settings, connect_client
from ops.context import EngineInterceptor, configure_logging  # noqa: F401 - configure_logging: re-exported
from ops.sidecar import worker_sidecars
from worker_health import (
    WorkerHealth,
    install_sdk_fault_watch,
    remove_sdk_fault_watch,
    serve_health,
    watch_evictions,
)
from worker_sandbox import ContextDirectSandboxRunner
from workflows.case_workflow import CaseWorkflow
from workflows.dispatch_workflow import DispatchTickWorkflow, DispatchWorkflow
from workflows.lookback_workflow import LookbackCampaignWorkflow
from workflows.programme_workflow import ProgrammeWorkflow

# Every workflow the worker runs (the replay suite replays its stored histories against these).
WORKFLOWS = [CaseWorkflow, ProgrammeWorkflow, DispatchWorkflow, DispatchTickWorkflow, LookbackCampaignWorkflow]

# Passed through the sandbox: deterministic modules imported once per process
# instead of once per workflow run (3x throughput, 1/4 the memory measured here).
PASSTHROUGH = ("domain", "pydantic", "pydantic_core", "annotated_types", "workflows.contracts",
               "workflows.dispatch_contracts",
               # issue 15: the case workflow's logic
               "workflows.case_logic", "workflows.case_fanout", "workflows.case_clock", "workflows.activity_options",
               # issue 9: and its definition, so a rebuilt case gets no re-import of the module and no
               # second @workflow.defn (half the CPU of a case woken after a few tasks; bench.sandbox)
               "workflows.case_workflow")


def sandbox_runner() -> SandboxedWorkflowRunner:
    # The SDK's sandbox, answering the per-payload context look-ups without an `exec` each
    # (worker_sandbox.py); every line of workflow code still runs inside it.
    return ContextDirectSandboxRunner(
        restrictions=SandboxRestrictions.default.with_passthrough_modules(*PASSTHROUGH)
    )


def worker_tuning(settings: Settings) -> dict[str, object]:
    """Worker sizing from the settings (README "Sizing a worker"); unset values keep the SDK's."""
    kw: dict[str, object] = {"max_cached_workflows": settings.max_cached_workflows}
    if settings.max_concurrent_workflow_tasks > 0:
        kw["max_concurrent_workflow_tasks"] = settings.max_concurrent_workflow_tasks
    if settings.max_concurrent_activities > 0:
        kw["max_concurrent_activities"] = settings.max_concurrent_activities
    if settings.workflow_task_pollers > 0:
        kw["max_concurrent_workflow_task_polls"] = settings.workflow_task_pollers
    if settings.activity_task_pollers > 0:
        kw["max_concurrent_activity_task_polls"] = settings.activity_task_pollers
    if settings.sticky_queue_timeout_seconds > 0:
        kw["sticky_queue_schedule_to_start_timeout"] = timedelta(seconds=settings.sticky_queue_timeout_seconds)
    inactive = inactive_patch_ids(settings)
    if inactive:
        kw["patch_activation_callback"] = lambda inp: inp.patch_id not in inactive
    return kw


def inactive_patch_ids(settings: Settings) -> frozenset[str]:
    """WORKER_INACTIVE_PATCHES: patch ids new runs on this worker do not take (they keep the code
    before the patch, and record no marker, so any worker replays them). Replays are unaffected:
    a run that recorded a patch's marker takes it on every worker. Unknown ids are refused."""
    ids = frozenset(p.strip() for p in settings.inactive_patches.split(",") if p.strip())
    unknown = ids - known_patch_ids()
    if unknown:
        raise ValueError(
            f"WORKER_INACTIVE_PATCHES names unknown patch id(s) {', '.join(sorted(unknown))}; "
            f"known: {', '.join(sorted(known_patch_ids()))}"
        )
    from workflows.case_workflow import (
        CLOCK_LEDGER_PATCH,
        IMPLIED_BY_CLOCK,
        IMPLIED_BY_LOCAL,
        LOCAL_ACTIVITIES_PATCH,
    )

    for newer, implies in ((LOCAL_ACTIVITIES_PATCH, IMPLIED_BY_LOCAL), (CLOCK_LEDGER_PATCH, IMPLIED_BY_CLOCK)):
        implied = ids & set(implies)
        if implied and newer not in ids:
            raise ValueError(
                f"WORKER_INACTIVE_PATCHES: {', '.join(sorted(implied))} stays active in new case runs unless "
                f"{newer} (which implies it) is inactive too; add it"
            )
    return ids


def known_patch_ids() -> frozenset[str]:
    """Every patch id the registered workflows use (module constants named *_PATCH)."""
    import sys

    ids: set[str] = set()
    for wf in WORKFLOWS:
        module = sys.modules[wf.__module__]
        ids.update(v for k, v in vars(module).items() if k.endswith("_PATCH") and isinstance(v, str))
    return frozenset(ids)


def build_worker(
    client: Client, pool: asyncpg.Pool, settings: Settings, task_queue: str | None = None
) -> Worker:
    """The worker with every workflow and activity of the engine registered."""
    from activities.dispatch_activities import DispatchActivities, DispatchScheduleActivities
    from activities.lookback_activities import LookbackActivities
    from domain.shared_policy import set_sharing

    set_sharing(settings.share_policies)  # issue 15: one object per distinct policy snapshot
    acts = CaseActivities(pool, settings.policy_file, settings.calendar_overrides_file)
    programmes = ProgrammeActivities(pool, acts, settings.policy_file)  # issue 13: 整改方案
    from activities.reopen_activities import ReopenActivities  # issue 14: archived final states
    return Worker(
        client,
        task_queue=task_queue or settings.task_queue,
        workflows=WORKFLOWS,
        activities=[*acts.all(), *programmes.all(), *DispatchActivities(pool, acts.calendar).all(),
                    *DispatchScheduleActivities(client, task_queue or settings.task_queue).all(),
                    *ReopenActivities(pool).all(),
                    *LookbackActivities(pool, acts, client, settings.policy_file).all()],  # issue 14: 回头看
        workflow_runner=sandbox_runner() if settings.workflow_sandbox else UnsandboxedWorkflowRunner(),
        graceful_shutdown_timeout=timedelta(seconds=10),
        # Log context per activity and failures by type (ops/), then request signing.
        interceptors=[EngineInterceptor(), *_signing_interceptors(settings)],
        **worker_tuning(settings),  # type: ignore[arg-type]
    )


def _signing_interceptors(settings: Settings) -> list:
    """With ACTION_SIGNING_KEY set, the `act` validator refuses unsigned requests (workflows/signing.py)."""
    from domain.signing import parse_keys
    from workflows.signing import ActionSigningInterceptor

    keys = parse_keys(settings.action_signing_key)
    return [ActionSigningInterceptor(keys)] if keys else []


def smtp_config(settings: Settings) -> SmtpConfig:
    return SmtpConfig(
        host=settings.smtp_host,
        port=settings.smtp_port,
        user=settings.smtp_user,
        password=settings.smtp_password,
        starttls=settings.smtp_starttls,
        ssl=settings.smtp_ssl,
        sender=settings.smtp_from,
        domain=settings.notice_domain,
    )


def notice_sender(pool: asyncpg.Pool, settings: Settings) -> NoticeSender:
    """The outbox sender as configured: one construction for the worker and ops.notice_sender."""
    return NoticeSender(pool, smtp_config(settings), settings.notice_poll_seconds,
                        batch_size=settings.notice_batch_size,
                        max_backoff=timedelta(seconds=settings.notice_retry_max_seconds))


class WorkerFailed(RuntimeError):
    """A part of the worker stopped or the SDK can no longer run workflow tasks: exit non-zero."""


EXIT_WORKER_FAILED = 70  # EX_SOFTWARE: a supervisor restarts the process


async def run_worker(
    settings: Settings,
    stop: asyncio.Event,
    *,
    extra_workers: Callable[[Client], list[Worker]] | None = None,
    on_ready: Callable[[], None] | None = None,
    health: WorkerHealth | None = None,
) -> None:
    """Run worker, notice sender and history archiver until `stop` is set.

    Every part is watched (worker_health.py): if a Temporal worker's `run()` ends or raises, the
    notice sender or the archiver ends, or the SDK reports a workflow run it cannot evict, this
    stops everything and raises `WorkerFailed` with the reason (the process then exits non-zero).
    `extra_workers` adds workers on the same client (the bench's floor); `on_ready` is called
    once every worker runs.
    """
    log = structlog.get_logger("worker")
    health = health if health is not None else WorkerHealth()
    pool = await asyncpg.create_pool(settings.database_url, min_size=1, max_size=settings.db_pool_max)
    watch = install_sdk_fault_watch(health)
    try:
        client = await connect_client(settings, identity=f"case-worker@{socket.gethostname()}:{os.getpid()}")
        workers = [build_worker(client, pool, settings), *(extra_workers(client) if extra_workers else [])]
        parts: dict[str, asyncio.Task] = {}
        if settings.notice_sender:
            parts["notice-sender"] = asyncio.create_task(notice_sender(pool, settings).run(stop))
        if settings.archive_poll_seconds > 0:
            from audit.archive import run_archiver

            parts["history-archiver"] = asyncio.create_task(
                run_archiver(client, pool, stop, settings.archive_poll_seconds)
            )
        watchdog_seconds = float(os.environ.get("WATCHDOG_SECONDS", "60"))
        if watchdog_seconds > 0:
            from activities.watchdog import run_watchdog

            grace = timedelta(seconds=float(os.environ.get("WATCHDOG_GRACE_SECONDS", "300")))
            parts["escalation-watchdog"] = asyncio.create_task(
                run_watchdog(client, pool, stop, watchdog_seconds, grace)
            )
        log.info("worker_started", task_queue=settings.task_queue, address=settings.temporal_address,
                 email=bool(settings.smtp_host), archive_poll_seconds=settings.archive_poll_seconds)
        async with contextlib.AsyncExitStack() as running:
            # /healthz, /readyz (HEALTH_BIND) and the database metrics (METRICS_BIND), see ops/;
            # /healthz also fails once any part of this worker has (worker_health.py).
            probes = await running.enter_async_context(worker_sidecars(settings, client, pool, workers, stop))

            async def parts_healthy() -> bool:
                return health.healthy

            probes.add_live("worker_parts", parts_healthy)
            for w in workers:
                parts[f"temporal-worker:{w.task_queue}"] = asyncio.create_task(w.run())
            parts["eviction-watch"] = asyncio.create_task(
                watch_evictions(workers, health, stop, float(os.environ.get("WORKER_EVICTION_GRACE_SECONDS", "60")))
            )
            stall_seconds = float(os.environ.get("WORKER_STALL_SECONDS", "300"))
            if stall_seconds > 0:
                parts["poll-probe"] = asyncio.create_task(
                    probe_workflow_poller(client, settings.task_queue, client.identity, health, stop, stall_seconds)
                )
            for name in parts:
                health.running(name)
            if on_ready is not None:
                on_ready()
            stopping = asyncio.create_task(stop.wait())
            failing = asyncio.create_task(health.wait_failed())
            await asyncio.wait([stopping, failing, *parts.values()], return_when=asyncio.FIRST_COMPLETED)
            for name, task in parts.items():
                if task.done() and not stop.is_set():
                    err = task.exception() if not task.cancelled() else None
                    health.fail(name, f"{type(err).__name__}: {err}" if err else "ended while the worker should run")
            if health.failure:
                log.error("worker_failed", reason=health.failure, parts=health.parts)
            stop.set()
            for t in (stopping, failing):
                t.cancel()
            await _shut_down(workers, parts, log)
            if health.failure:
                raise WorkerFailed(health.failure)
        log.info("worker_stopped")
    finally:
        remove_sdk_fault_watch(watch)
        await pool.close()


async def _shut_down(workers: list[Worker], parts: dict[str, asyncio.Task], log) -> None:  # type: ignore[no-untyped-def]
    """Stop every part, each within a bound: a worker whose SDK cannot evict a run would
    otherwise wait for ever (the stall's SIGTERM hang)."""
    async def bounded(name: str, aw, seconds: float) -> None:  # type: ignore[no-untyped-def]
        try:
            await asyncio.wait_for(aw, seconds)
        except TimeoutError:
            log.error("worker_part_did_not_stop", part=name, after_seconds=seconds)
        except Exception as e:  # already reported through health
            log.warning("worker_part_stopped_with_error", part=name, error=f"{type(e).__name__}: {e}")

    await asyncio.gather(*(bounded(f"temporal-worker:{w.task_queue}", w.shutdown(), 20) for w in workers))
    for name, task in parts.items():
        if name in ("poll-probe", "eviction-watch"):
            task.cancel()
        await bounded(name, asyncio.shield(task) if not task.done() else task, 15)


async def probe_workflow_poller(
    client: Client, task_queue: str, identity: str, health: WorkerHealth, stop: asyncio.Event,
    stall_seconds: float,
) -> None:
    """Fail the worker when the server has not seen its workflow-task poller for `stall_seconds`.

    A live worker long-polls continuously, so the server's poller list (DescribeTaskQueue) always
    shows it within a minute; in the stall it had vanished while the activity poller remained.
    A server without the API (the Java test server) turns the probe off.
    """
    from temporalio.api.enums.v1 import TaskQueueType
    from temporalio.api.taskqueue.v1 import TaskQueue
    from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
    from temporalio.service import RPCError, RPCStatusCode

    log = structlog.get_logger("worker")
    last_seen = time.monotonic()
    every = max(1.0, min(30.0, stall_seconds / 5))
    while not stop.is_set():
        try:
            await asyncio.wait_for(stop.wait(), every)
            return
        except TimeoutError:
            pass
        try:
            resp = await client.workflow_service.describe_task_queue(
                DescribeTaskQueueRequest(
                    namespace=client.namespace,
                    task_queue=TaskQueue(name=task_queue),
                    task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
                ),
                timeout=timedelta(seconds=10),
            )
        except RPCError as e:
            if e.status == RPCStatusCode.UNIMPLEMENTED:
                log.info("poll_probe_off", reason="server has no DescribeTaskQueue")
                health.stopped("poll-probe", "off: server has no DescribeTaskQueue")
                await stop.wait()
                return
            log.warning("poll_probe_error", error=str(e))
            continue
        now = time.monotonic()
        for p in resp.pollers:
            if p.identity == identity:
                age = max(0.0, time.time() - p.last_access_time.ToSeconds()) if p.HasField("last_access_time") else 0.0
                last_seen = max(last_seen, now - age)
        if now - last_seen > stall_seconds:
            health.fail(
                "workflow-tasks",
                f"the server has not seen this worker poll {task_queue} for workflow tasks for "
                f"{now - last_seen:.0f} s",
            )
            return


def _health_endpoint() -> tuple[str, int] | None:
    port = os.environ.get("WORKER_HEALTH_PORT", "")
    return (os.environ.get("WORKER_HEALTH_HOST", "127.0.0.1"), int(port)) if port else None


async def _main(extra_workers: Callable[[Client], list[Worker]] | None = None) -> int:
    settings = Settings.from_env()
    configure_logging(settings.log_level, settings.log_json)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    health = WorkerHealth()
    server = None
    if (where := _health_endpoint()) is not None:
        server = await serve_health(health, *where)
    try:
        await run_worker(settings, stop, health=health, extra_workers=extra_workers)
    except WorkerFailed as e:
        structlog.get_logger("worker").error("worker_exit", status=EXIT_WORKER_FAILED, reason=str(e))
        return EXIT_WORKER_FAILED
    finally:
        if server is not None:
            server.close()
    return 0


if __name__ == "__main__":
    status = asyncio.run(_main())
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)  # sdk-python#300: avoid the interpreter-exit crash
