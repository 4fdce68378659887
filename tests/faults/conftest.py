"""Scale of the fault tests and their report.

`make test` runs the short version (few cases, short outages). `make faults` sets FAULTS=long:
200 cases per fault, a 30 s database outage, more property-test examples. Every fault test
adds a line saying what was injected, how many cases were in flight and what was lost; the lines
are printed at the end of the run and written to `$FAULTS_REPORT` when that is set.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pytest

LONG = os.environ.get("FAULTS") == "long"


@dataclass(frozen=True)
class Scale:
    cases: int
    outage_seconds: float
    settle_seconds: float


SCALE = Scale(cases=200, outage_seconds=30, settle_seconds=900) if LONG else Scale(
    cases=12, outage_seconds=6, settle_seconds=300)

_LINES: list[str] = []


@pytest.fixture
def fault_report():
    """Call with a FaultReport (or a line) to have it printed in the run's summary."""
    def add(report) -> None:
        line = report if isinstance(report, str) else report.line()
        _LINES.append(line)
        print(line, flush=True)
    return add


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    if not _LINES:
        return
    terminalreporter.section("faults injected (issue 11)")
    for line in _LINES:
        terminalreporter.write_line(line)
    if out := os.environ.get("FAULTS_REPORT"):
        Path(out).write_text("\n".join(_LINES) + "\n", encoding="utf-8")
