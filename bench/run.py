"""Runs the benchmark on the embedded defaults and prints a table (also written as JSON).

    python -m bench.run [--scale tiny|small|mid|full] [--only lifecycle,replay,...] [--json out.json]
                        [--profile SECONDS] [--cache-values 2000,10000]
                        [--escalation-rounds ";WORKER_WORKFLOW_SANDBOX=false;BENCH_WORKER_PROCESSES=2"]
                        [--devserver-args "--sqlite-pragma synchronous=NORMAL"] [--pg-statements]

See bench/README.md for what each figure means and the figures measured on this machine.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shlex
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import escalation, latency, ledger, lifecycle, replay, scale
from bench.common import bounded, parse_settings, ratio
from bench.infra import BenchEnv, loadavg
from bench.promscrape import metrics_between, sdk_metrics
from config import ROOT, Settings
from workflows.contracts import case_workflow_id

SCENARIOS = ("lifecycle", "replay", "ledger", "scale", "latency", "escalation", "cache")

SCALES: dict[str, dict[str, Any]] = {
    # CI smoke: every figure present, under a minute.
    "tiny": dict(lifecycle=4, lifecycle_concurrency=4, open=[30], rate=5.0, latency_seconds=2, k=8,
                 ledger_rows=200, cache_values=[10, 100], profile=0, settle_seconds=0),
    # A few minutes: N = 1,000 open cases.
    "small": dict(lifecycle=40, lifecycle_concurrency=10, open=[1000], rate=10.0, latency_seconds=15, k=200,
                  ledger_rows=3000, cache_values=[500, 2000], profile=20, settle_seconds=300),
    # Issue 9's escalation burst in ~15 minutes: K = 1,000 deadlines among 3,000 open cases; with the
    # default cache (2,000) and the floor's 1,000 workflows started after the ramp, every woken case
    # was evicted, as at full scale. For trying a lever before a full run, not instead of one.
    "mid": dict(lifecycle=20, lifecycle_concurrency=10, open=[3000], rate=10.0, latency_seconds=15, k=1000,
                ledger_rows=3000, cache_values=[1000, 2000], profile=60, settle_seconds=300),
    # The figures: N = 1,000 and 10,000 open cases, K = 1,000.
    "full": dict(lifecycle=150, lifecycle_concurrency=10, open=[1000, 10000], rate=10.0, latency_seconds=30,
                 k=1000, ledger_rows=20000, cache_values=[1000, 2000], profile=30, settle_seconds=600),
}

TARGETS = {
    "lifecycle_ratio": ">= 0.7 x floor",
    "escalation_ledger_p99_ratio": "<= 2 x floor timer lag",
    "approval_p99_10k": "< 1 s at 10/s, 10,000 open",
    "worker_rss_10k": "< 1 GiB at 10,000 open",
    "replay": ">= 80 histories/s",
}


def _git_commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                              text=True, timeout=5).stdout.strip()
    except OSError:
        return ""


class Profiler:
    """py-spy on the worker process for a while (raw collapsed stacks), summarised afterwards."""

    def __init__(self, pid: int, seconds: int, out: Path) -> None:
        self.out = out
        exe = Path(sys.executable).with_name("py-spy")
        self.cmd = [str(exe if exe.exists() else "py-spy"), "record", "--pid", str(pid), "-d", str(seconds),
                    "-f", "raw", "-o", str(out), "--nonblocking"]
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        try:
            self.proc = subprocess.Popen(self.cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        except OSError as e:
            print(f"py-spy not available ({e}); no profile", file=sys.stderr)

    async def finish(self, top: int = 15) -> dict[str, Any] | None:
        if self.proc is None:
            return None
        await asyncio.to_thread(self.proc.wait)
        if not self.out.exists():
            return None
        return summarise_profile(self.out, top)


def summarise_profile(path: Path, top: int = 15) -> dict[str, Any]:
    """Top frames by own samples and by inclusive samples from py-spy's raw (collapsed) output."""
    own: Counter[str] = Counter()
    incl: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        if not stack or not n.isdigit():
            continue
        count = int(n)
        total += count
        frames = [f for f in stack.split(";") if f and not f.startswith("process ") and not f.startswith("thread ")]
        if not frames:
            continue
        own[frames[-1]] += count
        for f in set(frames):
            incl[f] += count
    mine = Counter({f: c for f, c in incl.items() if any(p in f for p in (
        "domain/", "workflows/", "activities/", "worker.py", "pydantic", "asyncpg", "structlog", "sandbox"))})

    def fmt(c: Counter[str]) -> list[dict[str, Any]]:
        return [{"frame": f, "pct": round(100 * n / total, 1)} for f, n in c.most_common(top)] if total else []

    return {"samples": total, "file": str(path), "top_own": fmt(own), "top_inclusive_ours": fmt(mine)}


