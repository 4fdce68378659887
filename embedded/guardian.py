"""A watchdog that kills what a process left running once that process is gone.

``start_guardian()`` spawns ``python -m embedded.guardian <pid>`` with a pipe whose only writer is
the calling process. The guardian records the caller's descendants (pid and start time) twice a
second; when the pipe reaches EOF (the caller exited, normally or by ``kill -9``) it SIGKILLs the
recorded descendants that still run. The test suite starts one (tests/conftest.py), so servers
started by the Temporal SDK (the Java test server, the dev server of ``WorkflowEnvironment``),
which cannot be given ``PR_SET_PDEATHSIG``, do not outlive a killed test run either. A server that
daemonised between two snapshots could be missed; our own servers also die with their parent
(:mod:`embedded.procs`).
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys

from embedded.procs import pid_alive, process_start_time

__all__ = ["descendants", "start_guardian"]

_POLL_SECONDS = 0.5


def _children_map() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as fh:
                ppid = int(fh.read().rsplit(b")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry.name))
    return children


def descendants(pid: int) -> list[int]:
    """Every process below `pid` in the process tree (Linux /proc)."""
    children = _children_map()
    out: list[int] = []
    todo = list(children.get(pid, []))
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def start_guardian() -> subprocess.Popen[bytes] | None:
    """Start a guardian for this process (Linux only); it ends by itself when we do."""
    if not sys.platform.startswith("linux"):
        return None
    read_fd, write_fd = os.pipe()  # both non-inheritable: no other child keeps the write end
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "embedded.guardian", str(os.getpid())],
            stdin=read_fd,
            stdout=subprocess.PIPE,
            start_new_session=True,  # not in our process group: a group kill must not take it
            cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
        )
    finally:
        os.close(read_fd)
    # Kept open (and never written) for the rest of this process's life.
    _KEEP.append(write_fd)
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], 60)  # its first snapshot is taken
    if ready:
        proc.stdout.read(1)
    proc.stdout.close()
    return proc


_KEEP: list[int] = []


def _watch(parent: int) -> int:
    me = os.getpid()
    known: dict[int, int] = {}
    announced = False
    while True:
        for pid in descendants(parent):
            if pid != me and pid not in known:
                start = process_start_time(pid)
                if start is not None:
                    known[pid] = start
        known = {p: s for p, s in known.items() if pid_alive(p)}
        if not announced:
            announced = True
            try:
                os.write(1, b"r")  # tell start_guardian we are watching
                os.close(1)
            except OSError:
                pass
        ready, _, _ = select.select([0], [], [], _POLL_SECONDS)
        if ready and not os.read(0, 4096):
            break  # EOF: the parent is gone
    killed = 0
    for pid, start in known.items():
        if pid_alive(pid) and process_start_time(pid) == start:
            try:
                os.kill(pid, signal.SIGKILL)
                killed += 1
            except (ProcessLookupError, PermissionError):
                pass
    if killed:
        print(f"guardian: parent {parent} gone; killed {killed} leftover process(es)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(_watch(int(sys.argv[1])))
