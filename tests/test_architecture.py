"""Layering rules as tests: domain/ stays pure, workflows/ stays deterministic."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOMAIN_FORBIDDEN = {"temporalio", "asyncpg", "structlog", "aiosmtplib", "workflows", "activities",
                    "embedded", "config", "chinese_calendar", "os", "socket", "subprocess", "random"}
WORKFLOW_FORBIDDEN = {"asyncpg", "aiosmtplib", "activities", "embedded", "chinese_calendar", "random",
                      "subprocess", "socket"}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("path", sorted((ROOT / "domain").glob("*.py")), ids=lambda p: p.name)
def test_domain_modules_import_no_io_or_temporal(path: Path) -> None:
    """domain/ is pure: no Temporal, database, logging, network or process imports."""
    assert _imports(path) & DOMAIN_FORBIDDEN == set()


@pytest.mark.parametrize("name", ["case_workflow.py", "case_logic.py", "case_fanout.py", "case_clock.py", "activity_options.py"])
def test_the_case_workflow_imports_no_io(name: str) -> None:
    """The workflow modules reach the world only through activities, by name (case_logic.py is
    passed through the sandbox, so this test, the replay suite and review are its only guard)."""
    assert _imports(ROOT / "workflows" / name) & WORKFLOW_FORBIDDEN == set()


def test_domain_never_reads_the_clock() -> None:
    """Time is an argument of every domain function: no datetime.now()/today() in domain/."""
    for path in (ROOT / "domain").glob("*.py"):
        text = path.read_text(encoding="utf-8")
        for call in ("datetime.now(", "date.today(", "datetime.utcnow(", "time.time("):
            assert call not in text, f"{path.name} calls {call}"


def test_no_merge_conflict_markers_are_committed() -> None:
    """A merge left unresolved (markers at the start of a line) in any source, template or doc."""
    import re

    marker = re.compile(r"^(<{7} |={7}$|>{7} )", re.M)
    skip = {".venv", ".git", "node_modules", "__pycache__"}
    bad = []
    for path in ROOT.rglob("*"):
        if path.suffix not in {".py", ".md", ".html", ".sql", ".toml", ".yaml", ".yml", ".css", ".cfg"} \
                or skip & set(path.relative_to(ROOT).parts) or not path.is_file():
            continue
        if marker.search(path.read_text(errors="replace")):
            bad.append(str(path.relative_to(ROOT)))
    assert not bad, f"unresolved merge conflict markers in: {bad}"