async def _sweep_cache(env: BenchEnv, case_nos: list[str], value: int) -> dict[str, Any]:
    """Restart the worker with `value` cached workflows, touch enough open cases to fill the
    cache (a query replays an evicted case into it), read RSS."""
    await env.restart_worker(value)
    assert env.client is not None
    c = env.client
    touched = case_nos[-value:]
    t0 = time.monotonic()
    await bounded(touched, 20, lambda n: c.get_workflow_handle(case_workflow_id(n)).query("get_state"))
    sizes = env.sizes()
    return {"max_cached_workflows": value, "open_cases": len(case_nos), "touched": len(touched),
            "worker_rss": sizes["worker_rss"],
            "sweep_seconds": time.monotonic() - t0, "loadavg": loadavg()}


async def run(scale_name: str, only: set[str], profile_seconds: int | None, cache_values: list[int] | None,
              out_dir: Path, baseline: frozenset[str] = frozenset(),
              escalation_rounds: list[str] | None = None, devserver_args: list[str] | None = None,
              pg_statements: bool = False) -> dict[str, Any]:
    cfg = SCALES[scale_name]
    profile_seconds = cfg["profile"] if profile_seconds is None else profile_seconds
    cache_values = cache_values or cfg["cache_values"]
    res: dict[str, Any] = {
        "meta": {
            "scale": scale_name, "started": datetime.now(UTC).isoformat(timespec="seconds"),
            "commit": _git_commit(), "python": platform.python_version(), "cpus": os.cpu_count(),
            "loadavg_start": loadavg(), "worker_max_cached_workflows": Settings().max_cached_workflows,
            "config": cfg, "baseline": sorted(baseline), "pg_statements": pg_statements,
            # worker settings the bench inherited from its environment (every round's workers get them)
            "environment": {k: v for k, v in sorted(os.environ.items()) if k.startswith("WORKER_")},
        }
    }
    env = BenchEnv(baseline=baseline, devserver_args=list(devserver_args or []), pg_statements=pg_statements)
    t_start = time.monotonic()
    await env.start()
    try:
        assert env.worker is not None and env.dev is not None
        res["meta"]["worker_pid"], res["meta"]["devserver_pid"] = env.worker.pid, env.dev.pid
        res["meta"]["devserver_command"] = " ".join(env.dev.command()[1:])
        res["idle"] = env.sizes()
        lifecycle_cases: list[str] = []
        if "lifecycle" in only or "replay" in only:
            print(f"[{_t(t_start)}] lifecycle: {cfg['lifecycle']} floor paths, then {cfg['lifecycle']} cases",
                  flush=True)
            lc = await lifecycle.run(env, cfg["lifecycle"], cfg["lifecycle_concurrency"])
            lc["loadavg"] = loadavg()
            lifecycle_cases = lc.pop("case_nos")
            lc["ratio"] = ratio(lc["engine"]["per_minute"], lc["floor"]["per_minute"])
            res["lifecycle"] = lc
        if "replay" in only and lifecycle_cases:
            print(f"[{_t(t_start)}] replay of {len(lifecycle_cases)} histories", flush=True)
            hist = await replay.fetch_histories(env.client, lifecycle_cases)
            res["replay"] = {
                "sandboxed": await replay.replay_throughput(hist, sandboxed=True),
                "unsandboxed": await replay.replay_throughput(hist, sandboxed=False),
                "unsandboxed_parallel": await replay.replay_parallel(hist, sandboxed=False),
                "loadavg": loadavg(),
            }
        if "ledger" in only:
            print(f"[{_t(t_start)}] ledger writes: {cfg['ledger_rows']} rows", flush=True)
            res["ledger"] = await ledger.measure(env.database_url, cfg["ledger_rows"])
            res["ledger"]["loadavg"] = loadavg()
        oc = scale.OpenCases()
        wants_open = only & {"scale", "latency", "escalation", "cache"}
        if wants_open:
            res["scale"], res["latency"] = [], []
            n_ack = int(cfg["rate"] * cfg["latency_seconds"])
            for i, n in enumerate(cfg["open"]):
                last = i == len(cfg["open"]) - 1
                print(f"[{_t(t_start)}] opening cases up to {n}", flush=True)

                def profiler(phase: str, _last: bool = last) -> Profiler | None:
                    if not (_last and profile_seconds):
                        return None
                    prof = Profiler(env.worker.pid, profile_seconds, out_dir / f"profile-{scale_name}-{phase}.txt")
                    prof.start()
                    return prof

                step = await scale.grow(env, oc, n, profiler=profiler)
                step["worker_max_cached_workflows"] = env.worker_max_cached
                res["scale"].append(step)
                if "latency" in only:
                    print(f"[{_t(t_start)}] approval latency at {n} open: {cfg['rate']}/s for "
                          f"{cfg['latency_seconds']} s", flush=True)
                    lat = await latency.measure(env, oc.take(n_ack), cfg["rate"], n)
                    lat["floor"] = await latency.floor(env, n_ack, cfg["rate"])
                    lat["p99_ratio"] = ratio(lat["p99"], lat["floor"]["p99"])
                    lat["p50_ratio"] = ratio(lat["p50"], lat["floor"]["p50"])
                    res["latency"].append(lat)
        if "escalation" in only:
            rounds = escalation_rounds or [""]
            res["escalation_rounds"] = []
            # The escalation runs on as many worker processes as `make run` starts on this machine
            # (WORKER_PROCESSES, default one per core, at most 4; embedded/workers.py) unless a round says
            # BENCH_WORKER_PROCESSES; the other phases' figures are one process's.
            shipped = Settings.from_env().worker_process_count
            for i, spec in enumerate(rounds):
                k = min(cfg["k"], len(oc.transferred))
                if k == 0:
                    print(f"[{_t(t_start)}] escalation round {i + 1}: no transferred case left", flush=True)
                    break
                worker_env = parse_worker_env(spec)
                processes = int(worker_env.pop("BENCH_WORKER_PROCESSES", str(shipped)))
                # each round after the first, with settings, or on more processes: fresh workers
                if i > 0 or spec or processes != env.worker_processes:
                    env.worker_env, env.worker_processes = worker_env, processes
                    await env.restart_worker(None)
                print(f"[{_t(t_start)}] escalation round {i + 1}{f' ({spec})' if spec else ''}: {k} floor timers, "
                      f"then {k} case deadlines at one moment, {processes} worker process(es)", flush=True)
                esc = await _escalation_round(env, cfg, oc.take(k), profile_seconds, out_dir / (
                    f"profile-{scale_name}-escalation{f'-{i + 1}' if i else ''}.txt"))
                esc["worker_env"] = spec
                # the round's worker processes (a worker's identity, and its sticky queue's name, start with its pid)
                esc["worker_pids"] = [w.pid for w in [env.worker, *env.more_workers] if w is not None]
                res["escalation_rounds"].append(esc)
            if res["escalation_rounds"]:
                res["escalation"] = res["escalation_rounds"][0]
            env.worker_env, env.worker_processes = {}, 1  # the cache sweep measures one process's memory
        if "cache" in only and oc.count:
            all_open = [f"{oc.prefix}-{i:06d}" for i in range(oc.count)]
            res["cache"] = []
            for v in cache_values:
                print(f"[{_t(t_start)}] worker RSS with max_cached_workflows={v}, {len(all_open)} open", flush=True)
                res["cache"].append(await _sweep_cache(env, all_open, v))
            await env.restart_worker(None)
        res["meta"]["seconds"] = time.monotonic() - t_start
        res["meta"]["loadavg_end"] = loadavg()
    finally:
        if env.data_dir is not None:
            res["worker_log"] = _log_problems(*sorted(env.data_dir.glob("worker*.log")))
        await env.stop()
    return res


