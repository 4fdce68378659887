"""Prometheus figures over one burst: the worker's SDK metrics (a round's METRICS_BIND) and the
dev server's own (persistence calls per operation), each read before and after."""

from __future__ import annotations

import asyncio
import re
import urllib.request
from typing import Any

_METRIC_LINE = re.compile(r'^(temporal_[a-z_]+?)(_sum|_count)?(?:\{([^}]*)\})? ([0-9.eE+-]+|NaN)$')
_KEPT = ("request_latency", "long_request_latency", "workflow_task_execution_latency",
         "workflow_activation_execution_latency", "workflow_task_replay_latency",
         "workflow_task_schedule_to_start_latency", "activity_execution_latency", "sticky_cache_miss",
         "workflow_task_execution_failed", "sticky_cache_total_forced_eviction")


async def _scrape(url: str) -> str | dict[str, float]:
    """A Prometheus endpoint's text, or {"error": ...} when it cannot be read."""
    def get() -> str:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.read().decode()

    try:
        return await asyncio.to_thread(get)
    except OSError as e:
        return {"error": str(e)}  # type: ignore[dict-item]


async def sdk_metrics(bind: str) -> dict[str, float]:
    """The worker's SDK metrics (METRICS_BIND in a round's settings): histogram sums and counts and
    counters, summed over labels other than the RPC `operation` and `poller_type`."""
    text = await _scrape(f"http://{bind}/metrics")
    if isinstance(text, dict):
        return text
    out: dict[str, float] = {}
    for line in text.splitlines():
        m = _METRIC_LINE.match(line)
        if not m or m.group(4) == "NaN":
            continue
        name, suffix, labels, value = m.groups()
        base = name.removeprefix("temporal_").removesuffix("_seconds")
        if base.endswith("_bucket") or not base.startswith(_KEPT):
            continue
        tags = dict(re.findall(r'(operation|poller_type)="([^"]*)"', labels or ""))
        key = base + "".join(f"[{v}]" for v in tags.values()) + (suffix or "")
        out[key] = out.get(key, 0.0) + float(value)
    return out


# The dev server reports its metrics to the Prometheus endpoint once a second (tally): a reading
# taken this long after the last event includes it.
SERVER_METRICS_FLUSH_SECONDS = 2.0
_PROM_LINE = re.compile(r'^([a-z_]+?)(_sum|_count)?(?:\{([^}]*)\})? ([0-9.eE+-]+|NaN)$')
# The dev server's families that say where its time goes: persistence calls (SQLite) and their
# latency per operation, the history cache, matching's forwarding, history task queues; and per
# RPC (service_*: e.g. RecordWorkflowTaskStarted, PollWorkflowTaskQueue) with matching's sync and
# async (backlog) matches, to locate a wait that is not the shard's.
_SERVER_KEPT = ("persistence_requests", "persistence_latency", "visibility_persistence_requests",
                "visibility_persistence_latency", "cache_requests", "cache_miss", "forwarded",
                "task_latency_queue", "task_latency_processing", "lock_latency", "semaphore_latency",
                "service_requests", "service_latency", "syncmatch_latency", "asyncmatch_latency",
                "poll_success", "poll_success_sync", "poll_timeouts")


async def server_metrics(port: int | None) -> dict[str, float] | None:
    """The dev server's metrics (bench env's --metrics-port): counters and histogram sums/counts
    of `_SERVER_KEPT`, summed over every label but `operation`."""
    if not port:
        return None

    text = await _scrape(f"http://127.0.0.1:{port}/metrics")
    if isinstance(text, dict):
        return text
    out: dict[str, float] = {}
    for line in text.splitlines():
        m = _PROM_LINE.match(line)
        if not m or m.group(4) == "NaN" or m.group(1) not in _SERVER_KEPT:
            continue
        name, suffix, labels, value = m.groups()
        op = re.search(r'operation="([^"]*)"', labels or "")
        key = name + (f"[{op.group(1)}]" if op else "") + (suffix or "")
        out[key] = out.get(key, 0.0) + float(value)
    return out


def server_summary(metrics: dict[str, Any], workflows: int) -> dict[str, Any]:
    """Per woken workflow: persistence calls (history + matching + visibility) and the SQLite
    seconds they took, with the operations that took most."""
    if not metrics or "error" in metrics or not workflows:
        return {}
    calls = seconds = 0.0
    ops: list[tuple[float, str, float]] = []
    for key, v in metrics.items():
        if key.startswith(("persistence_requests[", "visibility_persistence_requests[")):
            calls += v
        elif key.startswith(("persistence_latency[", "visibility_persistence_latency[")) and isinstance(v, dict):
            total = v["n"] * v["mean_seconds"]  # not total_seconds: rounded to 0.1 s, it is 0 in a small burst
            seconds += total
            ops.append((round(total, 3), key[key.index("[") + 1:-1], v["n"] / workflows))
    ops.sort(reverse=True)
    return {"persistence_calls_per_workflow": round(calls / workflows, 1),
            "persistence_seconds_per_workflow": round(seconds / workflows, 4),
            "top_operations": [{"operation": o, "per_workflow": round(n, 2), "total_seconds": t}
                               for t, o, n in ops[:8]]}


def metrics_between(a: dict[str, float], b: dict[str, float]) -> dict[str, Any]:
    """Per metric over the burst: count and mean seconds (histograms), or the increase (counters)."""
    if "error" in a or "error" in b:
        return {"error": a.get("error") or b.get("error")}
    out: dict[str, Any] = {}
    for key in sorted(b):
        if key.endswith("_count"):
            base = key.removesuffix("_count")
            n = b[key] - a.get(key, 0.0)
            if n > 0:
                total = b.get(base + "_sum", 0.0) - a.get(base + "_sum", 0.0)
                out[base] = {"n": int(n), "mean_seconds": round(total / n, 4), "total_seconds": round(total, 1)}
        elif not key.endswith("_sum"):
            if (d := b[key] - a.get(key, 0.0)) > 0:
                out[key] = d
    return out
