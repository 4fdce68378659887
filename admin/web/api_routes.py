"""The JSON API (/api/v1) that casectl speaks: bearer-token users, JSON in and out.

Split out of admin/web/app.py; `create_app` registers these routes with its helpers.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from admin.readmodel import ReadModel
from admin.service import ActionRefused, CaseFilter, FormError, form_fields
from domain.enums import Action, Role
from domain.errors import InvalidFilingError
from domain.intake import filing_from_record


class _ApiError(Exception):
    def __init__(self, status: int, error_type: str, message: str) -> None:
        super().__init__(message)
        self.status, self.error_type, self.message = status, error_type, message


async def _json_body(request: Request, allow_list: bool = False) -> Any:
    raw = await request.body()
    if not raw:
        return {}
    try:
        body = json.loads(raw)
    except json.JSONDecodeError as e:
        raise _ApiError(400, "InvalidInput", f"request body is not JSON: {e}") from None
    if not isinstance(body, dict) and not (allow_list and isinstance(body, list)):
        raise _ApiError(400, "InvalidInput", "request body must be a JSON object")
    return body


def _request_id(raw: Any) -> str | None:
    s = str(raw or "").strip()
    if not s:
        return None
    if len(s) > 100 or not all(c.isalnum() or c in "-_." for c in s):
        return None
    return f"console-{s}"


def _jsonable(v: Any) -> Any:
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_jsonable(x) for x in v]
    if isinstance(v, datetime):
        return v.isoformat()
    if hasattr(v, "isoformat"):
        return v.isoformat()
    if hasattr(v, "model_dump"):
        return v.model_dump(mode="json")
    return v


def register(
    app: FastAPI, *, api_user: Callable[[Request], Awaitable[Any]], reads: Callable[[Request], Any],
    svc: Callable[[Request], Any], export: Callable[..., Awaitable[Response]],
    parse_upload: Callable[[str, bytes], Awaitable[list[tuple[str, Any]]]],
) -> None:
    """Add the /api/v1 routes (casectl's JSON API) to the console app."""

    @app.get("/api/v1/me")
    async def api_me(request: Request) -> Response:
        user = await api_user(request)
        return JSONResponse(user.to_json())

    @app.get("/api/v1/my-work")
    async def api_my_work(request: Request) -> Response:
        user = await api_user(request)
        return JSONResponse({"cases": _jsonable(await reads(request).my_work(user))})

    @app.get("/api/v1/cases")
    async def api_cases(request: Request) -> Response:
        user = await api_user(request)
        try:
            f = CaseFilter.from_params(request.query_params)
            rows, total = await reads(request).list_cases(user, f)
        except FormError as e:
            raise _ApiError(400, "InvalidInput", str(e)) from None
        return JSONResponse({"total": total, "page": f.page, "page_size": f.page_size, "cases": _jsonable(rows)})

    @app.get("/api/v1/export.{fmt}")
    async def api_export(request: Request, fmt: str) -> Response:
        user = await api_user(request)
        return await export(request, user, fmt)

    @app.get("/api/v1/cases/{case_no}")
    async def api_case(request: Request, case_no: str) -> Response:
        user = await api_user(request)
        view = await reads(request).case_view(user, case_no)
        if view is None:  # not filed, or not this user's to see: the same answer (no probing)
            raise _ApiError(404, "CaseNotFoundError", f"no case {case_no} has been filed")
        return JSONResponse(_jsonable(ReadModel.case_api(view, form_fields)))

    @app.post("/api/v1/cases/{case_no}/actions/{action}")
    async def api_act(request: Request, case_no: str, action: str) -> Response:
        user = await api_user(request)
        try:
            act = Action(action.upper())
        except ValueError:
            raise _ApiError(400, "InvalidInput", f"unknown action {action!r} (one of: "
                            + ", ".join(a.value for a in Action) + ")") from None
        body = await _json_body(request)
        try:
            result = await svc(request).perform(user, case_no, act, body, request_id=_request_id(body.get("request_id")))
        except ActionRefused as e:
            status = 422 if e.error_type in ("InvalidInput", "MissingInputError") else 409
            if e.error_type == "CaseNotFoundError" or not await reads(request).may_see(user, case_no):
                # A case the user may not see answers as one that does not exist (the refusal is recorded).
                raise _ApiError(404, "CaseNotFoundError", f"no case {case_no} has been filed") from None
            raise _ApiError(status, e.error_type, e.message) from None
        return JSONResponse(result.model_dump(mode="json"))

    @app.post("/api/v1/cases")
    async def api_file(request: Request) -> Response:
        user = await api_user(request)
        body = await _json_body(request)
        try:
            filing = filing_from_record(body)
            outcome = await svc(request).file_one(user, filing)
        except InvalidFilingError as e:
            raise _ApiError(422, "InvalidFilingError", str(e)) from None
        except ActionRefused as e:
            raise _ApiError(403, e.error_type, e.message) from None
        if not outcome.filed:
            raise _ApiError(409, "AlreadyFiled", outcome.reason)
        return JSONResponse({"case_no": outcome.case_no, "filed": True}, status_code=201)

    @app.post("/api/v1/import")
    async def api_import(request: Request) -> Response:
        user = await api_user(request)
        if Role.RECTIFICATION_OFFICE not in user.roles:  # before the body is read
            raise _ApiError(403, "NotAuthorizedError", "only the rectification office (整改办) imports cases")
        raw = await request.body()
        try:
            rows = await parse_upload("import.json", raw or b"[]")
        except FormError as e:
            raise _ApiError(422, "InvalidFilingError", str(e)) from None
        try:
            report = await svc(request).import_rows(user, rows)
        except ActionRefused as e:
            raise _ApiError(403, e.error_type, e.message) from None
        return JSONResponse({"rows": report, "filed": sum(r["filed"] for r in report),
                             "refused": sum(not r["filed"] for r in report)})

    @app.get("/api/v1/dashboard")
    async def api_dashboard(request: Request) -> Response:
        user = await api_user(request)
        return JSONResponse(_jsonable(await reads(request).dashboard(user)))