async def _escalation_round(env: BenchEnv, cfg: dict[str, Any], case_nos: list[str], profile_seconds: int,
                            profile_out: Path) -> dict[str, Any]:
    """One escalation measurement: the floor's K timers, then K of the open cases' deadlines at
    one moment, each after the machine is quiet again."""
    assert env.worker is not None
    k = len(case_nos)
    # The ramp's backlog (dev server, worker) worked off first (at most settle_seconds).
    settled = [await _settle(max_seconds=cfg["settle_seconds"], pool=env.pool)]
    fl = await escalation.floor_timers(env, k)
    settled.append(await _settle(max_seconds=cfg["settle_seconds"], pool=env.pool))
    prof = None
    if profile_seconds:  # from the fast-forwards through the burst
        prof = Profiler(env.worker.pid, int(escalation.margin(k)) + profile_seconds, profile_out)
        prof.start()
    cpu0 = env.cpu_snapshot()
    pg0 = await env.pg_maintenance()
    st0 = await env.pg_statement_times()
    bind = env.worker_env.get("METRICS_BIND", "")
    m0 = await sdk_metrics(bind) if bind else None
    esc = await escalation.cases(env, case_nos)
    # who used the machine from the fast-forwards until every notice was delivered
    cpu1 = env.cpu_snapshot()
    esc["cpu"] = env.cpu_between(cpu0, cpu1)
    esc["cpu_ms_per_workflow"] = env.cpu_ms_per(cpu0, cpu1, esc["k"])
    # autovacuum, autoanalyze and checkpoints in the same window, and with --pg-statements the
    # statements: PostgreSQL's CPU varied 0.04-0.25 of a core between rounds, and it was the bench's
    # own progress probe (bench/README.md, "The sticky time-out")
    esc["postgres_background"] = env.pg_maintenance_between(pg0, await env.pg_maintenance())
    if (st := env.pg_statements_between(st0, await env.pg_statement_times())) is not None:
        esc["postgres_statements"] = st  # the bench's own polling queries included
    if m0 is not None:  # the worker's own view of the burst (SDK metrics, first worker process)
        esc["worker_metrics"] = metrics_between(m0, await sdk_metrics(bind))
    await escalation.case_phases(env, esc)
    esc["worker_processes"] = env.worker_processes
    if prof is not None:
        esc["profile"] = await prof.finish()
    esc["floor"] = fl
    esc["settle_before_floor"], esc["settle_before_cases"] = settled
    fp99 = fl["wake_lag"]["p99"]
    esc["ratios_p99"] = {name: ratio(esc[name]["p99"], fp99) for name in ("wake_lag", "ledger_lag", "outbox_lag")}
    esc["ratios_p50"] = {name: ratio(esc[name]["p50"], fl["wake_lag"]["p50"])
                         for name in ("wake_lag", "ledger_lag", "outbox_lag")}
    return esc


