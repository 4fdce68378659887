"""Issue 15's workload: what a case costs, next to a minimal Temporal workflow and the floor.

    python -m bench.cost [--scale tiny|small|full] [--systems engine,minimal,floor]
                         [--profile] [--json out.json] [--show results.json]
    make bench-cost SCALE=small ARGS="--profile"

Three systems, one after the other, each on FRESH data (its own embedded PostgreSQL, dev
server with the bench's flags, temp dir) and its own worker process, so every CPU second and
every byte of peak RSS below belongs to that system alone:

* **engine** — the case worker as `worker.py` runs it (case workflow, activities, notice
  sender, history archiver; `BENCH_WORKER_SYSTEM=engine`: no floor worker beside it);
* **minimal** — `bench/minimal.py`: one Update with a validator and one ledger-writing
  activity per action, nothing else (the issue's comparison point);
* **floor** — `bench/floor.py`: the history-shaped floor (the case's activities, timers and
  search-attribute upserts, as no-ops).

A system spec may carry worker environment overrides after `@`, joined by `+`, to measure a
lever before/after in the same run, e.g. `engine@NOTICE_BATCH_SIZE=1` or
`engine@WORKER_MAX_CONCURRENT_WORKFLOW_TASKS=100`.

Per system, two phases:

1. **lifecycle** — N cases, each: file, TRANSFER (office), ACKNOWLEDGE and SUBMIT_COMPLETION
   (responsible unit); the paths run `concurrency` at a time, each path one call after the
   other, so at most `concurrency` calls are in flight. Throughput = N ÷ wall time. CPU per
   case = the growth of utime+stime (with reaped children) of each process tree — worker,
   dev server, PostgreSQL (postmaster and backends), and this driver — from before the first
   filing until the system is quiet again (the engine's outbox drained) ÷ N.
2. **approval** — M more cases filed (`concurrency` at a time; time until every filing is
   settled), then TRANSFER offered open-loop at `rate`/s to K of them: request i is *scheduled*
   at t0 + i/rate and its latency counted from that scheduled instant, so a backlog shows up
   as latency (coordinated-omission-free). Worker RSS with M open, and the worker's peak RSS
   (VmHWM) over the whole run.

`--profile` runs py-spy on the engine's worker through both phases and writes speedscope
files under bench/results (open them at https://www.speedscope.app or in the speedscope CLI);
the table's footer lists the top functions by worker samples.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from temporalio.service import RPCError

from bench.common import OFFICE, RU, act, bounded, dist, filing, new_prefix, parse_settings
from bench.floor import CASE_PATH, FLOOR_TASK_QUEUE, FLOOR_WORKFLOW, step_payload
from bench.infra import BenchEnv, loadavg, peak_rss_bytes, rss_bytes, tree_cpu_seconds
from bench.minimal import MINIMAL_TASK_QUEUE, MINIMAL_WORKFLOW, action_payload
from config import ROOT
from domain.enums import Action
from workflows import client as ops
from workflows.contracts import TASK_QUEUE, case_workflow_id

SCALES: dict[str, dict[str, Any]] = {
    # CI smoke (tests/bench): every figure present, in well under a minute per system.
    "tiny": dict(n=4, concurrency=50, m=12, k=6, rate=5.0),
    # A few minutes on 2 cores: indicative only.
    "small": dict(n=100, concurrency=50, m=300, k=100, rate=20.0),
    # The workload: 500 cases, 50 in flight; 2,000 open, 300 approvals at 20/s.
    "full": dict(n=500, concurrency=50, m=2000, k=300, rate=20.0),
}
SYSTEMS = ("engine", "minimal", "floor")

# Issue 15's targets, engine against the minimal floor of the same run.
TARGETS = {
    "cpu_per_case": 1.5,  # engine ≤ 1.5 × minimal
    "throughput": 0.7,  # engine ≥ 0.7 × minimal
    "approval_p99_ms": 500.0,  # engine p99 < 500 ms
    "approval_p50": 2.0,  # engine p50 ≤ 2 × minimal
    "worker_peak_rss": 1.5,  # engine ≤ 1.5 × minimal
}

PROCS = ("worker", "devserver", "postgres", "driver")
CALL_TIMEOUT = 300.0  # a lifecycle path or an approval not done by then counts as failed (a stall shows)


def parse_system(spec: str) -> tuple[str, dict[str, str]]:
    """'engine@A=1+B=2' -> ('engine', {'A': '1', 'B': '2'})."""
    kind, _, rest = spec.partition("@")
    if kind not in SYSTEMS:
        raise ValueError(f"unknown system {kind!r} in {spec!r}; choose from {', '.join(SYSTEMS)}")
    try:
        return kind, parse_settings(rest)
    except ValueError as e:
        raise ValueError(f"system {spec!r}: {e}") from None


# ------------------------------------------------------------------------------ drivers


class Driver:
    """How to file a case and send one action, per system."""

    def __init__(self, kind: str, env: BenchEnv) -> None:
        self.kind, self.env = kind, env
        assert env.client is not None
        self.c = env.client

    def workflow_id(self, case_no: str) -> str:
        return {"engine": case_workflow_id(case_no), "minimal": f"min-{case_no}"}.get(self.kind, f"floor-{case_no}")

    async def history_shape(self, case_no: str) -> dict[str, int]:
        from bench.lifecycle import shape

        events = [e async for e in self.c.get_workflow_handle(self.workflow_id(case_no)).fetch_history_events()]
        return shape(events)

    async def file(self, case_no: str) -> None:
        if self.kind == "engine":
            out = await ops.file_case(self.c, filing(case_no), OFFICE, TASK_QUEUE)
            if not out.filed:
                raise RuntimeError(out.reason)
        elif self.kind == "minimal":
            await self.c.start_workflow(
                MINIMAL_WORKFLOW,
                {"case_no": case_no, "title": "湘江源头尾矿库污染治理不到位",
                 "filed_by": {"user_id": OFFICE.user_id, "role": OFFICE.role.value}},
                id=f"min-{case_no}", task_queue=MINIMAL_TASK_QUEUE)
        else:
            await self.c.start_workflow(FLOOR_WORKFLOW, {}, id=f"floor-{case_no}", task_queue=FLOOR_TASK_QUEUE)

    async def act(self, case_no: str, action: Action) -> None:
        actor = OFFICE if action is Action.TRANSFER else RU
        if self.kind == "engine":
            await act(self.c, case_no, action, actor)
        elif self.kind == "minimal":
            h = self.c.get_workflow_handle(f"min-{case_no}")
            await h.execute_update("act", action_payload(action.value, actor))
        else:
            step = next(s for s in CASE_PATH if s.name == action.value)
            await self.c.get_workflow_handle(f"floor-{case_no}").execute_update("act", step_payload(step))

    async def _stage_or_none(self, wid: str) -> str | None:
        try:
            return await self.c.get_workflow_handle(wid).query("stage", rpc_timeout=timedelta(seconds=30))
        except RPCError:  # not answered yet (a busy worker): asked again on the next round
            return None

    async def settled(self, prefix: str, want: int, timeout: float) -> None:
        """Until `want` filings of `prefix` have done their filing work."""
        assert self.env.pool is not None
        end = time.monotonic() + timeout
        if self.kind == "floor":  # no database: ask each workflow until its filing step is done
            pending = [f"floor-{prefix}-{i:06d}" for i in range(want)]
            while pending and time.monotonic() < end:
                stages = await bounded(pending, 20, self._stage_or_none)
                pending = [w for w, s in zip(pending, stages, strict=True) if s != "REGISTERED"]
                if pending:
                    await asyncio.sleep(0.2)
            if pending:
                raise TimeoutError(f"{len(pending)} floor filings not settled in {timeout:.0f}s")
            return
        sql = ("SELECT count(*) FROM ledger WHERE case_no LIKE $1 AND event = 'FILED'" if self.kind == "engine"
               else "SELECT count(*) FROM bench_min_ledger WHERE case_no LIKE $1 AND event = 'FILED'")
        while time.monotonic() < end:
            if await self.env.pool.fetchval(sql, prefix + "%") >= want:
                return
            await asyncio.sleep(0.2)
        raise TimeoutError(f"filings of {prefix} not settled in {timeout:.0f}s")

    async def quiet(self, timeout: float = 120.0) -> None:
        """Until the system's own background work for what was sent is done (the outbox)."""
        if self.kind != "engine":
            return
        assert self.env.pool is not None
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if not await self.env.pool.fetchval("SELECT count(*) FROM outbox WHERE status = 'PENDING'"):
                return
            await asyncio.sleep(0.2)


