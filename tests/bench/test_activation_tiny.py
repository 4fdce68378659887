"""bench/activation.py runs at tiny scale and produces its figures (never timed)."""

from __future__ import annotations

from bench.activation import case_of_size, run


def test_activation_bench_produces_every_figure_and_identical_decisions() -> None:
    result = run([10, 60], repeat=3, threads=2)  # run() itself checks deep and CoW decide alike
    assert [r["ledger_rows"] for r in result["rows"]] == [10, 60]
    for r in result["rows"]:
        for key in ("copy_deep_ms", "copy_cow_ms", "decide_deep_ms", "decide_cow_ms",
                    "decide_deep_ms_2_threads", "decide_cow_ms_2_threads"):
            assert set(r[key]) == {"p50", "p99", "mean"}
    assert len(case_of_size(40).timeline) == 40
