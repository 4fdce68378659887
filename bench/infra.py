"""The bench's machine: embedded PostgreSQL + the Temporal dev server + one worker process.

Everything on the embedded defaults of `make run` (embedded/run.py): PostgreSQL 18 with its
default durability, the dev server persisting to a SQLite file in WAL mode. Two differences,
both needed to measure and neither on the hot path: the dev server runs headless and with
`frontend.WorkflowTimeSkippingEnabled=true`, so the bench can move a case's clock to its due
date (`TimeSkipper.fast_forward`); the worker is a subprocess (bench/worker_proc.py) so its
RSS and CPU are its own and py-spy can attach to it.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
from temporalio.client import Client
from temporalio.testing import TimeSkipper, TimeSkippingConfig

from activities.migrate import migrate
from config import ROOT, Settings, connect_client
from embedded import DevServer, EmbeddedPostgres, find_free_port
from embedded.procs import die_with_parent
from workflows.contracts import SEARCH_ATTRIBUTES

TIME_SKIPPING_FLAG = ["--dynamic-config-value", "frontend.WorkflowTimeSkippingEnabled=true"]


def rss_bytes(pid: int, with_children: bool = True) -> int:
    """Resident set of a process (and, by default, its descendants) from /proc."""
    pids = [pid]
    if with_children:
        pids += _descendants(pid)
    total = 0
    for p in pids:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
        except OSError:
            pass
    return total


def _descendants(pid: int) -> list[int]:
    out: list[int] = []
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return out
    for c in children:
        out.append(int(c))
        out += _descendants(int(c))
    return out


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (own threads) in seconds."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def tree_cpu_seconds(pid: int | None) -> float:
    """CPU seconds (user + system) a process tree has used: each live process's own utime+stime
    plus cutime+cstime (children it has reaped, e.g. PostgreSQL backends that ended), summed
    over the process and its live descendants. 0.0 for a process that is gone."""
    if pid is None:
        return 0.0
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for p in [pid, *_descendants(pid)]:
        try:
            f = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(f[11]) + int(f[12]) + int(f[13]) + int(f[14])
    return total / ticks


def machine_cpu_ticks() -> tuple[int, int]:
    """(busy, total) clock ticks of all CPUs since boot, from /proc/stat (idle and iowait are not busy)."""
    f = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]  # guest is in user
    return sum(f) - f[3] - f[4], sum(f)


def peak_rss_bytes(pid: int) -> int:
    """The process's peak resident set since it started: VmHWM, but never below VmRSS.

    The kernel folds each thread's RSS counter into the process total lazily, so VmHWM can read a
    few pages below a VmRSS sampled just before it; the larger of the two is the honest peak."""
    hwm = rss = 0
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                hwm = int(line.split()[1]) * 1024
            elif line.startswith("VmRSS:"):
                rss = int(line.split()[1]) * 1024
    except OSError:
        pass
    return max(hwm, rss)


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


@dataclass
class WorkerProcess:
    """bench/worker_proc.py as a subprocess with its own settings."""

    env: dict[str, str]
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    async def start(self, timeout: float = 60.0) -> None:
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bench.worker_proc"],
            cwd=str(ROOT),
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=log,
            stdin=subprocess.DEVNULL,
            # dies with the bench, even when the bench is killed (as make run's workers do)
            preexec_fn=die_with_parent(),
        )
        log.close()
        assert self.proc.stdout is not None
        line = await asyncio.wait_for(asyncio.to_thread(self.proc.stdout.readline), timeout)
        if not line.startswith(b"READY"):
            await self.stop()
            raise RuntimeError(f"bench worker did not start; see {self.log_path}")

    async def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.to_thread(proc.wait, 30)
        except subprocess.TimeoutExpired:
            proc.kill()
            await asyncio.to_thread(proc.wait, 10)


class _DevServerNoWal(DevServer):
    """The dev server with SQLite's default journal (rollback), for the "before WAL" baseline."""

    def command(self, executable: str | None = None) -> list[str]:
        cmd = super().command(executable)
        i = cmd.index("journal_mode=wal")
        return cmd[: i - 1] + cmd[i + 1 :]