# ------------------------------------------------------------------------------ measuring


def cpu_snapshot(env: BenchEnv) -> dict[str, float]:
    assert env.worker is not None and env.dev is not None
    t = os.times()
    return {
        "worker": tree_cpu_seconds(env.worker.pid),
        "devserver": tree_cpu_seconds(env.dev.pid),
        "postgres": tree_cpu_seconds(env.postmaster_pid),
        "driver": t.user + t.system,
    }


def cpu_delta(a: dict[str, float], b: dict[str, float], per: int) -> dict[str, float]:
    d = {k: (b[k] - a[k]) for k in PROCS}
    d["all"] = sum(d[k] for k in PROCS)
    d["servers"] = d["all"] - d["driver"]  # what the platform + engine cost, without the load generator
    return {"seconds": d, "ms_per_case": {k: 1000 * v / per for k, v in d.items()}}


async def open_loop(rate: float, items: list[Any], fn) -> tuple[list[float], list[str], float]:
    """Request i scheduled at t0 + i/rate; latency from the scheduled instant (no coordinated
    omission: a request sent late because of a backlog counts its wait). Also returns the
    largest send lag (how late the driver itself was, to check the driver is not the limit)."""
    lat: list[float] = []
    errors: list[str] = []
    send_lag = 0.0
    t0 = time.monotonic() + 0.1

    async def one(i: int, item: Any) -> None:
        nonlocal send_lag
        due = t0 + i / rate
        await asyncio.sleep(max(0.0, due - time.monotonic()))
        send_lag = max(send_lag, time.monotonic() - due)
        try:
            await fn(item)
            lat.append(time.monotonic() - due)
        except Exception as e:  # counted and reported, never hidden
            errors.append(f"{type(e).__name__}: {e}"[:300])

    await asyncio.gather(*(one(i, x) for i, x in enumerate(items)))
    return lat, errors, send_lag


