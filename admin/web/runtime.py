"""The office's runtime page (运行监控 Runtime, issue 9): blocked cases with their error and the
UNBLOCK form, and the escalation watchdog's nudges. Who may open it is domain.visibility's
View.RUNTIME (the office and auditors); only the office unblocks (domain/blocking.py decides, in
the workflow)."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import asyncpg
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from pydantic import ValidationError

from admin.web.api_routes import _json_body, _jsonable, _request_id
from domain.blocking import UNBLOCK_MODE_LABELS_ZH, UnblockMode, UnblockRequest
from domain.enums import Role
from domain.visibility import View
from workflows import client as ops

_BLOCKED = """
SELECT case_no, blocked_at, activity, error_type, message, origin, request_id
FROM case_block WHERE resolved_at IS NULL ORDER BY blocked_at LIMIT 500
"""
_RESOLVED = """
SELECT case_no, blocked_at, error_type, resolved_at, resolved_by, resolution, resolution_reason
FROM case_block WHERE resolved_at IS NOT NULL ORDER BY resolved_at DESC LIMIT 50
"""
_NUDGES = """
SELECT case_no, wake_at, what, detected_at, late_seconds, nudges, last_error, healed_at
FROM watchdog_nudge ORDER BY (healed_at IS NULL) DESC, detected_at DESC LIMIT 200
"""


async def runtime_view(pool: asyncpg.Pool) -> dict[str, Any]:
    return {
        "blocked": [dict(r) for r in await pool.fetch(_BLOCKED)],
        "resolved": [dict(r) for r in await pool.fetch(_RESOLVED)],
        "nudges": [dict(r) for r in await pool.fetch(_NUDGES)],
    }


def _unblock_request(actor: Any, mode: Any, reason: Any, request_id: Any) -> UnblockRequest:
    """The office's UNBLOCK as the workflow receives it; ValueError names a mode it does not know."""
    try:
        m = UnblockMode(str(mode or "RETRY").upper())
    except ValueError:
        raise ValueError(f"unknown mode {mode!r} (one of: {', '.join(x.value for x in UnblockMode)})") from None
    return UnblockRequest(actor=actor, mode=m, reason=str(reason or ""),
                          request_id=str(request_id or f"unblock-{secrets.token_hex(8)}")[:128])


def register(
    app: FastAPI, *, page: Callable[..., HTMLResponse], session: Callable, post_session: Callable,
    writer: Callable, client: Callable[[Request], Any], forbidden: type[Exception], reads: Callable,
    api_user: Callable, api_error: Callable[..., Exception],
) -> None:
    """Add GET /runtime and POST /runtime/{case_no}/unblock to the console, and their JSON API for
    casectl: GET /api/v1/runtime, POST /api/v1/cases/{case_no}/unblock."""

    @app.get("/runtime", response_class=HTMLResponse)
    async def runtime(request: Request, done: str = "", error: str = "") -> Response:
        s = await session(request)
        reads(request).require(s.user, View.RUNTIME)  # domain.visibility: the office and auditors
        view = await runtime_view(request.app.state.pool)
        may_unblock = Role.RECTIFICATION_OFFICE in s.user.roles
        return page(request, "runtime.html", s, nav="runtime", v=view, may_unblock=may_unblock,
                    modes=UNBLOCK_MODE_LABELS_ZH, done=done, error=error)

    @app.post("/runtime/{case_no}/unblock")
    async def unblock(request: Request, case_no: str) -> Response:
        s, form = await post_session(request)
        writer(s)
        reads(request).require(s.user, View.RUNTIME)
        if Role.RECTIFICATION_OFFICE not in s.user.roles:
            raise forbidden("只有整改办可以解除阻塞 (only the rectification office may UNBLOCK)")
        try:
            req = _unblock_request(s.user.actor(Role.RECTIFICATION_OFFICE), form.get("mode"), form.get("reason"),
                                   form.get("request_id"))
        except (ValueError, ValidationError) as e:
            return RedirectResponse(f"/runtime?error={quote(f'InvalidInput: {e}')}", status_code=303)
        try:
            outcome = await ops.unblock(client(request), case_no, req, pool=request.app.state.pool)
        except ops.ActionRefusedError as e:
            return RedirectResponse(f"/runtime?error={quote(f'{e.error_type}: {e.message}')}", status_code=303)
        return RedirectResponse(f"/runtime?done={case_no}:{outcome}", status_code=303)

    @app.get("/api/v1/runtime")
    async def api_runtime(request: Request) -> Response:
        user = await api_user(request)
        reads(request).require(user, View.RUNTIME)  # the office and auditors; 403 for the rest
        return JSONResponse(_jsonable(await runtime_view(request.app.state.pool)))

    @app.post("/api/v1/cases/{case_no}/unblock")
    async def api_unblock(request: Request, case_no: str) -> Response:
        user = await api_user(request)
        reads(request).require(user, View.RUNTIME)
        if Role.RECTIFICATION_OFFICE not in user.roles:
            raise api_error(403, "NotAuthorizedError", "only the rectification office (整改办) may UNBLOCK")
        body = await _json_body(request)
        try:
            req = _unblock_request(user.actor(Role.RECTIFICATION_OFFICE), body.get("mode"), body.get("reason"),
                                   _request_id(body.get("request_id")))
        except (ValueError, ValidationError) as e:
            raise api_error(422, "InvalidInput", str(e)) from None
        try:
            outcome = await ops.unblock(client(request), case_no, req, pool=request.app.state.pool)
        except ops.ActionRefusedError as e:
            status = {"CaseNotFoundError": 404, "InvalidInput": 422, "MissingInputError": 422,
                      "NotAuthorizedError": 403, "EngineUnavailable": 503}.get(e.error_type, 409)
            raise api_error(status, e.error_type, e.message) from None
        return JSONResponse({"case_no": case_no, "outcome": outcome, "request_id": req.request_id})
