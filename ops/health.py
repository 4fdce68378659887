"""`/healthz` (alive) and `/readyz` (Temporal and PostgreSQL reachable) for worker and console.

The worker serves them from a small HTTP server in its own event loop (`HealthServer`, bound to
`HEALTH_BIND`, e.g. `0.0.0.0:8081`; empty = off); the console adds the same two routes to its
FastAPI app (`add_console_routes`). Both answer JSON: `{"status": "ok"|"fail", "checks": {...}}`,
200 when every check passes, 503 otherwise, and never include secrets or connection strings.

Checks are named async callables that raise (or return False) on failure, each bounded by a
timeout. Liveness checks only what a restart would cure (the event loop answers; the worker has
not stopped polling for good); readiness adds the dependencies. Further checks (e.g. the worker's
own polling state) are added by name with `add_live` / `add_ready`.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import structlog
from fastapi import Request
from fastapi.responses import JSONResponse

log = structlog.get_logger(__name__)

Check = Callable[[], Awaitable[Any]]
CHECK_TIMEOUT = 3.0


def temporal_check(client: Any) -> Check:
    """Temporal reachable: the frontend's gRPC health service answers SERVING."""

    async def check() -> bool:
        return await client.service_client.check_health()

    return check


def postgres_check(pool: asyncpg.Pool) -> Check:
    async def check() -> bool:
        return await pool.fetchval("SELECT 1") == 1

    return check


async def run_checks(checks: dict[str, Check], timeout: float = CHECK_TIMEOUT) -> tuple[bool, dict[str, str]]:
    """Run every check concurrently; (all passed, name -> "ok" or a short reason)."""

    async def one(name: str, check: Check) -> tuple[str, str]:
        try:
            ok = await asyncio.wait_for(check(), timeout=timeout)
        except TimeoutError:
            return name, f"timed out after {timeout:g} s"
        except Exception as e:  # a probe reports, it never raises
            return name, f"{type(e).__name__}: {str(e)[:200]}"
        return name, "ok" if ok is not False else "failed"

    results = dict(await asyncio.gather(*(one(n, c) for n, c in checks.items())))
    return all(v == "ok" for v in results.values()), results


class Probes:
    """The named liveness and readiness checks of one process."""

    def __init__(self) -> None:
        self.live: dict[str, Check] = {}
        self.ready: dict[str, Check] = {}

    def add_live(self, name: str, check: Check) -> None:
        self.live[name] = check
        self.ready[name] = check  # not alive is not ready either

    def add_ready(self, name: str, check: Check) -> None:
        self.ready[name] = check

    async def answer(self, path: str) -> tuple[int, dict[str, Any]]:
        if path == "/healthz":
            ok, results = await run_checks(self.live)
        elif path == "/readyz":
            ok, results = await run_checks(self.ready)
        else:
            return 404, {"error": "not found", "paths": ["/healthz", "/readyz"]}
        return (200 if ok else 503), {"status": "ok" if ok else "fail", "checks": results}


def parse_bind(bind: str, default_host: str = "0.0.0.0") -> tuple[str, int]:
    """`host:port` or `:port` or `port` -> (host, port); a bad value is refused by name."""
    host, _, port = bind.rpartition(":")
    try:
        n = int(port)
    except ValueError:
        raise ValueError(f"bind address {bind!r} has no port (use host:port)") from None
    if not 0 <= n <= 65535:
        raise ValueError(f"bind address {bind!r}: port {n} is out of range")
    return (host.strip("[]") or default_host), n


class HealthServer:
    """A minimal HTTP/1.1 server for the probes (GET only, one request per connection)."""

    def __init__(self, probes: Probes, bind: str) -> None:
        self.probes = probes
        self.host, self.port = parse_bind(bind)
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        log.info("health_endpoint", host=self.host, port=self.port, paths=["/healthz", "/readyz"])

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def __aenter__(self) -> HealthServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=5)
            method, path, *_ = request.split(b"\r\n", 1)[0].decode("latin-1").split(" ")
            path = path.split("?", 1)[0]
            if method not in ("GET", "HEAD"):
                status, body = 405, {"error": "method not allowed"}
            else:
                status, body = await self.probes.answer(path)
            data = json.dumps(body).encode()
            reason = {200: "OK", 404: "Not Found", 405: "Method Not Allowed", 503: "Service Unavailable"}[status]
            head = (f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\n"
                    f"Content-Length: {len(data)}\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n")
            writer.write(head.encode() + (b"" if method == "HEAD" else data))
            await writer.drain()
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError, ConnectionError, ValueError):
            pass  # a half-open probe or garbage: nothing to answer
        finally:
            writer.close()


def add_console_routes(app: Any, probes_of: Callable[[Any], Probes]) -> None:
    """`/healthz` and `/readyz` on a FastAPI app; `probes_of(app)` gives the checks at request time."""
    async def probe(request: Request) -> JSONResponse:
        status, body = await probes_of(request.app).answer(request.url.path)
        return JSONResponse(body, status_code=status, headers={"Cache-Control": "no-store"})

    app.add_api_route("/healthz", probe, methods=["GET"], include_in_schema=False)
    app.add_api_route("/readyz", probe, methods=["GET"], include_in_schema=False)


def console_probes(app: Any) -> Probes:
    """The console's checks: its PostgreSQL pool and its Temporal client (set in its lifespan)."""
    probes = Probes()
    probes.add_live("event_loop", _alive)
    svc = getattr(app.state, "service", None)
    if svc is None:
        async def starting() -> bool:
            return False

        probes.add_ready("startup", starting)
        return probes
    probes.add_ready("postgres", postgres_check(svc.pool))
    probes.add_ready("temporal", temporal_check(svc.client))
    return probes


async def _alive() -> bool:
    return True
