"""Escalation lag: K deadlines expiring at the same moment, against K plain timers.

The cases are K of the scale ramp's cases waiting in TRANSFERRED; all were transferred on the
same day, so their 签收 deadline (3 working days, end of day Asia/Shanghai) and its first rung
(函告, 0 days after) fall on the same instant `due_at`. The bench picks a wall-clock moment
`T` a little ahead and fast-forwards every case by the same `due_at - T` (dev server,
per-workflow time skipping): each case's clock then runs in real time again, shifted, and
all K deadlines expire together at wall time `T`. Measured, in the wall clock of this machine
(PostgreSQL's clock_timestamp() and time.time()):

* wake-up lag: the case's workflow task that saw the deadline (ledger `at` is its
  workflow.now(), shifted back) minus T;
* ledger lag: `ledger.recorded_at` of the ESCALATED row minus T;
* outbox lag: `outbox.delivered_at` of each of its notices minus T (the notice sender polls
  every NOTICE_POLL_SECONDS, 2 s by default, and delivers one notice per transaction).

The floor: K `FloorWorkflow`s whose only timer ends at the same `due_at`, fast-forwarded the
same way at another moment; its lag is the workflow task that saw the timer minus its due time.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

from temporalio.api.enums.v1 import EventType, TaskQueueKind

from audit.history import CLOCK_RECORD_ACTIVITY, local_activity_result
from bench.common import bounded, dist, new_prefix
from bench.floor import FLOOR_TASK_QUEUE, FLOOR_WORKFLOW
from bench.infra import BenchEnv, loadavg
from bench.promscrape import SERVER_METRICS_FLUSH_SECONDS, metrics_between, server_metrics, server_summary
from workflows.contracts import case_workflow_id

FF_CONCURRENCY = 20
HISTORY_CONCURRENCY = 20
_E = EventType


def margin(k: int) -> float:
    return 8.0 + k / 40.0  # time to issue K fast-forwards, with room to spare


async def _fast_forward_all(env: BenchEnv, handles: list, shift: float) -> float:
    assert env.skipper is not None
    t0 = time.monotonic()
    await bounded(handles, FF_CONCURRENCY, lambda h: env.skipper.fast_forward(h, timedelta(seconds=shift)))
    return time.monotonic() - t0


async def _server_metrics_at(env: BenchEnv, t_due: float) -> dict[str, float] | None:
    """The dev server's metrics at the due instant: what follows is the burst alone (not the
    fast-forwards before it, a bench artifact)."""
    if env.server_metrics_port is None:
        return None
    await asyncio.sleep(max(0.0, t_due - time.time()))
    return await server_metrics(env.server_metrics_port)


async def _server_burst(env: BenchEnv, s0: dict[str, float] | None, k: int) -> dict[str, Any]:
    """The dev server's own view of a burst that began with reading `s0`: `server_metrics` and its
    per-workflow `server` summary (nothing without a metrics endpoint)."""
    if s0 is None:
        return {}
    await asyncio.sleep(SERVER_METRICS_FLUSH_SECONDS)  # its last events reported
    sm = metrics_between(s0, await server_metrics(env.server_metrics_port) or {})
    return {"server_metrics": sm, "server": server_summary(sm, k)}


async def floor_timers(env: BenchEnv, k: int) -> dict[str, Any]:
    assert env.client is not None
    c = env.client
    prefix = new_prefix("FT")
    due_at = time.time() + 3 * 86400
    inp = {"wake_at": due_at, "start_activities": 0, "start_local": 0, "on_timer": {"activities": 0, "timer_days": None},
           "finish_on_timer": True}
    handles = await bounded(
        range(k), 50, lambda i: c.start_workflow(FLOOR_WORKFLOW, inp, id=f"floor-{prefix}-{i}",
                                                 task_queue=FLOOR_TASK_QUEUE)
    )
    await asyncio.sleep(1.0)  # first tasks done: every timer armed
    load0 = loadavg()
    cpu0 = env.cpu_snapshot()  # from the fast-forwards until every timer's workflow closed
    pg0 = await env.pg_maintenance()
    t_due = time.time() + margin(k)
    ff_seconds = await _fast_forward_all(env, handles, due_at - t_due)
    late = time.time() > t_due
    s0 = await _server_metrics_at(env, t_due)
    results = await bounded(handles, 100, lambda h: h.result())
    cpu1 = env.cpu_snapshot()
    pg_bg = env.pg_maintenance_between(pg0, await env.pg_maintenance())
    lags = [r["timer_lag"] for r in results]
    load1 = loadavg()
    out = {"k": k, "wake_lag": dist(lags), "ff_seconds": ff_seconds, "ff_finished_after_due": late,
           "loadavg_before": load0, "loadavg_after": load1,
           "cpu": env.cpu_between(cpu0, cpu1), "cpu_ms_per_workflow": env.cpu_ms_per(cpu0, cpu1, k),
           "postgres_background": pg_bg}
    out.update(await _server_burst(env, s0, k))
    out["phases"] = await phases(handles, due_at)
    return out


async def cases(env: BenchEnv, case_nos: list[str], timeout: float = 600.0) -> dict[str, Any]:
    assert env.client is not None and env.pool is not None
    c, pool = env.client, env.pool
    rows = await pool.fetch("SELECT case_no, due_at FROM case_projection WHERE case_no = ANY($1)", case_nos)
    by_due = Counter(r["due_at"] for r in rows)
    due_dt, _ = by_due.most_common(1)[0]
    chosen = [r["case_no"] for r in rows if r["due_at"] == due_dt]
    due_at = due_dt.timestamp()
    handles = [c.get_workflow_handle(case_workflow_id(n)) for n in chosen]
    load0 = loadavg()
    t_due = time.time() + margin(len(chosen))
    shift = due_at - t_due
    ff_seconds = await _fast_forward_all(env, handles, shift)
    late = time.time() > t_due
    s0 = await _server_metrics_at(env, t_due)

    # The bench's own progress probe runs on the engine's PostgreSQL during the burst, so it must
    # stay cheap: it first counts the ESCALATED rows (ledger_event_idx), and only once all are in,
    # the notices still pending, from the outbox's partial index of pending rows. (A join driven
    # from the whole outbox took 0.4 s per call and 10.8 s of PostgreSQL's time in a first round;
    # pg_stat_statements, bench/README.md "The sticky time-out".)
    t_end = time.monotonic() + timeout
    while time.monotonic() < t_end:
        done = await pool.fetchval(
            """SELECT count(*) FROM ledger WHERE case_no = ANY($1) AND event = 'ESCALATED'""", chosen
        )
        if done >= len(chosen):
            pending = await pool.fetchval(
                """SELECT count(*) FROM outbox o JOIN ledger l USING (case_no, seq)
                   WHERE o.status = 'PENDING' AND o.case_no = ANY($1) AND l.event = 'ESCALATED'""",
                chosen,
            )
            if pending == 0:
                break
        await asyncio.sleep(0.5)
    server = await _server_burst(env, s0, len(chosen))
    led = await pool.fetch(
        "SELECT case_no, at, recorded_at FROM ledger WHERE case_no = ANY($1) AND event = 'ESCALATED'", chosen
    )
    out = await pool.fetch(
        """SELECT o.delivered_at FROM outbox o JOIN ledger l USING (case_no, seq)
           WHERE l.case_no = ANY($1) AND l.event = 'ESCALATED'""",
        chosen,
    )
    wake = [r["at"].timestamp() - due_at for r in led]
    ledger_lag = [r["recorded_at"].timestamp() - t_due for r in led]
    outbox_lag = [r["delivered_at"].timestamp() - t_due for r in out if r["delivered_at"] is not None]
    res = {
        "k": len(chosen),
        "due_at": datetime.fromtimestamp(due_at, UTC).isoformat(),
        "escalated": len(led),
        "notices": len(out),
        "notices_delivered": len(outbox_lag),
        "wake_lag": dist(wake),
        "ledger_lag": dist(ledger_lag),
        "outbox_lag": dist(outbox_lag),
        "ff_seconds": ff_seconds,
        "ff_finished_after_due": late,
        "loadavg_before": load0,
        "loadavg_after": loadavg(),
        # for case_phases, read after the round's CPU accounting (bench.run pops them)
        "chosen": chosen,
        "due_at_epoch": due_at,
    }
    res.update(server)
    return res


async def case_phases(env: BenchEnv, esc: dict[str, Any]) -> None:
    """`phases` of a `cases` result's workflows, into it (after the measurement: the history reads
    load the dev server, so they stay outside the round's CPU accounting)."""
    assert env.client is not None
    chosen, due_at = esc.pop("chosen"), esc.pop("due_at_epoch")
    t0 = time.monotonic()
    esc["phases"] = await phases([env.client.get_workflow_handle(case_workflow_id(n)) for n in chosen], due_at)
    esc["phases"]["read_seconds"] = time.monotonic() - t0


