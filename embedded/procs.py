"""Keep embedded servers from outliving the process that started them.

Two mechanisms, used together by :mod:`embedded.postgres` and :mod:`embedded.temporal_server`:

* **Die with the parent** (Linux ``prctl(PR_SET_PDEATHSIG)``): the server process gets a signal
  from the kernel the moment its parent goes away, even after a ``kill -9`` of the parent.
  The kernel ties this to the parent *thread* that forked the child, so it is only set when the
  server is spawned from the main thread (which lives as long as the process); a server started
  from another thread (``asyncio.to_thread``, an executor) relies on the pid file below. It is set
  in ``preexec_fn``, which runs after the user switch (a credential change clears it), and the
  child checks that its parent did not die before the setting took effect.
* **Pid file**: every server we start is recorded (pid and kernel start time, so a recycled pid
  is never mistaken for it); the next start finds a leftover server by that file and stops it
  before starting a new one (instead of failing on a taken port).
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

__all__ = [
    "die_with_parent",
    "pid_alive",
    "process_start_time",
    "read_pid_file",
    "stop_leftover",
    "write_pid_file",
]

logger = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1


def _libc_prctl() -> Callable[..., int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


_PRCTL = _libc_prctl()


def die_with_parent(sig: signal.Signals = signal.SIGKILL) -> Callable[[], None] | None:
    """A ``preexec_fn`` making the child receive `sig` when this process dies.

    None (nothing to set) off Linux or when called outside the main thread: the kernel sends the
    signal when the forking *thread* exits, which for a helper thread would be far too early.
    """
    prctl = _PRCTL
    if prctl is None or threading.current_thread() is not threading.main_thread():
        return None
    parent = os.getpid()
    signum = int(sig)

    def preexec() -> None:  # runs in the child between fork and exec: no imports, no logging
        prctl(_PR_SET_PDEATHSIG, signum, 0, 0, 0)
        if os.getppid() != parent:  # the parent died before the setting took effect
            os.kill(os.getpid(), signum)

    return preexec


def process_start_time(pid: int) -> int | None:
    """The kernel start time of `pid` (clock ticks since boot; field 22 of /proc/pid/stat)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            fields = fh.read().rsplit(b")", 1)[1].split()
        return int(fields[19])
    except (OSError, IndexError, ValueError):
        return None


def pid_alive(pid: int) -> bool:
    """True while `pid` exists and is not a zombie."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            return fh.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except (OSError, IndexError):
        return True


def write_pid_file(path: Path, pid: int) -> None:
    """Record `pid` and its start time (atomically: a crash leaves the old or the new file)."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(f"{pid} {process_start_time(pid) or 0}\n")
    os.replace(tmp, path)


def read_pid_file(path: Path) -> int | None:
    """The pid recorded in `path` if that very process still runs (same start time), else None."""
    try:
        pid_s, start_s = path.read_text().split()[:2]
        pid, start = int(pid_s), int(start_s)
    except (OSError, ValueError):
        return None
    if not pid_alive(pid):
        return None
    if start and process_start_time(pid) != start:
        return None  # the pid was recycled by another process
    return pid


def stop_leftover(path: Path, what: str, *, group: bool = True, timeout: float = 10.0) -> int | None:
    """Stop the server recorded in pid file `path` (SIGTERM, then SIGKILL); returns its pid."""
    pid = read_pid_file(path)
    if pid is None:
        path.unlink(missing_ok=True)
        return None
    logger.warning("%s (pid %s) from an earlier run is still running; stopping it (pid file %s)",
                   what, pid, path)
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, sig) if group else os.kill(pid, sig)
        deadline = time.monotonic() + timeout
        while pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if not pid_alive(pid):
            break
    path.unlink(missing_ok=True)
    return pid
