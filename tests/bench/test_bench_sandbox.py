"""bench.sandbox runs: each runner replays each history shape (figures printed, never asserted)."""

from __future__ import annotations

from bench.sandbox import measure, table


async def test_the_sandbox_bench_replays_every_shape_with_every_runner() -> None:
    res = await measure(repeat=2, rounds=1)
    assert set(res["shapes"]) == {"first task", "happy_path", "escalation_clock_ledger"}
    for shape in res["shapes"].values():
        assert set(shape["cpu_ms_per_history"]) == {"sdk", "worker", "unsandboxed"}
        assert all(ms > 0 for ms in shape["cpu_ms_per_history"].values())
        assert shape["workflow_tasks"] >= 1
    assert table(res).count("\n") == 4