def _t(e: Any) -> float:
    return e.event_time.seconds + e.event_time.nanos / 1e9


def _phases_of(events: list[Any], due_at: float) -> dict[str, Any] | None:
    """Where one workflow's lag went, from its own history (event times are in its shifted
    clock, like `due_at`, so differences are wall-clock seconds): the server firing the timer
    (timer), the workflow task waiting for a poller (wft_queue) and running in the worker
    (wft_run, with the history fetch and replay of an evicted case), then the first activity it
    scheduled waiting (activity_queue) and running (activity_run); `clock_in_task`: the woken task
    wrote the ledger itself (a `record_clock_events` local-activity marker, issue 9), with no
    activity to wait for."""
    it = iter(events)
    last_started = None  # the last workflow task that ran before the burst: who ran it, and when
    fired = None
    for e in it:
        if e.event_type == _E.EVENT_TYPE_TIMER_FIRED and _t(e) >= due_at - 1.0:
            fired = e
            break
        if e.event_type == _E.EVENT_TYPE_WORKFLOW_TASK_STARTED:
            last_started = e
    if fired is None:
        return None
    out: dict[str, Any] = {"timer": _t(fired) - due_at, "wft_attempts": 0, "wft_timeouts": 0}
    if last_started is not None:
        out["ran_before_by"] = last_started.workflow_task_started_event_attributes.identity
        out["ran_before_seconds"] = due_at - _t(last_started)
    sched = started = None
    for e in it:
        if e.event_type == _E.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED:
            q = e.workflow_task_scheduled_event_attributes.task_queue
            out["sticky"] = q.kind == TaskQueueKind.TASK_QUEUE_KIND_STICKY
            if sched is None:  # where the woken task went first (a sticky queue's name starts with its worker's identity)
                out["first_queue"] = q.name if out["sticky"] else "(shared)"
            sched = sched or e  # the queue wait counts from the first scheduling (a sticky one may time out)
        elif e.event_type == _E.EVENT_TYPE_WORKFLOW_TASK_TIMED_OUT:
            out["wft_timeouts"] += 1
        elif e.event_type == _E.EVENT_TYPE_WORKFLOW_TASK_STARTED:
            started = e
            out["wft_attempts"] += 1
        elif e.event_type == _E.EVENT_TYPE_WORKFLOW_TASK_COMPLETED and sched is not None and started is not None:
            out["wft_queue"] = _t(started) - _t(sched)
            out["wft_run"] = _t(e) - _t(started)
            out["wft_started_at"] = _t(started) - due_at  # every workflow here shares one shift
            break
    act: dict[str, float] = {}
    for e in it:
        la = local_activity_result(e) if "scheduled" not in act else None
        if la is not None and la[0] == CLOCK_RECORD_ACTIVITY:
            out["clock_in_task"] = True
            break
        if e.event_type == _E.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED and "scheduled" not in act:
            act["scheduled"] = _t(e)
        elif e.event_type == _E.EVENT_TYPE_ACTIVITY_TASK_STARTED and "scheduled" in act and "started" not in act:
            act["started"] = _t(e)
        elif e.event_type == _E.EVENT_TYPE_ACTIVITY_TASK_COMPLETED and "started" in act:
            out["activity_queue"] = act["started"] - act["scheduled"]
            out["activity_run"] = _t(e) - act["started"]
            break
    return out