def parse_worker_env(spec: str) -> dict[str, str]:
    """"A=1+B=2" -> {"A": "1", "B": "2"}: worker settings for one escalation round
    (BENCH_WORKER_PROCESSES, the number of worker processes, is the bench's own)."""
    env = parse_settings(spec)
    processes = env.get("BENCH_WORKER_PROCESSES", "1")
    if not processes.isdigit() or int(processes) < 1:
        raise ValueError("BENCH_WORKER_PROCESSES: a number of worker processes, at least 1")
    return env


def _log_problems(*paths: Path) -> dict[str, Any]:
    """Warnings and errors the worker logged during the run (expected: none), with the whole text
    of the first few (a traceback's last lines name the cause) and a count by its last line."""
    found: list[str] = []
    blocks: list[list[str]] = []
    current: list[str] | None = None
    for path in paths:
        try:
            with path.open(errors="replace") as f:
                for line in f:
                    problem = "[warning" in line or "[error" in line or "Traceback" in line
                    if problem:
                        found.append(line.strip()[:300])
                    if "[warning" in line or "[error" in line:
                        current = [line.rstrip()[:300]]
                        blocks.append(current)
                    elif current is not None and not line[:1].isdigit() and (
                            line.startswith((" ", "\t", "Traceback")) or ":" in line[:60]):
                        if len(current) < 80:
                            current.append(line.rstrip()[:300])
                    else:
                        current = None
        except OSError:
            pass
        current = None
    causes = Counter(b[-1] for b in blocks)
    return {"problems": len(found), "examples": found[:5], "first": ["\n".join(b) for b in blocks[:3]],
            "by_last_line": dict(causes.most_common(10))}


