"""What one workflow activation of a case costs in our code, by case size (issue 9).

A case workflow's activation runs `domain.decide` on the case state. Until issue 9 every decision
began with `state.model_copy(deep=True)` (a pydantic `__deepcopy__` of the whole CaseState: the
filing, the policy, up to 500 timeline entries, ...). This measures, for cases of growing size
(ledger rows so far = history length; the timeline keeps at most `policy.max_timeline_entries`):

- `copy`: the working copy alone, old (deep) and new (copy-on-write, `decide._working_copy`);
- `decide`: one handler action (REPORT_PROGRESS, a ledger row + 3 notices) decided on that state,
  with the old deep copy and with the new working copy;
- `under N threads`: the same decision while N threads decide concurrently, as the SDK runs
  activations in a thread pool under one GIL. The SDK's deadlock detector measures the *wall*
  time of an activation, so on a loaded 2-core machine a decision of C ms CPU takes about
  N x C ms of wall time when N activations are runnable: that is how 40 ms of deep copy became
  over 2 s (TMPRL1101) in `../shared/evidence/worker-stall/`.

Figures are printed and written as JSON (never asserted). Usage:

    .venv/bin/python -m bench.activation [--sizes 10,100,500,2000] [--repeat 200]
        [--threads 8] [--json bench/measured/activation.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import domain.decide as d
from bench.common import OFFICE, RU, filing
from domain.enums import Action
from domain.model import ActionRequest, CaseState
from domain.policy import Policy

NOW = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)  # a Monday, 10:00 in Asia/Shanghai


def _deep(state: CaseState) -> CaseState:
    return state.model_copy(deep=True)


def _settle(dec: d.Decision, now: datetime) -> CaseState:
    if dec.deadline_request is None:
        return dec.state
    from activities.calendar_source import load_calendar
    from domain.deadlines import compute_deadline

    computed = compute_deadline(dec.deadline_request, load_calendar(None), now)
    return d.apply_deadline(dec.state, computed, now).state


def _req(action: Action, actor: Any, i: int) -> ActionRequest:
    return ActionRequest(action=action, actor=actor, request_id=f"bench-{action.value}-{i}", reason="进展")


def case_of_size(rows: int) -> CaseState:
    """A rectifying case with `rows` ledger rows (FILED, TRANSFER, ACKNOWLEDGE, progress reports)."""
    s = d.new_case(filing("ACT-1"), Policy(), NOW, OFFICE).state
    s = _settle(d.decide(s, _req(Action.TRANSFER, OFFICE, 0), NOW), NOW)
    s = _settle(d.decide(s, _req(Action.ACKNOWLEDGE, RU, 0), NOW), NOW)
    i = 0
    while s.seq < rows:
        i += 1
        s = d.decide(s, _req(Action.REPORT_PROGRESS, RU, i), NOW + timedelta(seconds=i)).state
    return s


def _percentiles(xs: list[float]) -> dict[str, float]:
    xs = sorted(xs)
    pick = lambda q: xs[min(len(xs) - 1, int(q * len(xs)))]  # noqa: E731
    return {"p50": round(pick(0.5), 3), "p99": round(pick(0.99), 3), "mean": round(statistics.fmean(xs), 3)}


def _time(fn: Callable[[], object], repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t) * 1000)
    return out


def _decide_with(copier: Callable[[CaseState], CaseState], state: CaseState, i: int) -> d.Decision:
    real = d._working_copy
    d._working_copy = copier  # type: ignore[assignment]
    try:
        return d.decide(state, _req(Action.REPORT_PROGRESS, RU, 10**6 + i), NOW + timedelta(days=1))
    finally:
        d._working_copy = real  # type: ignore[assignment]


def _threaded(copier: Callable[[CaseState], CaseState], state: CaseState, threads: int, per_thread: int) -> list[float]:
    """Wall ms per decision while `threads` threads decide at once (one GIL)."""
    times: list[float] = []
    lock = threading.Lock()
    start = threading.Barrier(threads)
    later = NOW + timedelta(days=1)

    def work(k: int) -> None:
        start.wait()
        mine = []
        for i in range(per_thread):
            req = _req(Action.REPORT_PROGRESS, RU, 10**7 + k * 10**4 + i)
            t = time.perf_counter()
            d.decide(state, req, later)
            mine.append((time.perf_counter() - t) * 1000)
        with lock:
            times.extend(mine)

    real = d._working_copy
    d._working_copy = copier  # type: ignore[assignment]
    try:
        ts = [threading.Thread(target=work, args=(k,)) for k in range(threads)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
    finally:
        d._working_copy = real  # type: ignore[assignment]
    return times


def run(sizes: list[int], repeat: int, threads: int) -> dict[str, Any]:
    rows = []
    for n in sizes:
        s = case_of_size(n)
        # The two copies must give byte-identical decisions.
        a = _decide_with(_deep, s, 1).model_dump_json()
        b = _decide_with(d._working_copy, s, 1).model_dump_json()
        assert a == b, "copy-on-write decision differs from the deep-copy decision"
        row: dict[str, Any] = {
            "ledger_rows": s.seq,
            "timeline_entries": len(s.timeline),
            "state_json_bytes": len(s.model_dump_json()),
            "copy_deep_ms": _percentiles(_time(lambda s=s: _deep(s), repeat)),
            "copy_cow_ms": _percentiles(_time(lambda s=s: d._working_copy(s), repeat)),
            "decide_deep_ms": _percentiles(_time(lambda s=s: _decide_with(_deep, s, 2), repeat)),
            "decide_cow_ms": _percentiles(_time(lambda s=s: _decide_with(d._working_copy, s, 3), repeat)),
        }
        if threads > 1:
            per = max(3, repeat // threads)
            row[f"decide_deep_ms_{threads}_threads"] = _percentiles(_threaded(_deep, s, threads, per))
            row[f"decide_cow_ms_{threads}_threads"] = _percentiles(_threaded(d._working_copy, s, threads, per))
        rows.append(row)
        print(_line(row, threads), flush=True)
    return {
        "what": "per-decision cost of domain.decide by case size, deep copy (before issue 9) vs copy-on-write",
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "load_avg": os.getloadavg(),
        "cpus": os.cpu_count(),
        "python": sys.version.split()[0],
        "threads": threads,
        "repeat": repeat,
        "rows": rows,
    }


HEADER = "ledger rows | timeline | state KiB | copy deep p50/p99 | copy CoW p50/p99 | decide deep p50/p99 | decide CoW p50/p99 | {t} threads: deep p50/p99 | CoW p50/p99 (ms)"


def _line(r: dict[str, Any], threads: int) -> str:
    f = lambda k: f"{r[k]['p50']:.2f}/{r[k]['p99']:.2f}" if k in r else "-"  # noqa: E731
    return (
        f"{r['ledger_rows']:>11} | {r['timeline_entries']:>8} | {r['state_json_bytes'] / 1024:>9.1f} | "
        f"{f('copy_deep_ms'):>17} | {f('copy_cow_ms'):>16} | {f('decide_deep_ms'):>19} | {f('decide_cow_ms'):>18} | "
        f"{f(f'decide_deep_ms_{threads}_threads'):>20} | {f(f'decide_cow_ms_{threads}_threads')}"
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", default="10,100,500,2000", help="ledger rows per case, comma-separated")
    p.add_argument("--repeat", type=int, default=200)
    p.add_argument("--threads", type=int, default=8)
    p.add_argument("--json", default="")
    a = p.parse_args(argv)
    print(f"load average {os.getloadavg()}; {os.cpu_count()} cpus")
    print(HEADER.format(t=a.threads))
    result = run([int(x) for x in a.sizes.split(",")], a.repeat, a.threads)
    if a.json:
        with open(a.json, "w") as fh:
            json.dump(result, fh, indent=1, ensure_ascii=False)
        print(f"written {a.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
