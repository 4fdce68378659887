"""The README's first command: `python -m embedded.run` starts, files the samples, stops, resumes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from embedded import find_free_port
from embedded.procs import pid_alive

pytestmark = pytest.mark.devserver

ROOT = Path(__file__).resolve().parents[2]


def _run_until_ready(env: dict[str, str], log: Path, timeout: float = 120.0) -> subprocess.Popen[bytes]:
    fh = log.open("wb")
    proc = subprocess.Popen([sys.executable, "-m", "embedded.run"], cwd=ROOT, env=env, stdout=fh, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if "Press Ctrl-C to stop." in log.read_text(errors="replace"):
            return proc
        if proc.poll() is not None:
            break
        time.sleep(0.5)
    proc.kill()
    raise AssertionError(f"run command did not become ready:\n{log.read_text(errors='replace')[-3000:]}")


def _interrupt(proc: subprocess.Popen[bytes]) -> int:
    proc.send_signal(signal.SIGINT)
    return proc.wait(timeout=60)


def test_run_command_files_the_samples_stops_cleanly_and_continues_with_the_same_data(tmp_path: Path) -> None:
    """First run files 27 sample cases; Ctrl-C exits 0; the second run finds them already filed."""
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "TEMPORAL_ADDRESS")}
    env.update(
        CASE_ENGINE_DATA_DIR=str(tmp_path / "data"),
        EMBEDDED_PG_PORT=str(find_free_port()),
        EMBEDDED_TEMPORAL_PORT=str(find_free_port()),
        EMBEDDED_TEMPORAL_UI_PORT=str(find_free_port()),
        NOTICE_POLL_SECONDS="1",
        CONSOLE_PORT=str(find_free_port()),
        PUBLIC_PORT=str(find_free_port()),
        WORKER_PROCESSES="2",  # its own worker and one child (the default: one per core)
        HEALTH_BIND=f"127.0.0.1:{_two_free_ports()}",  # the child serves on the next port
    )
    first = _run_until_ready(env, tmp_path / "run1.log")
    try:
        _log_in_to_the_console(env["CONSOLE_PORT"], (tmp_path / "run1.log").read_text())
        _public_site_shows_the_sample_programme(env["PUBLIC_PORT"], (tmp_path / "run1.log").read_text())
        _every_worker_process_serves_its_health(env["HEALTH_BIND"], (tmp_path / "run1.log").read_text())
    finally:
        assert _interrupt(first) == 0
    out1 = (tmp_path / "run1.log").read_text()
    workers = next(line for line in out1.splitlines() if line.strip().startswith("workers:"))
    assert "2 process(es)" in workers, workers
    child = int(workers.split("),")[1].split()[0])
    assert child != first.pid and not pid_alive(child), "the child worker stopped with the run"
    assert "27 filed, 5 refused" in out1
    assert "programme R2-XXCITY: created (17 cases)" in out1
    assert "FB-09: filed" in out1 and "PT-01: refused: PT-01: PETITION_BATCH_AGGREGATE is an aggregate" in out1
    assert f"http://127.0.0.1:{env['EMBEDDED_TEMPORAL_UI_PORT']}" in out1
    assert out1.rstrip().endswith("stopped.")
    console_url = f"http://127.0.0.1:{env['CONSOLE_PORT']}/"
    assert f"Console:       {console_url}" in out1 and "DEMO logins" in out1
    office_login = next(line for line in out1.splitlines() if line.strip().startswith("office "))
    assert "整改办" in office_login and "demo-" in office_login
    assert "sthj" in out1 and "auditor" in out1

    second = _run_until_ready(env, tmp_path / "run2.log")
    assert _interrupt(second) == 0
    out2 = (tmp_path / "run2.log").read_text()
    assert "0 filed, 32 refused" in out2
    assert "programme R2-XXCITY: programme R2-XXCITY already exists" in out2
    assert office_login in out2, "the demo users are kept, with the same logins"
    assert "FB-09: refused: case number FB-09 is already filed" in out2
    assert _processes_mentioning(str(tmp_path / "data")) == [], "no postgres or temporal process is left"


def _two_free_ports() -> int:
    """A port p with p + 1 free too (make run's worker and its child)."""
    import socket

    for _ in range(50):
        p = find_free_port()
        try:
            with socket.socket() as s:
                s.bind(("127.0.0.1", p + 1))
            return p
        except OSError:
            continue
    raise AssertionError("no two consecutive free ports")


def _every_worker_process_serves_its_health(bind: str, out: str) -> None:
    """HEALTH_BIND: the run's worker on its port, the child on the next; both printed, both healthy."""
    import json
    import urllib.request

    host, port = bind.rsplit(":", 1)
    binds = [f"{host}:{port}", f"{host}:{int(port) + 1}"]
    for n, b in enumerate(binds, start=1):
        assert f"worker {n}:      health {b}" in out, out[-2000:]
    deadline = time.monotonic() + 60
    for b in binds:
        while True:
            try:
                with urllib.request.urlopen(f"http://{b}/healthz", timeout=5) as r:
                    body = json.loads(r.read())
                    assert r.status == 200 and body["status"] == "ok", body
                    break
            except OSError:
                assert time.monotonic() < deadline, f"no /healthz on {b}"
                time.sleep(0.5)


def _log_in_to_the_console(port: str, out: str) -> None:
    """The printed demo login of the office opens the console, whose 我的待办 lists the samples."""
    import re

    import httpx

    password = next(line.split()[1] for line in out.splitlines() if line.strip().startswith("office "))
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
        page = http.get("/login")
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text)[1]  # type: ignore[index]
        r = http.post("/login", data={"username": "office", "password": password, "csrf_token": csrf})
        assert r.status_code == 303, r.text
        for _ in range(50):  # the worker writes each new case's projection just after filing
            my = http.get("/my")
            assert my.status_code == 200
            if "FB-09" in my.text:
                break
            time.sleep(0.2)
        assert "FB-09" in my.text, "the office sees the filed samples waiting for transfer"
        for _ in range(100):  # issue 13: the programme of the sample city items counts its 17 cases
            prog = http.get("/programmes/R2-XXCITY")
            if prog.status_code == 200 and 'data-testid="programme-total">17<' in prog.text:
                break
            time.sleep(0.2)
        assert prog.status_code == 200 and 'data-testid="programme-total">17<' in prog.text
        assert "蓝山县" in prog.text and "六个月整改落实情况报告" in prog.text
        # ... with this month's dispatch report (started by the run command) and its Schedule
        from datetime import UTC, datetime

        from domain.dispatch import period_of

        month = str(period_of(datetime.now(UTC)))
        for _ in range(150):
            disp = http.get("/programmes/R2-XXCITY/dispatch")
            if disp.status_code == 200 and f"/programmes/R2-XXCITY/dispatch/{month}" in disp.text:
                break
            time.sleep(0.2)
        assert f"/programmes/R2-XXCITY/dispatch/{month}" in disp.text, disp.text[-2000:]
        assert "每月 5 日" in disp.text  # the Schedule the programme made on the policy's day
        stats = http.get("/statistics")
        assert stats.status_code == 200 and "红黄绿灯" in stats.text


def _public_site_shows_the_sample_programme(port: str, out: str) -> None:
    """Issue 14: the public site, printed at startup, shows R2-XXCITY's rectification list without a login."""
    import httpx

    url = f"http://127.0.0.1:{port}/"
    assert f"Public site:   {url}" in out and f"{url}p/R2-XXCITY" in out
    with httpx.Client(base_url=url, timeout=30) as http:
        assert "R2-XXCITY" in http.get("/").text
        page = http.get("/p/R2-XXCITY")
        assert page.status_code == 200 and "整改清单" in page.text and "FB-01" in page.text
        assert "set-cookie" not in page.headers
        assert http.get("/login").status_code == 404  # none of the console's routes


def _processes_mentioning(text: str) -> list[str]:
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            state = next(line for line in (proc / "status").read_text().splitlines() if line.startswith("State:"))
        except (OSError, StopIteration):
            continue
        if text in cmdline and "zombie" not in state:
            found.append(cmdline)
    return found