async def _settle(below: float = 1.0, max_seconds: float = 600.0, pool: Any = None) -> dict[str, Any]:
    """Wait until the machine is quiet (1-minute load average below `below`, at most `max_seconds`),
    so a timer-lag measurement does not start while the dev server still works off the ramp
    (seen at 100-140 % CPU for minutes after opening 10,000 cases). With `pool`, also until no
    PostgreSQL autovacuum worker runs: after the 10,000-case ramp the first bursts met PostgreSQL
    busy at 0.4-0.6 of a core with the load average already low (bench/README.md)."""
    t0 = time.monotonic()
    vacuums_seen: set[str] = set()

    async def vacuuming() -> bool:
        if pool is None:
            return False
        rows = await pool.fetch("SELECT query FROM pg_stat_activity WHERE backend_type = 'autovacuum worker'")
        vacuums_seen.update(r["query"] or "" for r in rows)
        return bool(rows)

    while time.monotonic() - t0 < max_seconds and (os.getloadavg()[0] >= below or await vacuuming()):
        await asyncio.sleep(5)
    return {"waited_seconds": round(time.monotonic() - t0, 1), "loadavg": loadavg(),
            "quiet": os.getloadavg()[0] < below and not await vacuuming(),
            "autovacuum_seen": sorted(vacuums_seen)}


def _t(t0: float) -> str:
    return f"{time.monotonic() - t0:6.0f}s"


# ------------------------------------------------------------------------------ table


def _f(x: Any, unit: str = "", digits: int = 2) -> str:
    if x is None:
        return "-"
    if isinstance(x, float):
        return f"{x:.{digits}f}{unit}"
    return f"{x}{unit}"


def _mib(b: float | None) -> str:
    return "-" if b is None else f"{b / 2**20:.0f} MiB"