async def phases(handles: list, due_at: float) -> dict[str, Any]:
    """The lag split into its phases over all K workflows (read after the measurement)."""
    async def one(h: Any) -> dict[str, Any] | None:
        try:
            return _phases_of(list((await h.fetch_history()).events), due_at)
        except Exception:  # noqa: BLE001 - a history the bench cannot read is counted, not fatal
            return None

    rows = [r for r in await bounded(handles, HISTORY_CONCURRENCY, one) if r is not None]
    out: dict[str, Any] = {"workflows": len(rows), "sticky": sum(1 for r in rows if r.get("sticky")),
                           "wft_retried": sum(1 for r in rows if r["wft_attempts"] > 1),
                           "clock_in_task": sum(1 for r in rows if r.get("clock_in_task")),
                           "wft_timed_out": sum(1 for r in rows if r["wft_timeouts"])}
    for name in ("timer", "wft_queue", "wft_run", "activity_queue", "activity_run"):
        vals = [r[name] for r in rows if name in r]
        if vals:
            out[name] = dist(vals)
    # Which workers last ran the woken cases, how long before the burst, and where their woken
    # tasks went first: the sticky queue of a worker that has stopped is refused at once, and the
    # task goes to the shared queue under that sticky queue's time-out, so in a burst the tasks
    # still queued after it time out and are queued again (bench/README.md, "The sticky time-out").
    out["ran_before_by"] = dict(Counter(r["ran_before_by"] for r in rows if "ran_before_by" in r).most_common(8))
    before = [r["ran_before_seconds"] for r in rows if "ran_before_seconds" in r]
    if before:
        out["ran_before_seconds"] = dist(before)
    out["first_queue"] = dict(Counter(r.get("first_queue", "?").rsplit("-", 1)[0] for r in rows).most_common(8))
    # Throughput and concurrency (Little's law): over the span in which the K first workflow
    # tasks started, how many started per second and how many ran at once on average.
    starts = sorted(r["wft_started_at"] for r in rows if "wft_started_at" in r)
    if len(starts) > 1 and starts[-1] > starts[0]:
        span = starts[-1] - starts[0]
        out["wft_started_span_seconds"] = span
        out["wft_started_per_second"] = (len(starts) - 1) / span
        out["wft_running_mean"] = sum(r["wft_run"] for r in rows if "wft_run" in r) / span
    return out
