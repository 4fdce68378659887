"""Worker processes for the deploy tests: `python worker.py` as a subprocess, like a container runs it."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

from config import ROOT


class WorkerProcess:
    """One `python worker.py` with its own environment; stderr (JSON logs) goes to a file."""

    def __init__(self, name: str, env: Mapping[str, str], log_dir: Path, args: list[str] | None = None) -> None:
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        full = {k: v for k, v in os.environ.items() if not k.startswith(("TEMPORAL_", "PAYLOAD_", "METRICS_"))}
        full.update({"LOG_JSON": "true", "PYTHONUNBUFFERED": "1"})
        full.update(env)
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [sys.executable, *(args or [str(ROOT / "worker.py")])], cwd=ROOT, env=full,
            stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True,
        )

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def identity(self) -> str:
        return f"case-worker@{socket.gethostname()}:{self.pid}"

    def lines(self) -> list[dict]:
        out = []
        for raw in self.log_path.read_bytes().splitlines():
            try:
                out.append(json.loads(raw))
            except ValueError:
                continue  # a non-JSON line (e.g. a crash trace) is not ours to parse
        return out

    def has_logged(self, event: str) -> bool:
        return any(line.get("event") == event for line in self.lines())

    def wait_logged(self, event: str, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.has_logged(event):
                return
            if self.proc.poll() is not None:
                raise AssertionError(f"{self.name} exited ({self.proc.returncode}):\n{self.tail()}")
            time.sleep(0.1)
        raise AssertionError(f"{self.name} did not log {event!r} within {timeout} s:\n{self.tail()}")

    def tail(self, n: int = 4000) -> str:
        return self.log_path.read_bytes()[-n:].decode("utf-8", "replace")

    def kill(self) -> None:
        """SIGKILL: the machine died; nothing runs on the way out."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=30)
        self._log.close()

    def stop(self, timeout: float = 30.0) -> int | None:
        """SIGTERM, as an orchestrator stops a container; SIGKILL after `timeout`."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self._log.close()
        return self.proc.returncode