def table(res: dict[str, Any]) -> str:
    rows: list[tuple[str, str, str, str, str]] = []  # figure, engine, floor, ratio, load

    def add(fig: str, eng: str, flo: str = "", rat: Any = None, load: str = "") -> None:
        rows.append((fig, eng, flo, _f(rat) if rat is not None else "", load))

    if lc := res.get("lifecycle"):
        add("lifecycle cases/min (filing → 销号)", _f(lc["engine"]["per_minute"], digits=1),
            _f(lc["floor"]["per_minute"], digits=1), lc["ratio"], lc["loadavg"])
        se, sf = lc["shape"]["engine"], lc["shape"]["floor"]
        add("  history: events/updates/activities/markers/timers",
            f"{se['events']}/{se['updates']}/{se['activities']}/{se.get('markers', '-')}/{se['timers_started']}",
            f"{sf['events']}/{sf['updates']}/{sf['activities']}/{sf.get('markers', '-')}/{sf['timers_started']}")
    for lat in res.get("latency", []):
        fl = lat["floor"]
        add(f"approval p50/p95/p99 s @{lat['rate']:g}/s, {lat['open_cases']} open",
            f"{_f(lat['p50'])}/{_f(lat['p95'])}/{_f(lat['p99'])}",
            f"{_f(fl['p50'])}/{_f(fl['p95'])}/{_f(fl['p99'])}", lat["p99_ratio"], lat["loadavg_after"])
    rounds = res.get("escalation_rounds") or ([res["escalation"]] if res.get("escalation") else [])
    for i, esc in enumerate(rounds):
        fw = esc["floor"]["wake_lag"]
        tag = f" (round {i + 1}{': ' + esc['worker_env'] if esc.get('worker_env') else ''})" if len(rounds) > 1 else ""
        for name, label in (("wake_lag", "wake-up"), ("ledger_lag", "ledger row"), ("outbox_lag", "notice sent")):
            dd = esc[name]
            add(f"escalation lag p50/p99 s, K={esc['k']}: {label}{tag}", f"{_f(dd['p50'])}/{_f(dd['p99'])}",
                f"{_f(fw['p50'])}/{_f(fw['p99'])}", esc["ratios_p99"][name], esc["loadavg_after"])
        add(f"  escalated, notices delivered{tag}", f"{esc['escalated']}, {esc['notices_delivered']}/{esc['notices']}")
        if cpu := esc.get("cpu"):
            add(f"  cores used: worker(s) / dev server / PostgreSQL, machine busy{tag}",
                f"{cpu['workers_cores']} / {cpu['dev_server_cores']} / {cpu['postgres_cores']}, "
                f"{100 * cpu['machine_busy_fraction']:.0f} % of {os.cpu_count()}")
        if (bg := esc.get("postgres_background")) is not None:
            add(f"  PostgreSQL background: autovacuum / autoanalyze ms, checkpoints{tag}",
                f"{bg['autovacuum_ms']} / {bg['autoanalyze_ms']}, {bg['checkpoints']}"
                + (f" ({', '.join(sorted(bg['tables']))})" if bg["tables"] else ""))
        if st := esc.get("postgres_statements"):
            add(f"  PostgreSQL statements: ms / calls, the costliest{tag}",
                f"{st['total_ms']} / {st['calls']}; " + "; ".join(f"{r[2] + r[3]:.0f} ms {r[1]}x {r[0][:50]}"
                                                              for r in st["top"][:2]))
        fcm = (esc.get("floor") or {}).get("cpu_ms_per_workflow")
        if (cm := esc.get("cpu_ms_per_workflow")) and fcm:  # what one woken workflow costs the machine
            add(f"  CPU ms per woken workflow: worker(s) / dev server / PostgreSQL = total{tag}",
                f"{cm['workers']} / {cm['dev_server']} / {cm['postgres']} = {cm['total']}",
                f"{fcm['workers']} / {fcm['dev_server']} / {fcm['postgres']} = {fcm['total']}",
                ratio(cm["total"], fcm["total"]))
        ph, fph = esc.get("phases") or {}, (esc.get("floor") or {}).get("phases") or {}
        if "wft_queue" in ph and "wft_queue" in fph:  # where the lag went (bench/README.md, "Where the lag goes")
            in_task = f"in task: {ph['clock_in_task']}" if ph.get("clock_in_task") else "-"  # issue 9
            add(f"  p99 s: timer / task queued / task run / ledger activity{tag}",
                " / ".join(_f(ph[k]["p99"]) if k in ph else in_task for k in (
                    "timer", "wft_queue", "wft_run", "activity_run")),
                " / ".join(_f(fph[k]["p99"]) for k in ("timer", "wft_queue", "wft_run")))
        sv, fsv = esc.get("server") or {}, (esc.get("floor") or {}).get("server") or {}
        if sv and fsv:  # the dev server's persistence work per woken workflow (bench/promscrape.py)
            add(f"  dev server per woken workflow: persistence calls / SQLite s{tag}",
                f"{sv['persistence_calls_per_workflow']} / {_f(sv['persistence_seconds_per_workflow'], digits=3)}",
                f"{fsv['persistence_calls_per_workflow']} / {_f(fsv['persistence_seconds_per_workflow'], digits=3)}",
                ratio(sv["persistence_calls_per_workflow"], fsv["persistence_calls_per_workflow"]))
    for st in res.get("scale", []):
        n = st["open_cases"]
        add(f"cases filed/s (settled/s), to {n} open", f"{_f(st['filed_per_s'], digits=0)} "
            f"({_f(st['filing_settled_per_s'], digits=0)})", "", None, st["loadavg_after"])
        add(f"transfers/s (deadline armed), to {n} open", _f(st["transfers_per_s"], digits=1), "", None,
            st["loadavg_after"])
        add(f"worker / dev-server RSS, {n} open (cache {st['worker_max_cached_workflows']})",
            f"{_mib(st['worker_rss'])} / {_mib(st['devserver_rss'])}", "", None, st["loadavg_after"])
        add(f"PostgreSQL / SQLite bytes per case, {n} open",
            f"{_f(st['pg_bytes_per_case'], digits=0)} / {_f(st['sqlite_bytes_per_case'], digits=0)}")
    for cv in res.get("cache", []):
        add(f"worker RSS, {cv['open_cases']} open, {cv['touched']} touched, max_cached={cv['max_cached_workflows']}",
            _mib(cv["worker_rss"]), "", None, cv["loadavg"])
    if rp := res.get("replay"):
        for k in ("sandboxed", "unsandboxed"):
            r = rp[k]
            add(f"replay {k}: histories/s (events/s)",
                f"{_f(r['histories_per_s'], digits=1)} ({_f(r['events_per_s'], digits=0)})", "", None, rp["loadavg"])
        if rpp := rp.get("unsandboxed_parallel"):
            add(f"replay unsandboxed, {rpp['processes']} processes: histories/s steady (with start-up)",
                f"{_f(rpp['histories_per_s_steady'], digits=1)} ({_f(rpp['histories_per_s'], digits=1)})", "", None,
                rp["loadavg"])
    if lg := res.get("ledger"):
        add("ledger rows/s: activity vs raw COPY", _f(lg["activity_rows_per_s"], digits=0),
            _f(lg["copy_rows_per_s"], digits=0) + " (COPY)", lg["activity_vs_copy"], lg["loadavg"])
    head = ("figure", "engine", "floor", "ratio", "load 1/5/15")
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(5)]
    lines = [" | ".join(c.ljust(widths[i]) for i, c in enumerate(r)) for r in [head, *rows]]
    lines.insert(1, "-+-".join("-" * w for w in widths))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scale", choices=sorted(SCALES), default="small")
    ap.add_argument("--only", default=",".join(SCENARIOS), help=f"comma list of {', '.join(SCENARIOS)}")
    ap.add_argument("--json", type=Path, default=None,
                    help="write the results here (default bench/results/<scale>.json, git-ignored)")
    ap.add_argument("--profile", type=int, default=None, help="py-spy the worker this many seconds (0: off)")
    ap.add_argument("--baseline", default="", help="levers to switch OFF for a before/after comparison: "
                    "no-wal (dev server SQLite in its default journal mode), no-passthrough (sandbox without "
                    "our passthrough list), partitions (the server's 4 partitions per task queue instead of 1)")
    ap.add_argument("--show", type=Path, default=None, help="print the table of a results JSON and exit")
    ap.add_argument("--cache-values", default="", help="max_cached_workflows values to compare, e.g. 2000,10000")
    ap.add_argument("--escalation-rounds", default="",
                    help="escalation rounds on the same open cases, ';'-separated worker settings per round "
                         "('' = as configured; 'A=1+B=2'; BENCH_WORKER_PROCESSES=N runs N worker processes); each "
                         "round after the first restarts the worker, "
                         "e.g. ';;' (three rounds) or ';WORKER_WORKFLOW_SANDBOX=false'")
    ap.add_argument("--devserver-args", default="",
                    help="more arguments for the dev server, e.g. '--sqlite-pragma synchronous=NORMAL' (a "
                         "measurement of the server, not the engine's default; the command is in the JSON's meta)")
    ap.add_argument("--pg-statements", action="store_true",
                    help="PostgreSQL with pg_stat_statements: each escalation burst records the statements "
                         "that used its time (postgres_statements in the JSON)")
    args = ap.parse_args(argv)
    if args.show:
        print(table(json.loads(args.show.read_text())))
        return 0
    only = {s.strip() for s in args.only.split(",") if s.strip()}
    unknown = only - set(SCENARIOS)
    if unknown:
        ap.error(f"unknown scenario(s) {sorted(unknown)}; choose from {', '.join(SCENARIOS)}")
    from worker import configure_logging

    configure_logging("WARNING")  # the in-process activity calls (ledger figure) log nothing per row
    cache_values = [int(v) for v in args.cache_values.split(",") if v.strip()] or None
    baseline = frozenset(b.strip() for b in args.baseline.split(",") if b.strip())
    if baseline - {"no-wal", "no-passthrough", "partitions"}:
        ap.error(f"unknown --baseline {sorted(baseline)}; use no-wal, no-passthrough and/or partitions")
    rounds = args.escalation_rounds.split(";") if args.escalation_rounds else None
    try:
        for spec in rounds or []:
            parse_worker_env(spec)
    except ValueError as e:
        ap.error(str(e))
    out = args.json or ROOT / "bench" / "results" / f"{args.scale}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    res = asyncio.run(run(args.scale, only, args.profile, cache_values, out.parent, baseline, rounds,
                          shlex.split(args.devserver_args), args.pg_statements))
    out.write_text(json.dumps(res, indent=2, ensure_ascii=False, default=str))
    print()
    print(table(res))
    if res["meta"]["baseline"]:
        print(f"\nBASELINE run, levers off: {', '.join(res['meta']['baseline'])}")
    print(f"\nload average at start {res['meta']['loadavg_start']}, at end {res['meta'].get('loadavg_end')}; "
          f"{res['meta'].get('seconds', 0):.0f} s; JSON: {out}")
    return 0


if __name__ == "__main__":
    status = main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)  # sdk-python#300
