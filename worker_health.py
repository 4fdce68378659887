"""Worker liveness (issue 9): a worker is either whole or gone, never half-alive.

The stall of `../shared/evidence/worker-stall/` was a worker process whose activity poller kept
polling while its workflow-task poller had stopped: nothing failed, nothing was logged, SIGTERM
did not stop it. `run_worker` (worker.py) now watches every part it runs and this module holds
what it sees:

- `WorkerHealth`: one entry per part (each Temporal worker's `run()`, the notice sender, the
  history archiver, the SDK's workflow-task handling); a part that stops, or an SDK fault that
  leaves workflow-task slots held for good, marks the worker failed with the reason. `run_worker`
  then logs it and the process exits non-zero so a supervisor restarts it.
- `SdkFaultWatch`: a logging handler on the SDK's workflow-worker logger. The SDK reports a
  potential deadlock (TMPRL1101) and an eviction it cannot complete ("continually retrying
  eviction") only as log records. The first is survivable; the second holds a workflow-task slot
  and a cache entry until the eviction succeeds (sdk-python, see bench/README.md "Why the worker
  stalled"): `watch_evictions` fails the worker when that lasts `WORKER_EVICTION_GRACE_SECONDS`.
- `serve_health`: `GET /healthz` on a small HTTP endpoint (stdlib asyncio, no dependency):
  200 with the parts while healthy, 503 with the reason once failed (until the process exits).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any

SDK_WORKFLOW_LOGGER = "temporalio.worker._workflow"


@dataclass
class WorkerHealth:
    """What every part of a worker process is doing; `failure` is set once, by the first fault."""

    parts: dict[str, str] = field(default_factory=dict)
    failure: str | None = None
    deadlocks: int = 0
    started_at: float = field(default_factory=time.time)
    failed: asyncio.Event = field(default_factory=asyncio.Event)

    eviction_failure: str | None = None  # the SDK's last "continually retrying eviction" record

    def eviction_failing(self, message: str) -> None:
        """The SDK could not evict a run (its slot is held until it can): degraded for now;
        `watch_evictions` fails the worker if it lasts."""
        self.eviction_failure = message
        self.parts["workflow-tasks"] = f"degraded: {message}"

    def running(self, part: str) -> None:
        self.parts[part] = "running"

    def stopped(self, part: str, reason: str = "stopped") -> None:
        self.parts[part] = reason

    def fail(self, part: str, reason: str) -> None:
        """Mark the worker failed (first fault wins) and wake whoever waits on it."""
        self.parts[part] = f"failed: {reason}"
        if self.failure is None:
            self.failure = f"{part}: {reason}"
        self.failed.set()

    async def wait_failed(self) -> str:
        await self.failed.wait()
        return self.failure or "unknown"

    @property
    def healthy(self) -> bool:
        return self.failure is None

    def snapshot(self) -> dict[str, Any]:
        return {
            "status": "ok" if self.healthy else "failed",
            "failure": self.failure,
            "parts": dict(self.parts),
            "deadlocks_detected": self.deadlocks,
            "eviction_failure": self.eviction_failure,
            "uptime_seconds": round(time.time() - self.started_at, 1),
        }


class SdkFaultWatch(logging.Handler):
    """Turns the SDK's workflow-worker fault log records into health changes.

    Thread-safe: the SDK logs from the event loop; `fail` is applied through the loop.
    """

    EVICTION_STUCK = ("continually retrying eviction", "could not be evicted")

    def __init__(self, health: WorkerHealth, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(level=logging.WARNING)
        self.health = health
        self.loop = loop

    def emit(self, record: logging.LogRecord) -> None:
        try:
            msg = record.getMessage()
            exc = record.exc_info[1] if record.exc_info else None
            if exc is not None and type(exc).__name__ == "_DeadlockError":
                self.health.deadlocks += 1
            elif any(s in msg for s in self.EVICTION_STUCK):
                self.loop.call_soon_threadsafe(self.health.eviction_failing, msg[:200])
        except Exception:  # a health hook must never break logging
            self.handleError(record)


def install_sdk_fault_watch(health: WorkerHealth) -> SdkFaultWatch:
    handler = SdkFaultWatch(health, asyncio.get_running_loop())
    logging.getLogger(SDK_WORKFLOW_LOGGER).addHandler(handler)
    return handler


def remove_sdk_fault_watch(handler: SdkFaultWatch) -> None:
    logging.getLogger(SDK_WORKFLOW_LOGGER).removeHandler(handler)


async def serve_health(health: WorkerHealth, host: str, port: int) -> asyncio.AbstractServer:
    """A minimal HTTP/1.0 endpoint: GET /healthz -> 200 or 503 with the snapshot as JSON."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            line = await asyncio.wait_for(reader.readline(), 5)
            while (await asyncio.wait_for(reader.readline(), 5)) not in (b"\r\n", b"\n", b""):
                pass
            parts = line.decode("latin-1").split()
            path = parts[1] if len(parts) > 1 else ""
            if path.split("?")[0] == "/healthz":
                status = "200 OK" if health.healthy else "503 Service Unavailable"
                body = json.dumps(health.snapshot(), ensure_ascii=False).encode()
            else:
                status, body = "404 Not Found", b'{"error": "not found"}'
            writer.write(
                f"HTTP/1.0 {status}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\nCache-Control: no-store\r\n\r\n".encode() + body
            )
            await writer.drain()
        except Exception:
            pass
        finally:
            writer.close()

    return await asyncio.start_server(handle, host, port)


def _could_not_evict(worker: Any) -> int | None:
    """How many runs the SDK's workflow worker currently cannot evict (a private counter of
    temporalio 1.35; None when it is not there)."""
    ww = getattr(worker, "_workflow_worker", None)
    n = getattr(ww, "_could_not_evict_count", None) if ww is not None else None
    return n if isinstance(n, int) else None


async def watch_evictions(workers: list[Any], health: WorkerHealth, stop: asyncio.Event, grace_seconds: float) -> None:
    """Fail the worker when runs the SDK cannot evict stay so for `grace_seconds`.

    A slow activation (not a real deadlock) is evicted once its thread finishes, seconds later;
    an eviction that keeps failing holds its workflow-task slot for good (the stall of issue 9).
    """
    stuck_since: float | None = None
    while not stop.is_set():
        try:
            await asyncio.wait_for(stop.wait(), 1.0)
            return
        except TimeoutError:
            pass
        counts = [_could_not_evict(w) for w in workers]
        known = [c for c in counts if c is not None]
        stuck = sum(known) > 0 if known else health.eviction_failure is not None
        now = time.monotonic()
        if not stuck:
            if health.eviction_failure is not None and known:
                health.eviction_failure = None
                health.parts["workflow-tasks"] = "running"
            stuck_since = None
            continue
        stuck_since = stuck_since or now
        if now - stuck_since >= grace_seconds:
            health.fail(
                "workflow-tasks",
                "the SDK cannot evict a workflow run after a deadlock/timeout (its workflow-task slot stays "
                f"held, workflow polling stalls) for {now - stuck_since:.0f} s: {health.eviction_failure or ''}",
            )
            return