class SpeedscopeProfiler:
    """py-spy on a process, speedscope output; `finish()` summarises the file."""

    def __init__(self, pid: int, out: Path) -> None:
        exe = Path(sys.executable).with_name("py-spy")
        self.out = out
        self.cmd = [str(exe if exe.exists() else "py-spy"), "record", "--pid", str(pid), "-f", "speedscope",
                    "-o", str(out), "--nonblocking", "-r", "50"]
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        try:
            self.proc = subprocess.Popen(self.cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        except OSError as e:
            print(f"py-spy not available ({e}); no profile", file=sys.stderr)

    async def finish(self) -> dict[str, Any] | None:
        if self.proc is None:
            return None
        self.proc.send_signal(2)  # SIGINT: py-spy writes the file and exits
        try:
            _, err = await asyncio.to_thread(self.proc.communicate, None, 60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return None
        if not self.out.exists():
            return {"error": (err or b"").decode(errors="replace")[-300:]}
        return summarise_speedscope(self.out)


def summarise_speedscope(path: Path, top: int = 20) -> dict[str, Any]:
    """Top functions by own and by inclusive samples over every thread of a py-spy speedscope file."""
    doc = json.loads(path.read_text())
    frames = doc["shared"]["frames"]

    def name(i: int) -> str:
        f = frames[i]
        file = str(f.get("file", ""))
        for cut in (str(ROOT) + "/", "site-packages/"):
            if cut in file:
                file = file.split(cut, 1)[1]
        return f"{f.get('name')} ({file}:{f.get('line', '')})"

    own: Counter[int] = Counter()  # weights (py-spy: seconds of samples)
    incl: Counter[int] = Counter()
    ours: Counter[str] = Counter()
    total = 0.0
    samples = 0
    for prof in doc.get("profiles", []):
        for stack, w in zip(prof.get("samples", []), prof.get("weights", []), strict=False):
            if not stack:
                continue
            samples += 1
            total += w
            own[stack[-1]] += w
            for i in set(stack):
                incl[i] += w
            files = {str(frames[i].get("file", "")) for i in stack}
            for area in ("domain/", "workflows/", "activities/", "audit/"):
                if any(str(ROOT / area) in f for f in files):
                    ours[area] += w

    def fmt(c: Counter[int]) -> list[dict[str, Any]]:
        return [{"frame": name(i), "pct": round(100 * n / total, 1)} for i, n in c.most_common(top)] if total else []

    lib = Counter({i: n for i, n in incl.items()
                   if not str(frames[i].get("file", "")).startswith(("/root/.pyenv", "<", "/usr/lib"))
                   and "bench/" not in str(frames[i].get("file", ""))})
    return {"file": str(path), "samples": samples, "top_own": fmt(own), "top_inclusive": fmt(incl),
            "top_inclusive_not_stdlib": fmt(lib),
            "stacks_through_pct": {k: round(100 * v / total, 1) for k, v in ours.items()} if total else {}}


# ------------------------------------------------------------------------------ one system


async def approval_phase(env: BenchEnv, drv: Driver, cfg: dict[str, Any], res: dict[str, Any]) -> None:
    assert env.worker is not None
    # ---- approval: M open, TRANSFER at `rate`/s offered to K of them
    prefix = new_prefix("O")
    open_ids = [f"{prefix}-{i:06d}" for i in range(cfg["m"])]
    t0 = time.monotonic()
    await bounded(open_ids, cfg["concurrency"], drv.file)
    accepted = time.monotonic() - t0
    try:
        await drv.settled(prefix, cfg["m"], timeout=300 + cfg["m"] / 5)
    except TimeoutError as e:
        res["settle_error"] = str(e)
    settled = time.monotonic() - t0
    rss_open = rss_bytes(env.worker.pid, with_children=False)
    load0 = loadavg()
    targets = open_ids[: cfg["k"]]  # the oldest: the likeliest to have left the cache
    lat, errors, send_lag = await open_loop(cfg["rate"], targets,
                                          lambda n: asyncio.wait_for(drv.act(n, Action.TRANSFER),
                                                                           cfg.get("call_timeout", CALL_TIMEOUT)))
    ms = [1000 * x for x in lat]
    res["approval"] = {
        "open": cfg["m"], "k": cfg["k"], "rate": cfg["rate"], "latency_ms": dist(ms), "errors": errors[:5],
        "error_count": len(errors), "max_send_lag_ms": 1000 * send_lag,
        "file_accepted_s": accepted, "file_settled_s": settled,
        "worker_rss_open": rss_open, "loadavg_before": load0, "loadavg_after": loadavg(),
    }


async def run_system(spec: str, cfg: dict[str, Any], profile_dir: Path | None) -> dict[str, Any]:
    kind, overrides = parse_system(spec)
    env = BenchEnv(worker_env={"BENCH_WORKER_SYSTEM": kind, **overrides})
    res: dict[str, Any] = {"system": spec, "kind": kind, "overrides": overrides, "loadavg_start": loadavg()}
    await env.start()
    try:
        assert env.worker is not None
        drv = Driver(kind, env)
        prof = None
        if profile_dir is not None:
            tag = spec.replace("@", "_").replace("=", "-").replace("+", "_")
            prof = SpeedscopeProfiler(env.worker.pid, profile_dir / f"cost-{tag}-lifecycle.speedscope.json")
            prof.start()

        # ---- lifecycle: N cases, file + 3 actions, `concurrency` paths at once
        prefix = new_prefix("C")
        ids = [f"{prefix}-{i:06d}" for i in range(cfg["n"])]
        failures: list[str] = []

        async def steps(case_no: str) -> None:
            await drv.file(case_no)
            for a in (Action.TRANSFER, Action.ACKNOWLEDGE, Action.SUBMIT_COMPLETION):
                await drv.act(case_no, a)

        async def path(case_no: str) -> None:
            try:
                await asyncio.wait_for(steps(case_no), cfg.get("call_timeout", CALL_TIMEOUT))
            except Exception as e:  # counted and reported
                failures.append(f"{case_no}: {type(e).__name__}: {e}"[:300])

        cpu0 = cpu_snapshot(env)
        t0 = time.monotonic()
        await bounded(ids, cfg["concurrency"], path)
        elapsed = time.monotonic() - t0
        await drv.quiet()
        cpu1 = cpu_snapshot(env)
        done = cfg["n"] - len(failures)
        res["lifecycle"] = {
            "cases": cfg["n"], "completed": done, "failures": failures[:5], "seconds": elapsed,
            "cases_per_s": done / elapsed if elapsed else None, "quiet_after_s": time.monotonic() - t0 - elapsed,
            "cpu": cpu_delta(cpu0, cpu1, cfg["n"]), "loadavg": loadavg(),  # per case attempted
            "worker_rss": rss_bytes(env.worker.pid, with_children=False),
            "history": await drv.history_shape(ids[0]) if done else None,
        }
        if prof is not None:
            res["lifecycle"]["profile"] = await prof.finish()
            prof = SpeedscopeProfiler(env.worker.pid, profile_dir / f"cost-{tag}-approval.speedscope.json")
            prof.start()

        try:
            await approval_phase(env, drv, cfg, res)
        except Exception as e:  # keep the lifecycle figures of this system
            res["approval"] = {"error": f"{type(e).__name__}: {e}"[:500]}
        await drv.quiet()
        if prof is not None:
            res["approval"]["profile"] = await prof.finish()
        # the kernel's approximate RSS counters can put VmHWM a few pages below a VmRSS sampled
        # earlier: the peak is never below what this run itself observed
        res["worker_peak_rss"] = max(peak_rss_bytes(env.worker.pid),
                                     (res.get("approval") or {}).get("worker_rss_open") or 0)
        res["worker_exit"] = env.worker.proc.poll() if env.worker.proc else None  # None: still running
        res["devserver_rss"] = rss_bytes(env.dev.pid) if env.dev and env.dev.pid else None
    finally:
        if env.data_dir is not None:
            from bench.run import _log_problems

            res["worker_log"] = _log_problems(env.data_dir / "worker.log")
        await env.stop()
    res["loadavg_end"] = loadavg()
    return res


async def run(scale: str, systems: list[str], profile_dir: Path | None,
              cfg: dict[str, Any] | None = None, partial: Path | None = None) -> dict[str, Any]:
    """Every system in turn; `partial`, if given, gets the results so far after each system."""
    cfg = cfg or SCALES[scale]
    from bench.run import _git_commit

    res: dict[str, Any] = {"meta": {"scale": scale, "config": cfg, "systems": systems, "cpus": os.cpu_count(),
                                    "commit": _git_commit(), "started": datetime.now(UTC).isoformat(timespec="seconds"),
                                    "loadavg_start": loadavg()}, "systems": {}}
    t0 = time.monotonic()
    for spec in systems:
        print(f"[{time.monotonic() - t0:6.0f}s] {spec}: lifecycle of {cfg['n']} cases, then {cfg['m']} open and "
              f"{cfg['k']} approvals at {cfg['rate']:g}/s (load {loadavg()})", flush=True)
        try:
            res["systems"][spec] = await run_system(spec, cfg, profile_dir if spec == "engine" else None)
        except Exception as e:  # one system failing (e.g. its dev server died) does not lose the others
            print(f"{spec} FAILED: {type(e).__name__}: {e}", flush=True)
            res.setdefault("failed", {})[spec] = f"{type(e).__name__}: {e}"[:500]
        if partial is not None:
            partial.write_text(json.dumps(res, indent=2, ensure_ascii=False, default=str))
    res["meta"]["seconds"] = time.monotonic() - t0
    res["meta"]["loadavg_end"] = loadavg()
    return res


# ------------------------------------------------------------------------------ table


def _r(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None or b == 0 else a / b


def table(res: dict[str, Any]) -> str:
    systems = res["systems"]
    if not systems:
        return f"no system completed: {res.get('failed')}"
    names = list(systems)
    ref = next((s for s in names if s == "minimal"), None)
    cfg = res["meta"]["config"]

    def cell(x: Any, fmt: str = "{:.1f}") -> str:
        return "-" if x is None else fmt.format(x)

    rows: list[list[str]] = []

    def row(label: str, get, fmt: str = "{:.1f}", target: str = "") -> None:
        vals = {s: get(systems[s]) for s in names}
        r = _r(vals.get("engine"), vals.get(ref)) if ref and "engine" in vals else None
        rows.append([label, *(cell(vals[s], fmt) for s in names), cell(r, "{:.2f}"), target])

    lc = lambda s: s["lifecycle"]  # noqa: E731
    empty = {"latency_ms": {}, "file_settled_s": None, "worker_rss_open": None, "loadavg_after": "- ",
             "errors": [], "error_count": 0}
    ap = lambda s: {**empty, **s["approval"]} if "error" not in s["approval"] else empty  # noqa: E731
    row(f"lifecycle cases/s (N={cfg['n']}, {cfg['concurrency']} in flight)", lambda s: lc(s)["cases_per_s"], "{:.2f}",
        f"≥ {TARGETS['throughput']} ×")
    row("CPU ms per case attempted, all processes", lambda s: lc(s)["cpu"]["ms_per_case"]["all"], "{:.0f}",
        f"≤ {TARGETS['cpu_per_case']} ×")
    for p in ("worker", "devserver", "postgres", "driver"):
        row(f"  of which {p}", lambda s, p=p: lc(s)["cpu"]["ms_per_case"][p], "{:.0f}")
    row("history events per case (workflow tasks)", lambda s: (lc(s).get("history") or {}).get("events"), "{:.0f}")
    rows[-1][1:1 + len(names)] = [
        f"{h['events']} ({h['workflow_tasks']})" if (h := lc(systems[s]).get("history")) else "-" for s in names]
    row("CPU ms per case, servers (all − driver)", lambda s: lc(s)["cpu"]["ms_per_case"]["servers"], "{:.0f}")
    row(f"approval p50 ms @{cfg['rate']:g}/s, {cfg['m']} open, K={cfg['k']}",
        lambda s: ap(s)["latency_ms"].get("p50"), "{:.0f}", f"≤ {TARGETS['approval_p50']} ×")
    row("approval p99 ms", lambda s: ap(s)["latency_ms"].get("p99"), "{:.0f}",
        f"< {TARGETS['approval_p99_ms']:.0f} ms")
    row("approval max ms", lambda s: ap(s)["latency_ms"].get("max"), "{:.0f}")
    row(f"time to file {cfg['m']} cases, s (settled)", lambda s: ap(s)["file_settled_s"], "{:.1f}")
    row(f"worker RSS MiB, {cfg['m']} open", lambda s: ap(s)["worker_rss_open"] and ap(s)["worker_rss_open"] / 2**20, "{:.0f}")
    row("worker peak RSS MiB", lambda s: s["worker_peak_rss"] / 2**20, "{:.0f}", f"≤ {TARGETS['worker_peak_rss']} ×")
    row("load 1-min at lifecycle end / approval end",
        lambda s: None, "{}")
    rows[-1][1:1 + len(names)] = [f"{lc(systems[s])['loadavg'].split()[0]} / {ap(systems[s])['loadavg_after'].split()[0]}"
                                  for s in names]
    head = ["figure", *names, "engine ÷ minimal", "target"]
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    out = [" | ".join(c.ljust(widths[i]) for i, c in enumerate(r)) for r in [head, *rows]]
    out.insert(1, "-+-".join("-" * w for w in widths))
    notes = []
    for s in names:
        sysr = systems[s]
        if "error" in sysr["approval"]:
            notes.append(f"{s}: approval phase FAILED: {sysr['approval']['error']}")
        bad = sysr["lifecycle"]["failures"] or sysr["approval"].get("errors")
        if bad:
            notes.append(f"{s}: {sysr['lifecycle']['cases'] - sysr['lifecycle']['completed']} lifecycle failures, "
                         f"{sysr['approval'].get('error_count')} approval errors, e.g. {bad[0]}")
        if sysr.get("settle_error") or sysr.get("worker_exit") is not None:
            notes.append(f"{s}: {sysr.get('settle_error') or ''} worker exit code {sysr.get('worker_exit')}")
        if sysr.get("worker_log", {}).get("problems"):
            notes.append(f"{s}: worker logged {sysr['worker_log']['problems']} warnings/errors, e.g. "
                         f"{sysr['worker_log']['examples'][:1]}")
        for phase in ("lifecycle", "approval"):
            pr = sysr[phase].get("profile")
            if pr and pr.get("samples"):
                notes.append(f"{s} worker profile, {phase} ({pr['samples']} samples, {pr['file']}):")
                notes += [f"    own {f['pct']:5.1f} %  {f['frame']}" for f in pr["top_own"][:10]]
                notes += [f"    incl {f['pct']:5.1f} %  {f['frame']}" for f in pr.get("top_inclusive_not_stdlib", [])[:12]]
                notes.append(f"    stacks through our code: {pr['stacks_through_pct']}")
    notes += [f"{s}: FAILED, not in the table: {why}" for s, why in res.get("failed", {}).items()]
    return "\n".join(out + ([""] + notes if notes else []))


async def _cancellable(coro):
    """SIGINT/SIGTERM cancel the run, so every server and worker it started is stopped."""
    import signal

    task = asyncio.ensure_future(coro)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, task.cancel)
    return await task


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scale", choices=sorted(SCALES), default="small")
    ap.add_argument("--systems", default=",".join(SYSTEMS),
                    help="comma list of engine|minimal|floor, each optionally @ENV=V+ENV2=V2 (worker overrides)")
    ap.add_argument("--profile", action="store_true", help="py-spy the engine's worker (speedscope files)")
    ap.add_argument("--json", type=Path, default=None, help="default bench/results/cost-<scale>.json (git-ignored)")
    ap.add_argument("--show", type=Path, default=None, help="print the table of a results JSON and exit")
    for k in ("n", "m", "k", "rate", "concurrency", "call_timeout"):
        ap.add_argument(f"--{k.replace('_', '-')}", type=float if k in ("rate", "call_timeout") else int, default=None,
                        help=f"override the scale's {k}" + (" (seconds a path or approval may take before it counts "
                                                             "as failed; default 300)" if k == "call_timeout" else ""))
    args = ap.parse_args(argv)
    if args.show:
        print(table(json.loads(args.show.read_text())))
        return 0
    systems = [s.strip() for s in args.systems.split(",") if s.strip()]
    try:
        for s in systems:
            parse_system(s)
    except ValueError as e:
        ap.error(str(e))
    from worker import configure_logging

    configure_logging("WARNING")
    cfg = dict(SCALES[args.scale])
    for k in ("n", "m", "k", "rate", "concurrency", "call_timeout"):
        if getattr(args, k) is not None:
            cfg[k] = getattr(args, k)
    out = args.json or ROOT / "bench" / "results" / f"cost-{args.scale}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    res = asyncio.run(_cancellable(run(args.scale, systems, out.parent if args.profile else None, cfg, out)))
    out.write_text(json.dumps(res, indent=2, ensure_ascii=False, default=str))
    print()
    print(table(res))
    print(f"\nshared 2-core machine: figures are indicative. load average at start {res['meta']['loadavg_start']}, "
          f"at end {res['meta']['loadavg_end']}; {res['meta']['seconds']:.0f} s; JSON: {out}")
    return 0


if __name__ == "__main__":
    status = main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)  # sdk-python#300
