"""The benchmark's tiny scale runs end to end and produces every figure (no timing thresholds).

Keeps `python -m bench.run` working in CI: real embedded PostgreSQL, real dev server, the
worker subprocess, every scenario. Figures are checked for presence and sanity only (counts
add up, nothing failed, latencies ordered and non-negative); how fast is for the bench to print.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from bench.run import SCALES, SCENARIOS, parse_worker_env, run, table
from config import Settings
from embedded import find_free_port

pytestmark = pytest.mark.devserver


def _finite(x: object) -> bool:
    return isinstance(x, int | float) and math.isfinite(x)


def _sane_dist(d: dict, n: int) -> None:
    assert d["n"] == n
    assert all(_finite(d[k]) for k in ("p50", "p95", "p99", "max"))
    assert d["p50"] <= d["p95"] <= d["p99"] <= d["max"]


async def test_tiny_benchmark_produces_every_figure(tmp_path: Path) -> None:
    cfg = SCALES["tiny"]
    # Two escalation rounds: as configured, then on two fresh worker processes without the sandbox.
    # The second round also reads the first process's SDK metrics (METRICS_BIND).
    metrics = f"METRICS_BIND=127.0.0.1:{find_free_port()}"
    second_spec = f"BENCH_WORKER_PROCESSES=2+WORKER_WORKFLOW_SANDBOX=false+{metrics}"
    res = await run("tiny", set(SCENARIOS), profile_seconds=0, cache_values=None, out_dir=tmp_path,
                    escalation_rounds=["", second_spec], pg_statements=True)

    lc = res["lifecycle"]
    for side in ("engine", "floor"):
        assert lc[side]["completed"] == cfg["lifecycle"] and not lc[side]["failures"]
        assert lc[side]["per_minute"] > 0
    assert lc["ratio"] > 0
    eng, flo = lc["shape"]["engine"], lc["shape"]["floor"]
    for k in ("updates", "activities", "timers_started", "timers_fired"):
        assert eng[k] == flo[k], f"the floor's {k} differ from the case's: {eng} vs {flo}"

    assert [lat["open_cases"] for lat in res["latency"]] == cfg["open"]
    for lat in res["latency"]:
        n = int(cfg["rate"] * cfg["latency_seconds"])
        assert not lat["errors"] and not lat["floor"]["errors"]
        _sane_dist(lat, n)
        _sane_dist(lat["floor"], n)

    esc = res["escalation"]
    assert esc["k"] == cfg["k"] == esc["escalated"]
    assert esc["notices"] > 0 and esc["notices_delivered"] == esc["notices"]
    _sane_dist(esc["floor"]["wake_lag"], cfg["k"])
    for name in ("wake_lag", "ledger_lag"):
        _sane_dist(esc[name], cfg["k"])
    _sane_dist(esc["outbox_lag"], esc["notices"])
    # All K deadlines were moved to one wall-clock moment before it came.
    assert not esc["ff_finished_after_due"] and not esc["floor"]["ff_finished_after_due"]
    assert esc["ledger_lag"]["p50"] > -0.5 and esc["floor"]["wake_lag"]["p50"] > -0.5
    first, second = res["escalation_rounds"]
    # The first round runs on as many worker processes as `make run` starts here (one per core).
    assert first is esc and first["worker_processes"] == Settings.from_env().worker_process_count
    assert second["worker_processes"] == 2
    assert second["worker_env"] == second_spec
    assert second["escalated"] == cfg["k"] and second["notices_delivered"] == second["notices"] > 0
    for r in (first, second):
        assert r["cpu"]["seconds"] > 0 and r["cpu"]["workers_cores"] > 0 and r["cpu"]["dev_server_cores"] > 0
        # CPU per woken workflow, both sides: the parts add up, and each side's processes worked
        for cm in (r["cpu_ms_per_workflow"], r["floor"]["cpu_ms_per_workflow"]):
            assert cm["workers"] > 0 and cm["dev_server"] > 0 and cm["postgres"] >= 0
            assert abs(cm["total"] - (cm["workers"] + cm["dev_server"] + cm["postgres"])) < 0.2
        # --pg-statements: the burst's statements, the engine's own ledger rows among them (one
        # ESCALATED row per woken case, written in the woken task)
        st = r["postgres_statements"]
        ledger_rows = sum(row[1] for row in st["top"] if row[0].startswith("INSERT INTO ledger"))
        assert ledger_rows >= cfg["k"] and st["calls"] >= ledger_rows and st["total_ms"] > 0
        # PostgreSQL's background work in the same windows: counts and times never negative
        for bg in (r["postgres_background"], r["floor"]["postgres_background"]):
            assert bg["checkpoints"] >= 0 and bg["autovacuum_ms"] >= 0 and bg["autoanalyze_ms"] >= 0
            assert all(d[0] >= 0 and d[1] >= 0 and (d[0] or d[1]) for d in bg["tables"].values())
        # The lag split into phases from every workflow's own history.
        for side, phases in (("cases", r["phases"]), ("floor", r["floor"]["phases"])):
            assert phases["workflows"] == cfg["k"], side
            for name in ("timer", "wft_queue", "wft_run"):
                _sane_dist(phases[name], cfg["k"])
                assert phases[name]["p50"] > -0.5, (side, name)
        # Issue 9 (lag): every woken case wrote its ledger rows inside its woken task (a local
        # activity), with no scheduled activity to wait for.
        assert r["phases"]["clock_in_task"] == cfg["k"] and "activity_run" not in r["phases"], r["phases"]
        assert r["floor"]["phases"]["clock_in_task"] == 0
        # Who last ran each woken case before the burst, and where its woken task went first: the
        # cases were filed by the ramp's worker; the second round runs on fresh processes.
        ran_by, first_queue = r["phases"]["ran_before_by"], r["phases"]["first_queue"]
        assert sum(ran_by.values()) == cfg["k"] and sum(first_queue.values()) == cfg["k"], r["phases"]
        assert r["phases"]["ran_before_seconds"]["p50"] > 0
        assert len(r["worker_pids"]) == r["worker_processes"]
        if r is second:  # nothing of the second round's own processes ran these cases before it
            assert not {f":{pid}" for pid in r["worker_pids"]} & {k[k.rfind(":"):] for k in ran_by}, ran_by
        # The dev server's own count of its persistence work over each burst.
        # Each woken workflow's timer firing alone is one UpdateWorkflowExecution.
        for side, x in (("cases", r), ("floor", r["floor"])):
            sv, sm = x["server"], x["server_metrics"]
            assert sm.get("persistence_requests[UpdateWorkflowExecution]", 0) >= cfg["k"], (side, sm)
            assert sv["persistence_calls_per_workflow"] > 0 and sv["top_operations"], (side, sv)
            assert all(o["per_workflow"] > 0 for o in sv["top_operations"]), (side, sv)
    assert "worker_metrics" not in first
    wm = second["worker_metrics"]  # only the first of the two processes: at least its share of the burst
    assert wm["workflow_task_execution_latency"]["n"] > 0
    assert wm["request_latency[RespondWorkflowTaskCompleted]"]["mean_seconds"] > 0

    (st,) = res["scale"]
    assert st["added"] == cfg["open"][-1] and not st["transfer_errors"]
    assert st["filed_per_s"] > 0 and st["transfers_per_s"] > 0
    assert st["worker_rss"] > 0 and st["devserver_rss"] > 0 and st["pg_bytes_per_case"] > 0

    assert [c["max_cached_workflows"] for c in res["cache"]] == cfg["cache_values"]
    assert all(c["worker_rss"] > 0 for c in res["cache"])

    for runner in ("sandboxed", "unsandboxed"):
        r = res["replay"][runner]
        assert r["histories"] == cfg["lifecycle"] and r["failures"] == 0 and r["histories_per_s"] > 0
    par = res["replay"]["unsandboxed_parallel"]
    assert par["histories"] == cfg["lifecycle"] and par["failures"] == 0 and par["histories_per_s_steady"] > 0

    lg = res["ledger"]
    assert lg["rows"] == cfg["ledger_rows"] and lg["activity_rows_per_s"] > 0 and lg["copy_rows_per_s"] > 0

    assert res["worker_log"]["problems"] == 0, res["worker_log"]["examples"]
    text = table(res)
    for label in ("lifecycle", "approval", "escalation lag", "task queued", "filed/s", "RSS", "bytes per case", "replay",
                  "ledger"):
        assert label in text


async def test_cost_workload_runs_every_system_on_fresh_data(tmp_path: Path) -> None:
    """bench.cost at a tiny scale: engine, minimal floor and history-shaped floor each complete the
    workload on their own data and worker, and every figure of the table is there."""
    from bench.cost import PROCS, SYSTEMS
    from bench.cost import run as run_cost
    from bench.cost import table as cost_table

    cfg = dict(n=2, concurrency=50, m=6, k=3, rate=5.0)
    res = await run_cost("tiny", list(SYSTEMS), None, cfg)
    for name in SYSTEMS:
        s = res["systems"][name]
        lc, ap = s["lifecycle"], s["approval"]
        assert lc["completed"] == cfg["n"] and not lc["failures"], lc["failures"]
        assert lc["cases_per_s"] > 0
        cpu = lc["cpu"]["seconds"]
        assert all(_finite(cpu[p]) and cpu[p] >= 0 for p in PROCS)
        assert cpu["worker"] > 0 and cpu["devserver"] > 0  # each process did work for this system
        assert ap["error_count"] == 0, ap["errors"]
        _sane_dist(ap["latency_ms"], cfg["k"])
        assert ap["latency_ms"]["p50"] > 0  # counted from the scheduled instant: never negative
        assert ap["file_settled_s"] >= ap["file_accepted_s"] > 0
        assert s["worker_peak_rss"] >= ap["worker_rss_open"] > 0
        assert s["worker_log"]["problems"] == 0, s["worker_log"]["examples"]
    # the engine wrote its ledger (PostgreSQL CPU), the history-shaped floor has no database
    assert res["systems"]["engine"]["lifecycle"]["cpu"]["seconds"]["postgres"] > 0
    text = cost_table(res)
    for label in ("lifecycle cases/s", "CPU ms per case", "of which postgres", "approval p99", "peak RSS"):
        assert label in text
    for name in SYSTEMS:
        assert name in text.splitlines()[0]


def test_speedscope_summary_counts_own_and_inclusive_time(tmp_path: Path) -> None:
    """The profile summary of the cost bench reads py-spy's speedscope format."""
    import json

    from bench.cost import summarise_speedscope
    from config import ROOT

    doc = {
        "shared": {"frames": [
            {"name": "run", "file": "/x/runner.py", "line": 1},
            {"name": "decide", "file": str(ROOT / "domain" / "decide.py"), "line": 10},
            {"name": "select", "file": "/x/selectors.py", "line": 5},
        ]},
        "profiles": [
            {"type": "sampled", "samples": [[0, 1], [0, 1], [0, 2], []], "weights": [0.02, 0.02, 0.04, 0.02]},
        ],
    }
    p = tmp_path / "p.speedscope.json"
    p.write_text(json.dumps(doc))
    s = summarise_speedscope(p)
    assert s["samples"] == 3
    own = {f["frame"].split(" ")[0]: f["pct"] for f in s["top_own"]}
    assert own == {"decide": 50.0, "select": 50.0}
    incl = {f["frame"].split(" ")[0]: f["pct"] for f in s["top_inclusive"]}
    assert incl["run"] == 100.0
    assert s["stacks_through_pct"] == {"domain/": 50.0}


def test_escalation_round_settings_are_parsed_or_refused_naming_the_part() -> None:
    assert parse_worker_env("") == {}
    assert parse_worker_env("WORKER_WORKFLOW_SANDBOX=false+BENCH_WORKER_PROCESSES=2") == {
        "WORKER_WORKFLOW_SANDBOX": "false", "BENCH_WORKER_PROCESSES": "2"}
    for bad, named in (("sandbox=false", "sandbox=false"), ("WORKER_X", "WORKER_X"),
                       ("BENCH_WORKER_PROCESSES=0", "BENCH_WORKER_PROCESSES")):
        with pytest.raises(ValueError, match=named):
            parse_worker_env(bad)
