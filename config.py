"""Settings from environment variables, and the one way to connect a Temporal client.

Nothing here runs at import time: settings are read when `Settings.from_env()`
is called, so workflow modules can import names without side effects.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent


def _env(name: str, default: str) -> str:
    value = os.environ.get(name)
    return default if value is None or value == "" else value


def _bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    if raw.lower() in ("1", "true", "yes", "on"):
        return True
    if raw.lower() in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"{name}={raw!r} is not a boolean (use true/false)")


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"{name}={raw!r} is not an integer") from None


DEFAULT_WORKER_PROCESSES_MAX = 4


def _worker_processes(default: int) -> int:
    n = _int("WORKER_PROCESSES", default)
    if n < 0:
        raise ValueError(f"WORKER_PROCESSES={n} is not a number of processes (0: one per core)")
    return n


def _float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{name}={raw!r} is not a number") from None
    if not value >= 0 or value == float("inf"):
        raise ValueError(f"{name}={raw!r} must be a finite number >= 0")
    return value


@dataclass(frozen=True)
class Settings:
    """Every setting of the engine; README lists each with its default."""

    temporal_address: str = "127.0.0.1:7233"
    temporal_namespace: str = "default"
    task_queue: str = "inspection-cases"
    temporal_tls: bool = False
    temporal_api_key: str = ""
    database_url: str = "postgresql://postgres@127.0.0.1:54329/case_engine"
    db_pool_max: int = 10
    smtp_host: str = ""
    smtp_port: int = 25
    smtp_user: str = ""
    smtp_password: str = ""
    smtp_starttls: bool = False
    smtp_ssl: bool = False
    smtp_from: str = "case-engine@localhost"
    notice_domain: str = "case-engine.local"
    notice_poll_seconds: int = 2
    notice_retry_max_seconds: int = 3600  # longest wait between e-mail attempts while the relay is down
    policy_file: str = ""
    calendar_overrides_file: str = field(default_factory=lambda: str(ROOT / "deploy" / "calendar_overrides.json"))
    max_cached_workflows: int = 2000
    # Worker sizing (README "Sizing a worker"); 0 leaves the SDK's default (100 / 100 / 5 / 5).
    max_concurrent_workflow_tasks: int = 10
    max_concurrent_activities: int = 20
    workflow_task_pollers: int = 0
    activity_task_pollers: int = 0
    # How long a woken case's task waits on this worker's sticky queue before the server moves it
    # to the shared queue (0: the SDK's 10 s). A case evicted from the cache still gets its task
    # on the sticky queue first (the server is not told of evictions).
    sticky_queue_timeout_seconds: float = 0.0
    # Patch ids this worker leaves inactive in new runs (comma-separated; README "Rolling out a
    # workflow change"): the first phase of a rolling deploy, or a lever's "before" in bench/.
    inactive_patches: str = ""
    # Issue 15 levers, on by default; off only to measure them (bench/README.md "Cost per case").
    share_policies: bool = True  # cases with equal policy snapshots share one object
    workflow_sandbox: bool = True  # README "Sizing a worker": what the sandbox costs, and why it stays on
    # `make run` only (embedded/workers.py): worker processes on this machine, the run's own and
    # `python worker.py` children; 0 = one per core, at most DEFAULT_WORKER_PROCESSES_MAX
    # (README "Sizing a worker").
    worker_processes: int = 0
    notice_batch_size: int = 100  # outbox rows delivered per transaction by the notice sender
    archive_poll_seconds: int = 60  # history archiver in the worker; 0 turns it off
    log_level: str = "INFO"
    log_json: bool = False
    # Operations (ops/): Prometheus endpoint of the SDK runtime and the probe server; "" = off.
    metrics_bind: str = ""
    health_bind: str = ""
    metrics_db_poll_seconds: int = 30
    notice_sender: bool = True  # false: the worker sends nothing (a separate `python -m ops.notice_sender` does)
    # Admin console (admin/web) and casectl.
    console_host: str = "127.0.0.1"
    console_port: int = 8080
    console_secure_cookies: bool = False  # set true in production behind TLS
    console_session_idle_minutes: int = 30
    console_session_max_hours: int = 12
    console_lockout_failures: int = 5
    console_lockout_minutes: int = 15
    # Hostile input (issue 10): login throttling (failures before delays start, per account
    # uses console_lockout_failures; per address this many), delays doubling from the base up
    # to the maximum, counted over console_lockout_minutes; upload limits; action signing key(s).
    console_throttle_address_failures: int = 30
    console_throttle_base_ms: int = 1000
    console_throttle_max_seconds: int = 60
    console_upload_max_bytes: int = 5 * 1024 * 1024
    console_import_max_unzipped_bytes: int = 50 * 1024 * 1024
    console_import_max_rows: int = 2000
    action_signing_key: str = ""
    # Evidence files (佐证材料): the largest file accepted, in bytes (25 MiB).
    evidence_max_bytes: int = 25 * 1024 * 1024

    @property
    def worker_process_count(self) -> int:
        """WORKER_PROCESSES, with 0 read as one per core of this machine, at most 4: on one machine
        the dev server and PostgreSQL need cores too, and each process has its own cache."""
        return self.worker_processes or min(os.cpu_count() or 1, DEFAULT_WORKER_PROCESSES_MAX)

    @classmethod
    def from_env(cls) -> Settings:
        d = cls()
        return cls(
            temporal_address=_env("TEMPORAL_ADDRESS", d.temporal_address),
            temporal_namespace=_env("TEMPORAL_NAMESPACE", d.temporal_namespace),
            task_queue=_env("TEMPORAL_TASK_QUEUE", d.task_queue),
            temporal_tls=_bool("TEMPORAL_TLS", d.temporal_tls),
            temporal_api_key=_env("TEMPORAL_API_KEY", d.temporal_api_key),
            database_url=_env("DATABASE_URL", d.database_url),
            db_pool_max=_int("DB_POOL_MAX", d.db_pool_max),
            smtp_host=_env("SMTP_HOST", d.smtp_host),
            smtp_port=_int("SMTP_PORT", d.smtp_port),
            smtp_user=_env("SMTP_USER", d.smtp_user),
            smtp_password=_env("SMTP_PASSWORD", d.smtp_password),
            smtp_starttls=_bool("SMTP_STARTTLS", d.smtp_starttls),
            smtp_ssl=_bool("SMTP_SSL", d.smtp_ssl),
            smtp_from=_env("SMTP_FROM", d.smtp_from),
            notice_domain=_env("NOTICE_DOMAIN", d.notice_domain),
            notice_poll_seconds=_int("NOTICE_POLL_SECONDS", d.notice_poll_seconds),
            notice_retry_max_seconds=_int("NOTICE_RETRY_MAX_SECONDS", d.notice_retry_max_seconds),
            policy_file=_env("POLICY_FILE", d.policy_file),
            calendar_overrides_file=_env("CALENDAR_OVERRIDES_FILE", d.calendar_overrides_file),
            max_cached_workflows=_int("WORKER_MAX_CACHED_WORKFLOWS", d.max_cached_workflows),
            max_concurrent_workflow_tasks=_int("WORKER_MAX_CONCURRENT_WORKFLOW_TASKS", d.max_concurrent_workflow_tasks),
            max_concurrent_activities=_int("WORKER_MAX_CONCURRENT_ACTIVITIES", d.max_concurrent_activities),
            workflow_task_pollers=_int("WORKER_WORKFLOW_TASK_POLLERS", d.workflow_task_pollers),
            activity_task_pollers=_int("WORKER_ACTIVITY_TASK_POLLERS", d.activity_task_pollers),
            sticky_queue_timeout_seconds=_float("WORKER_STICKY_QUEUE_TIMEOUT_SECONDS", d.sticky_queue_timeout_seconds),
            inactive_patches=_env("WORKER_INACTIVE_PATCHES", d.inactive_patches),
            share_policies=_bool("WORKER_SHARE_POLICIES", d.share_policies),
            workflow_sandbox=_bool("WORKER_WORKFLOW_SANDBOX", d.workflow_sandbox),
            worker_processes=_worker_processes(d.worker_processes),
            notice_batch_size=_int("NOTICE_BATCH_SIZE", d.notice_batch_size),
            archive_poll_seconds=_int("ARCHIVE_POLL_SECONDS", d.archive_poll_seconds),
            log_level=_env("LOG_LEVEL", d.log_level),
            log_json=_bool("LOG_JSON", d.log_json),
            metrics_bind=_env("METRICS_BIND", d.metrics_bind),
            health_bind=_env("HEALTH_BIND", d.health_bind),
            metrics_db_poll_seconds=_int("METRICS_DB_POLL_SECONDS", d.metrics_db_poll_seconds),
            notice_sender=_bool("NOTICE_SENDER", d.notice_sender),
            console_host=_env("CONSOLE_HOST", d.console_host),
            console_port=_int("CONSOLE_PORT", d.console_port),
            console_secure_cookies=_bool("CONSOLE_SECURE_COOKIES", d.console_secure_cookies),
            console_session_idle_minutes=_int("CONSOLE_SESSION_IDLE_MINUTES", d.console_session_idle_minutes),
            console_session_max_hours=_int("CONSOLE_SESSION_MAX_HOURS", d.console_session_max_hours),
            console_lockout_failures=_int("CONSOLE_LOCKOUT_FAILURES", d.console_lockout_failures),
            console_lockout_minutes=_int("CONSOLE_LOCKOUT_MINUTES", d.console_lockout_minutes),
            console_throttle_address_failures=_int("CONSOLE_THROTTLE_ADDRESS_FAILURES",
                                                   d.console_throttle_address_failures),
            console_throttle_base_ms=_int("CONSOLE_THROTTLE_BASE_MS", d.console_throttle_base_ms),
            console_throttle_max_seconds=_int("CONSOLE_THROTTLE_MAX_SECONDS", d.console_throttle_max_seconds),
            console_upload_max_bytes=_int("CONSOLE_UPLOAD_MAX_BYTES", d.console_upload_max_bytes),
            console_import_max_unzipped_bytes=_int("CONSOLE_IMPORT_MAX_UNZIPPED_BYTES",
                                                   d.console_import_max_unzipped_bytes),
            console_import_max_rows=_int("CONSOLE_IMPORT_MAX_ROWS", d.console_import_max_rows),
            action_signing_key=_env("ACTION_SIGNING_KEY", d.action_signing_key),
            evidence_max_bytes=_int("EVIDENCE_MAX_BYTES", d.evidence_max_bytes),
        )


async def connect_client(settings: Settings, identity: str | None = None):  # -> Client
    """Connect to Temporal: the one place where clients are made.

    Always the pydantic data converter (replay needs the same), with the payload encryption
    codec when keys are configured (ops/codec.py); TLS/mTLS from TEMPORAL_TLS_* (ops/tls.py);
    the process's SDK runtime, with its Prometheus endpoint when METRICS_BIND is set.
    """
    from temporalio.client import Client

    from ops.codec import data_converter
    from ops.metrics import runtime_for
    from ops.tls import tls_config

    kwargs = {}
    if identity:
        kwargs["identity"] = identity
    return await Client.connect(
        settings.temporal_address,
        namespace=settings.temporal_namespace,
        data_converter=data_converter(),
        tls=tls_config(settings.temporal_tls),
        api_key=settings.temporal_api_key or None,
        runtime=runtime_for(settings.metrics_bind),
        **kwargs,
    )
