"""The console during a database outage: a clear 数据库暂不可用 page (503), never a traceback.

`install(app, render)` registers exception handlers for the errors a lost PostgreSQL raises
(refused or dropped connections, a server shutting down or starting) and `GET /health/db`,
which answers 200 `{"database": "ok"}` or 503 `{"database": "unavailable", ...}`. API calls
(`/api/…`) get the same as JSON. Workflows and activities are unaffected: they wait and retry
(issue 11's database-outage fault test).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import asyncpg
import structlog
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

log = structlog.get_logger("admin.web")

DATABASE_OUTAGE_ERRORS: tuple[type[BaseException], ...] = (
    ConnectionError,  # refused / reset while connecting
    asyncpg.PostgresConnectionError,  # incl. CannotConnectNowError (starting up, recovering)
    asyncpg.InterfaceError,  # incl. ConnectionDoesNotExistError (dropped mid-query)
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
)
MESSAGE = "数据库暂不可用,请稍后重试 (database temporarily unavailable; retry in a moment)"
RETRY_AFTER_SECONDS = "5"


def install(app: FastAPI, render: Callable[..., Response]) -> None:
    """`render(request, template, status, **ctx)` renders a console page."""

    async def unavailable(request: Request, exc: Exception) -> Response:
        log.warning("database_unavailable", path=request.url.path, error=f"{type(exc).__name__}: {exc}")
        headers = {"Retry-After": RETRY_AFTER_SECONDS}
        if request.url.path.startswith("/api/"):
            return JSONResponse({"error": "DatabaseUnavailable", "message": MESSAGE}, status_code=503,
                                headers=headers)
        resp = render(request, "unavailable.html", 503, retry=str(request.url.path))
        resp.headers.update(headers)
        return resp

    for exc_type in DATABASE_OUTAGE_ERRORS:
        app.add_exception_handler(exc_type, unavailable)

    @app.get("/health/db")
    async def database_health(request: Request) -> Response:
        pool: Any = request.app.state.pool
        try:
            async with pool.acquire(timeout=3) as conn:
                await conn.fetchval("SELECT 1", timeout=3)
        except (*DATABASE_OUTAGE_ERRORS, OSError, TimeoutError) as e:
            return JSONResponse({"database": "unavailable", "message": MESSAGE,
                                 "error": f"{type(e).__name__}: {e}"}, status_code=503,
                                headers={"Retry-After": RETRY_AFTER_SECONDS})
        return JSONResponse({"database": "ok"})
