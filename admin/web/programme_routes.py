"""The programme pages (整改方案 Programmes, issue 13) and their JSON API.

    GET  /programmes                       list (what the reader may see of each)
    GET  /programmes/{id}                  progress per unit and county, overdue items, escalations,
                                           the six-month report, the dispatch reports, the ledger
    POST /programmes/{id}/act/{action}     the office's SUBMIT_PLAN / SUBMIT_REPORT (form)
    GET  /api/v1/programmes[/{id}]         the same for casectl
    POST /api/v1/programmes                create (the office)
    POST /api/v1/programmes/{id}/actions/{action}
    POST /api/v1/programmes/{id}/refresh   read the case counts now

Who reads what: admin/programmes.py (domain/programme_scope.py). Who acts: domain/programme.py,
checked in the workflow's validator before anything is recorded.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from pydantic import ValidationError

from admin.programmes import ProgrammeReads
from domain.enums import Role
from domain.errors import CaseError
from domain.programme import (
    PROGRAMME_ACTION_LABELS_ZH,
    ProgrammeAction,
    ProgrammeRequest,
    ProgrammeSpec,
)
from workflows import programme_client as pc
from workflows.client import ActionRefusedError, record_refusal


def _errors(e: ValidationError) -> str:
    return "; ".join(f"{'.'.join(map(str, err['loc'])) or 'body'}: {err['msg']}" for err in e.errors())


def register(
    app: FastAPI, *, templates: Jinja2Templates, page: Callable[..., HTMLResponse], session: Callable,
    post_session: Callable, writer: Callable, api_user: Callable, api_error: type[Exception], reads: Callable,
    svc: Callable, jsonable: Callable[[Any], Any],
) -> None:
    def preads(request: Request) -> ProgrammeReads:
        return ProgrammeReads(reads(request))

    # The navigation shows 整改方案 only to users who read programmes (deny by default).
    templates.env.globals["may_read_programmes"] = (
        lambda request, user: user is not None and ProgrammeReads(request.app.state.reads).may_read(user))

    def request_from(user: Any, action_raw: str, body: dict[str, Any]) -> ProgrammeRequest:
        try:
            action = ProgrammeAction(action_raw.upper())
        except ValueError:
            raise ValueError(f"unknown programme action {action_raw!r} (one of: "
                             + ", ".join(a.value for a in ProgrammeAction) + ")") from None
        if Role.RECTIFICATION_OFFICE not in user.roles:
            raise PermissionError(f"{PROGRAMME_ACTION_LABELS_ZH[action]} {action.value}: only the rectification "
                                  "office (整改办) may do this")
        evidence = body.get("evidence") or []
        if isinstance(evidence, str):
            evidence = [x.strip() for x in evidence.splitlines() if x.strip()]
        return ProgrammeRequest(action=action, actor=user.actor(Role.RECTIFICATION_OFFICE),
                                request_id=str(body.get("request_id") or f"console-{secrets.token_hex(8)}")[:128],
                                reference=str(body.get("reference") or ""), evidence=evidence,
                                note=str(body.get("note") or ""))

    async def record_refused(request: Request, programme_id: str, user: Any, action_raw: str,
                             body: dict[str, Any], error_type: str, message: str) -> None:
        """A request refused before it reached the workflow (no office role, bad input): written
        to `refused_action` like the workflow's own refusals (act_programme with the pool)."""
        from types import SimpleNamespace

        actor = SimpleNamespace(user_id=user.username, role=user.roles[0] if user.roles else "", unit=user.unit)
        req = SimpleNamespace(action=action_raw.upper(), actor=actor,
                              request_id=str(body.get("request_id") or f"console-{secrets.token_hex(8)}"))
        await record_refusal(svc(request).pool, pc.refusal_key(programme_id), req, error_type, message)  # type: ignore[arg-type]

    # ------------------------------------------------------------ pages

    @app.get("/programmes", response_class=HTMLResponse)
    async def programmes(request: Request) -> Response:
        s = await session(request)
        pr = preads(request)
        if not pr.may_read(s.user):
            return page(request, "error.html", s, status=403,
                        message="您的角色不能查看整改方案 (your role reads no programme)")
        return page(request, "programmes.html", s, nav="programmes", rows=await pr.list(s.user))

    @app.get("/programmes/{programme_id}", response_class=HTMLResponse)
    async def programme_page(request: Request, programme_id: str, ok: str = "", error: str = "") -> Response:
        s = await session(request)
        v = await preads(request).view(s.user, programme_id)
        if v is None:
            return page(request, "error.html", s, status=404, message=f"没有整改方案 no programme {programme_id}")
        may_act = Role.RECTIFICATION_OFFICE in s.user.roles and not s.user.read_only and v["read"] == "WHOLE"
        return page(request, "programme.html", s, nav="programmes", v=v, may_act=may_act, ok=ok, error=error,
                    ACTIONS=PROGRAMME_ACTION_LABELS_ZH)

    @app.post("/programmes/{programme_id}/act/{action}")
    async def programme_act(request: Request, programme_id: str, action: str) -> Response:
        s, form = await post_session(request)
        writer(s)
        try:
            req = request_from(s.user, action, dict(form))
            await pc.act_programme(svc(request).client, programme_id, req, pool=svc(request).pool)
        except (ValueError, PermissionError) as e:
            msg = _errors(e) if isinstance(e, ValidationError) else str(e)
            await record_refused(request, programme_id, s.user, action, dict(form),
                                 "NotAuthorizedError" if isinstance(e, PermissionError) else "InvalidInput", msg)
            return RedirectResponse(f"/programmes/{quote(programme_id)}?error={quote(msg)}", status_code=303)
        except ActionRefusedError as e:
            return RedirectResponse(f"/programmes/{quote(programme_id)}?error={quote(f'{e.error_type}: {e.message}')}",
                                    status_code=303)
        return RedirectResponse(f"/programmes/{quote(programme_id)}?ok={quote(action.upper())}", status_code=303)

    # ------------------------------------------------------------ JSON API

    @app.get("/api/v1/programmes")
    async def api_programmes(request: Request) -> Response:
        user = await api_user(request)
        pr = preads(request)
        if not pr.may_read(user):
            raise api_error(403, "NotAuthorizedError", "your role reads no programme")
        return JSONResponse({"programmes": jsonable(await pr.list(user))})

    @app.get("/api/v1/programmes/{programme_id}")
    async def api_programme(request: Request, programme_id: str) -> Response:
        user = await api_user(request)
        v = await preads(request).view(user, programme_id)
        if v is None:
            raise api_error(404, "ProgrammeNotFoundError", f"no programme {programme_id}")
        return JSONResponse(jsonable(v))

    @app.post("/api/v1/programmes")
    async def api_create(request: Request) -> Response:
        user = await api_user(request)
        if Role.RECTIFICATION_OFFICE not in user.roles:
            raise api_error(403, "NotAuthorizedError", "only the rectification office (整改办) creates a programme")
        body = await request.json() if (await request.body()) else {}
        if not isinstance(body, dict):
            raise api_error(400, "InvalidInput", "request body must be a JSON object")
        plan = body.pop("submit_plan", None)
        try:
            spec = ProgrammeSpec.model_validate(body)
            actor = user.actor(Role.RECTIFICATION_OFFICE)
            submit = request_from(user, "SUBMIT_PLAN", {"reference": plan}) if plan else None
        except ValidationError as e:
            raise api_error(422, "InvalidInput", _errors(e)) from None
        try:
            ok, why = await pc.create_programme(svc(request).client, spec, actor, svc(request).task_queue,
                                                submit_plan=submit, office_unit=svc(request).office_unit)
        except CaseError as e:  # NotAuthorizedError: not the policy's office unit
            raise api_error(403, type(e).__name__, str(e)) from None
        if not ok:
            raise api_error(409, "AlreadyExists", why)
        return JSONResponse({"programme_id": spec.programme_id, "created": True}, status_code=201)

    @app.post("/api/v1/programmes/{programme_id}/actions/{action}")
    async def api_act(request: Request, programme_id: str, action: str) -> Response:
        user = await api_user(request)
        body = await request.json() if (await request.body()) else {}
        if not isinstance(body, dict):
            raise api_error(400, "InvalidInput", "request body must be a JSON object")
        try:
            req = request_from(user, action, body)
        except ValidationError as e:
            await record_refused(request, programme_id, user, action, body, "InvalidInput", _errors(e))
            raise api_error(422, "InvalidInput", _errors(e)) from None
        except PermissionError as e:
            await record_refused(request, programme_id, user, action, body, "NotAuthorizedError", str(e))
            raise api_error(403, "NotAuthorizedError", str(e)) from None
        except ValueError as e:
            await record_refused(request, programme_id, user, action, body, "InvalidInput", str(e))
            raise api_error(400, "InvalidInput", str(e)) from None
        try:
            result = await pc.act_programme(svc(request).client, programme_id, req, pool=svc(request).pool)
        except ActionRefusedError as e:
            if e.error_type == "ProgrammeNotFoundError":
                raise api_error(404, e.error_type, e.message) from None
            status = 422 if e.error_type in ("InvalidInput", "MissingInputError") else 409
            raise api_error(status, e.error_type, e.message) from None
        return JSONResponse(result.model_dump(mode="json"))

    @app.post("/api/v1/programmes/{programme_id}/refresh")
    async def api_refresh(request: Request, programme_id: str) -> Response:
        user = await api_user(request)
        if await preads(request).view(user, programme_id) is None:
            raise api_error(404, "ProgrammeNotFoundError", f"no programme {programme_id}")
        try:
            await pc.refresh_programme(svc(request).client, programme_id, f"asked by {user.username}")
        except Exception as e:  # noqa: BLE001 - completed or gone
            raise api_error(409, "ProgrammeCompletedError", str(e)) from None
        return JSONResponse({"programme_id": programme_id, "refresh": "sent"})
