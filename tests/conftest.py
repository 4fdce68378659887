"""Shared fixtures: a real PostgreSQL (embedded, migrated) and the Temporal test server."""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest
import pytest_asyncio
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from activities.migrate import migrate
from embedded import EmbeddedPostgres, find_free_port, find_temporal_test_server
from workflows.contracts import SEARCH_ATTRIBUTES

_SA_TYPES = {
    "Keyword": IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
    "KeywordList": IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD_LIST,
    "Datetime": IndexedValueType.INDEXED_VALUE_TYPE_DATETIME,
    "Int": IndexedValueType.INDEXED_VALUE_TYPE_INT,
}


@pytest_asyncio.fixture(scope="session")
async def database_url(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    """A real, migrated PostgreSQL 18 for the whole session (DATABASE_URL overrides it)."""
    pg = None
    url = os.environ.get("TEST_DATABASE_URL")
    if not url:
        pg = EmbeddedPostgres(tmp_path_factory.mktemp("pg"), find_free_port(), fast=True)
        url = await pg.start()
    try:
        conn = await asyncpg.connect(url)
        try:
            await migrate(conn)
        finally:
            await conn.close()
        yield url
    finally:
        if pg is not None:
            await pg.stop()


@pytest_asyncio.fixture(scope="session")
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    p = await asyncpg.create_pool(database_url, min_size=1, max_size=10)
    yield p
    await p.close()


@pytest_asyncio.fixture(scope="module")
async def ts_env() -> AsyncIterator[WorkflowEnvironment]:
    """The Java time-skipping test server, with our search attributes registered: one per test
    module. Cases a module leaves open keep their timers (monthly reports, milestones); on a shared
    server a later module's time skip would wake them on task queues no worker polls any more,
    and the server does not skip time past a task nobody takes."""
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=find_temporal_test_server(),
        data_converter=pydantic_data_converter,
    )
    await env.client.operator_service.add_search_attributes(
        AddSearchAttributesRequest(
            namespace=env.client.namespace,
            search_attributes={k: _SA_TYPES[v] for k, v in SEARCH_ATTRIBUTES.items()},
        )
    )
    yield env
    await env.shutdown()


@pytest.fixture
def task_queue() -> str:
    return f"tq-{uuid.uuid4()}"


@pytest.fixture
def ts_client(ts_env: WorkflowEnvironment) -> Client:
    return ts_env.client


def pytest_configure(config: pytest.Config) -> None:
    # Servers this run starts (ours and the SDK's test servers) die with it, even on kill -9.
    if os.environ.get("TEST_GUARDIAN", "1") == "1" and not hasattr(config, "workerinput"):
        from embedded.guardian import start_guardian

        start_guardian()


_exit_status = 0


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    global _exit_status
    _exit_status = int(exitstatus)


def pytest_unconfigure(config: pytest.Config) -> None:
    # sdk-python#300: leave without interpreter finalisation, after the summary line.
    if os.environ.get("TEMPORAL_HARD_EXIT", "1") == "1":
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(_exit_status)