@dataclass
class BenchEnv:
    """Started by `start()`, torn down by `stop()`; `data_dir` is a fresh temp dir unless given."""

    data_dir: Path | None = None
    max_cached_workflows: int | None = None
    worker_env: dict[str, str] = field(default_factory=dict)
    baseline: frozenset[str] = frozenset()  # levers switched off: "no-wal", "no-passthrough", "partitions"
    devserver_args: list[str] = field(default_factory=list)  # bench.run --devserver-args
    # bench.run --pg-statements: PostgreSQL loads pg_stat_statements (its own small cost on every
    # statement), and each burst records the statements that used PostgreSQL's time
    pg_statements: bool = False
    # The dev server's own Prometheus endpoint (persistence calls per operation:
    # bench/promscrape.py); chosen at start unless --devserver-args names one.
    server_metrics_port: int | None = None
    # Worker processes: the first one's RSS, CPU and profile are the figures; the others are copies
    # (same settings, each with its own cache, all polling the same task queues: how a deployment
    # adds workers).
    worker_processes: int = 1
    more_workers: list[WorkerProcess] = field(default_factory=list)
    pg: EmbeddedPostgres | None = None
    dev: DevServer | None = None
    worker: WorkerProcess | None = None
    database_url: str = ""
    pool: asyncpg.Pool | None = None
    client: Client | None = None
    skipper: TimeSkipper | None = None
    _tmp: tempfile.TemporaryDirectory[str] | None = None

    async def start(self) -> None:
        if self.data_dir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="case-bench-")
            self.data_dir = Path(self._tmp.name)
            # the embedded PostgreSQL runs as an unprivileged user when we are root
            os.chmod(self.data_dir, 0o755)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.pg = EmbeddedPostgres(
            self.data_dir / "pg", find_free_port(),
            settings={"shared_preload_libraries": "pg_stat_statements"} if self.pg_statements else None,
        )
        self.database_url = await self.pg.start()
        server_cls = _DevServerNoWal if "no-wal" in self.baseline else DevServer
        metrics_args: list[str] = []
        if "--metrics-port" not in self.devserver_args:
            self.server_metrics_port = find_free_port()
            metrics_args = ["--metrics-port", str(self.server_metrics_port)]
        self.dev = server_cls(
            self.data_dir / "temporal.db",
            port=find_free_port(),
            headless=True,
            search_attributes=SEARCH_ATTRIBUTES,
            extra_args=[*TIME_SKIPPING_FLAG, *metrics_args, *self.devserver_args],
            # "partitions": the server's own default of 4 partitions per task queue
            dynamic_config={} if "partitions" in self.baseline else None,
        )
        await self.dev.start()
        conn = await asyncpg.connect(self.database_url)
        try:
            await migrate(conn)
            if self.pg_statements:
                await conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        finally:
            await conn.close()
        self.pool = await asyncpg.create_pool(self.database_url, min_size=2, max_size=20)
        settings = Settings(temporal_address=self.dev.address, database_url=self.database_url)
        base = await connect_client(settings, identity="bench-driver")
        # Workflows started through this client carry time skipping *disabled*: they run in
        # real time until the bench fast-forwards one of them.
        self.skipper = TimeSkipper(base, config=TimeSkippingConfig(enabled=False))
        self.client = self.skipper.client
        await self.start_worker(self.max_cached_workflows)

    def _worker_env(self, max_cached: int | None) -> dict[str, str]:
        assert self.dev is not None
        env = dict(os.environ)
        env.update(
            TEMPORAL_ADDRESS=self.dev.address,
            DATABASE_URL=self.database_url,
            PYTHONPATH=str(ROOT),
            BENCH_BASELINE=",".join(sorted(self.baseline)),
            **self.worker_env,
        )
        if max_cached is not None:
            env["WORKER_MAX_CACHED_WORKFLOWS"] = str(max_cached)
        return env

    async def start_worker(self, max_cached: int | None = None) -> None:
        assert self.data_dir is not None
        self.worker = WorkerProcess(self._worker_env(max_cached), self.data_dir / "worker.log")
        await self.worker.start()
        for i in range(2, self.worker_processes + 1):
            env = self._worker_env(max_cached)
            env.pop("METRICS_BIND", None)  # the first process's endpoint; another could not bind it
            more = WorkerProcess(env, self.data_dir / f"worker-{i}.log")
            self.more_workers.append(more)
            await more.start()

    def cpu_snapshot(self) -> dict[str, float]:
        """CPU seconds used so far by the worker processes, the dev server and PostgreSQL (process
        trees), and the machine's busy/total ticks: two snapshots give who used the cores between."""
        busy, total = machine_cpu_ticks()
        workers = [w for w in [self.worker, *self.more_workers] if w is not None and w.proc is not None]
        return {"t": time.monotonic(), "workers": sum(tree_cpu_seconds(w.pid) for w in workers),
                "dev_server": tree_cpu_seconds(self.dev.pid if self.dev else None),
                "postgres": tree_cpu_seconds(self.postmaster_pid), "machine_busy": busy, "machine_total": total}

    @staticmethod
    def cpu_between(a: dict[str, float], b: dict[str, float]) -> dict[str, float]:
        """Cores used on average between two snapshots, by process and for the whole machine."""
        wall = b["t"] - a["t"]
        out = {f"{k}_cores": round((b[k] - a[k]) / wall, 2) for k in ("workers", "dev_server", "postgres")}
        out["machine_busy_fraction"] = round((b["machine_busy"] - a["machine_busy"])
                                             / max(1, b["machine_total"] - a["machine_total"]), 3)
        out["seconds"] = round(wall, 1)
        return out

    async def pg_maintenance(self) -> dict[str, Any]:
        """PostgreSQL's own background work so far (PostgreSQL 18): autovacuum and autoanalyze runs
        and milliseconds per table, and checkpoints; two readings give what ran between."""
        assert self.pool is not None
        rows = await self.pool.fetch(
            "SELECT relname, autovacuum_count, autoanalyze_count, total_autovacuum_time, total_autoanalyze_time "
            "FROM pg_stat_user_tables")
        cp = await self.pool.fetchrow("SELECT num_timed, num_requested, write_time, sync_time FROM pg_stat_checkpointer")
        return {"tables": {r["relname"]: [r["autovacuum_count"], r["autoanalyze_count"],
                                          float(r["total_autovacuum_time"]), float(r["total_autoanalyze_time"])]
                           for r in rows},
                "checkpoints": int(cp["num_timed"] + cp["num_requested"]),
                "checkpoint_ms": float(cp["write_time"] + cp["sync_time"])}

    async def pg_statement_times(self) -> dict[str, Any] | None:
        """pg_stat_statements so far (None unless `pg_statements`): per statement, its text, calls
        and milliseconds of execution and planning."""
        if not self.pg_statements:
            return None
        assert self.pool is not None
        rows = await self.pool.fetch(
            "SELECT queryid, query, calls, total_exec_time, total_plan_time FROM pg_stat_statements")
        return {str(r["queryid"]): [r["query"], r["calls"], float(r["total_exec_time"]), float(r["total_plan_time"])]
                for r in rows}

    @staticmethod
    def pg_statements_between(a: dict[str, Any] | None, b: dict[str, Any] | None, top: int = 40) -> dict[str, Any] | None:
        """The statements that used PostgreSQL's time between two `pg_statement_times` readings,
        most first: [text (first 160 characters), calls, ms executing, ms planning]."""
        if a is None or b is None:
            return None
        rows = []
        for qid, (text, calls, ex, pl) in b.items():
            _, c0, e0, p0 = a.get(qid, [text, 0, 0.0, 0.0])
            if calls > c0:
                rows.append([" ".join(text.split())[:160], calls - c0, round(ex - e0, 1), round(pl - p0, 1)])
        rows.sort(key=lambda r: -(r[2] + r[3]))
        return {"total_ms": round(sum(r[2] + r[3] for r in rows), 1), "calls": sum(r[1] for r in rows),
                "top": rows[:top]}

    @staticmethod
    def pg_maintenance_between(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
        """What PostgreSQL ran in the background between two `pg_maintenance` readings: per table
        with any run, [autovacuums, autoanalyzes, autovacuum ms, autoanalyze ms]; checkpoints."""
        tables = {}
        for name, after in b["tables"].items():
            before = a["tables"].get(name, [0, 0, 0.0, 0.0])
            d = [after[0] - before[0], after[1] - before[1], round(after[2] - before[2]), round(after[3] - before[3])]
            if d[0] or d[1]:
                tables[name] = d
        return {"tables": tables, "autovacuum_ms": sum(d[2] for d in tables.values()),
                "autoanalyze_ms": sum(d[3] for d in tables.values()),
                "checkpoints": b["checkpoints"] - a["checkpoints"],
                "checkpoint_ms": round(b["checkpoint_ms"] - a["checkpoint_ms"])}

    @staticmethod
    def cpu_ms_per(a: dict[str, float], b: dict[str, float], n: int) -> dict[str, float]:
        """CPU milliseconds used between two snapshots per unit of work (`n` woken workflows), by
        process: unlike cores, it does not depend on how long the window stayed idle."""
        out = {k: round(1000 * (b[k] - a[k]) / max(1, n), 1) for k in ("workers", "dev_server", "postgres")}
        out["total"] = round(sum(out.values()), 1)
        return out

    async def stop_workers(self) -> None:
        for w in [*self.more_workers, self.worker]:
            if w is not None:
                await w.stop()
        self.more_workers = []

    async def restart_worker(self, max_cached: int | None) -> None:
        await self.stop_workers()
        await self.start_worker(max_cached)

    @property
    def worker_max_cached(self) -> int:
        assert self.worker is not None
        raw = self.worker.env.get("WORKER_MAX_CACHED_WORKFLOWS")
        return int(raw) if raw else Settings().max_cached_workflows

    @property
    def postmaster_pid(self) -> int | None:
        """The embedded PostgreSQL's postmaster (its backends are its children)."""
        assert self.data_dir is not None
        try:
            return int((self.data_dir / "pg" / "postmaster.pid").read_text().splitlines()[0])
        except (OSError, ValueError, IndexError):
            return None

    def sizes(self) -> dict[str, float]:
        """RSS of worker and dev server, and the dev server's SQLite files, in bytes."""
        assert self.worker is not None and self.dev is not None and self.dev.pid and self.data_dir
        sqlite = sum(p.stat().st_size for p in self.data_dir.glob("temporal.db*") if not p.name.endswith(".log"))
        return {
            "worker_rss": rss_bytes(self.worker.pid),
            "devserver_rss": rss_bytes(self.dev.pid),
            "devserver_sqlite_bytes": sqlite,
        }

    async def pg_bytes(self) -> dict[str, int]:
        assert self.pool is not None
        rows = await self.pool.fetch(
            """SELECT relname, pg_total_relation_size(c.oid) AS bytes FROM pg_class c
               JOIN pg_namespace n ON n.oid = c.relnamespace
               WHERE n.nspname = 'public' AND c.relkind = 'r'"""
        )
        out = {r["relname"]: int(r["bytes"]) for r in rows}
        out["_database"] = int(await self.pool.fetchval("SELECT pg_database_size(current_database())"))
        return out

    async def stop(self) -> None:
        try:
            await self.stop_workers()
            if self.pool is not None:
                await self.pool.close()
        finally:
            if self.dev is not None:
                await self.dev.stop()
            if self.pg is not None:
                await self.pg.stop()
            if self._tmp is not None:
                self._tmp.cleanup()


def now() -> float:
    return time.time()
