"""The office's runtime page (运行监控 Runtime, issue 9): blocked cases with their error and the
UNBLOCK form, and the escalation watchdog's nudges. Who may open it is domain.visibility's
View.RUNTIME (the office and auditors); only the office unblocks (domain/blocking.py decides, in
the workflow)."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any

import asyncpg
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

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


def register(
    app: FastAPI, *, page: Callable[..., HTMLResponse], session: Callable, post_session: Callable,
    writer: Callable, client: Callable[[Request], Any], forbidden: type[Exception], reads: Callable,
) -> None:
    """Add GET /runtime and POST /runtime/{case_no}/unblock to the console."""

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
            mode = UnblockMode(str(form.get("mode") or "RETRY"))
        except ValueError:
            return RedirectResponse("/runtime?error=unknown+mode", status_code=303)
        req = UnblockRequest(
            actor=s.user.actor(Role.RECTIFICATION_OFFICE), mode=mode,
            request_id=str(form.get("request_id") or f"unblock-{secrets.token_hex(8)}")[:128],
            reason=str(form.get("reason") or ""),
        )
        try:
            outcome = await ops.unblock(client(request), case_no, req)
        except ops.ActionRefusedError as e:
            from urllib.parse import quote

            return RedirectResponse(f"/runtime?error={quote(f'{e.error_type}: {e.message}')}", status_code=303)
        return RedirectResponse(f"/runtime?done={case_no}:{outcome}", status_code=303)
