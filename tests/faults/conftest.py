"""Scale of the fault tests and their report.

`make test` runs the short version (few cases, short outages). `make faults` sets FAULTS=long:
200 cases per fault, a 30 s database outage, more property-test examples. Every fault test
adds a line saying what was injected, how many cases were in flight and what was lost; the lines
are printed at the end of the run and appended to `$FAULTS_REPORT` (when set) as they come.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

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
        if out := os.environ.get("FAULTS_REPORT"):  # at once: a run cut short keeps its lines
            with open(out, "a", encoding="utf-8") as fh:
                fh.write(line + "\n")
    return add


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    if not _LINES:
        return
    terminalreporter.section("faults injected (issue 11)")
    for line in _LINES:
        terminalreporter.write_line(line)
