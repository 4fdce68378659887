"""Small TCP port helpers shared by the embedded servers and their tests."""

from __future__ import annotations

import os
import socket
from pathlib import Path

__all__ = ["PortInUseError", "ensure_port_free", "find_free_port", "is_port_free", "tail_of_file"]

LOOPBACK = "127.0.0.1"


class PortInUseError(RuntimeError):
    """A server could not start because its TCP port is already taken."""


def find_free_port(host: str = LOOPBACK) -> int:
    """Return a port that was free on ``host`` a moment ago (the OS picks it via port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def is_port_free(port: int, host: str = LOOPBACK) -> bool:
    """True if a listener could bind ``host:port`` right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # Same option PostgreSQL and Go set on their listeners, so sockets lingering in
        # TIME_WAIT do not count as "in use" while a live listener still does.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def ensure_port_free(port: int, host: str = LOOPBACK, *, what: str = "server") -> None:
    """Raise :class:`PortInUseError` with a readable message if ``host:port`` is taken."""
    if not is_port_free(port, host):
        raise PortInUseError(
            f"Cannot start {what}: {host}:{port} is already in use "
            f"(another instance still running? check with `ss -ltnp 'sport = :{port}'`)"
        )


def tail_of_file(path: Path, start: int = 0, limit: int = 4000) -> str:
    """The last `limit` bytes of a log file written since offset `start` (for error messages)."""
    try:
        with path.open("rb") as fh:
            size = fh.seek(0, os.SEEK_END)
            fh.seek(max(start, size - limit))
            return fh.read().decode("utf-8", errors="replace")
    except OSError:
        return "<no log>"
