"""The benchmark's tiny scale runs end to end and produces every figure (no timing thresholds).

Keeps `python -m bench.run` working in CI: real embedded PostgreSQL, real dev server, the
worker subprocess, every scenario. Figures are checked for presence and sanity only (counts
add up, nothing failed, latencies ordered and non-negative); how fast is for the bench to print.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from bench.run import SCALES, SCENARIOS, run, table

pytestmark = pytest.mark.devserver


def _finite(x: object) -> bool:
    return isinstance(x, int | float) and math.isfinite(x)


def _sane_dist(d: dict, n: int) -> None:
    assert d["n"] == n
    assert all(_finite(d[k]) for k in ("p50", "p95", "p99", "max"))
    assert d["p50"] <= d["p95"] <= d["p99"] <= d["max"]


async def test_tiny_benchmark_produces_every_figure(tmp_path: Path) -> None:
    cfg = SCALES["tiny"]
    res = await run("tiny", set(SCENARIOS), profile_seconds=0, cache_values=None, out_dir=tmp_path)

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
    for label in ("lifecycle", "approval", "escalation lag", "filed/s", "RSS", "bytes per case", "replay", "ledger"):
        assert label in text
