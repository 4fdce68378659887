"""The web console (server-rendered, zh-CN with English terms) and its JSON API (/api/v1).

Sessions live in PostgreSQL; every form carries the session's CSRF token and
every POST checks it (403 otherwise). The JSON API authenticates with a
per-user bearer token (casectl). The actor of every action is the
authenticated user; the workflow's validator checks it again.
"""

from __future__ import annotations

import asyncio
import secrets
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

import asyncpg
import structlog
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from admin import auth
from admin.readmodel import ReadDenied, ReadModel
from admin.service import (
    FIELD_LABELS_ZH,
    ActionRefused,
    CaseFilter,
    FormError,
    Service,
    export_csv,
    export_xlsx,
    filing_from_form,
    form_fields,
    payload_from_form,
    rows_from_upload,
)
from admin.users import User
from admin.web import api_routes, outage
from admin.web.api_routes import _ApiError, _jsonable, _request_id
from admin.web.security import SecurityMiddleware
from config import Settings, connect_client
from domain.enums import (
    ACTION_LABELS_ZH,
    FINDING_LABELS_ZH,
    KIND_LABELS_ZH,
    LOOKBACK_LABELS_ZH,
    REFERRAL_PATH_LABELS_ZH,
    ROLE_LABELS_ZH,
    RUNG_LABELS_ZH,
    STAGE_LABELS_ZH,
    Action,
    CaseKind,
    Finding,
    LookbackFinding,
    ReferralPath,
    Role,
    Rung,
    Stage,
)
from domain.milestones import MILESTONE_STATUS_ZH
from domain.model import CRITERIA_LABELS_ZH, criterion_required
from domain.visibility import HomeUnits
from ops.health import add_console_routes, console_probes

HERE = Path(__file__).resolve().parent
SHANGHAI = ZoneInfo("Asia/Shanghai")
log = structlog.get_logger("admin.web")
LOGIN_CSRF_COOKIE = "case_console_login_csrf"


class NotLoggedIn(Exception):
    pass


class Forbidden(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _templates() -> Jinja2Templates:
    t = Jinja2Templates(directory=str(HERE / "templates"))
    t.env.globals.update(
        STAGES=list(Stage), KINDS=list(CaseKind), RUNGS=list(Rung), STAGE_ZH=STAGE_LABELS_ZH,
        ACTION_ZH=ACTION_LABELS_ZH, ROLE_ZH=ROLE_LABELS_ZH, RUNG_ZH=RUNG_LABELS_ZH, KIND_ZH=KIND_LABELS_ZH,
        FIELD_ZH=FIELD_LABELS_ZH, FINDINGS=list(Finding), FINDING_ZH=FINDING_LABELS_ZH,
        REFERRAL_PATHS=list(ReferralPath), REFERRAL_PATH_ZH=REFERRAL_PATH_LABELS_ZH,
        LOOKBACKS=list(LookbackFinding), LOOKBACK_ZH=LOOKBACK_LABELS_ZH, form_fields=form_fields,
        Role=Role, Stage=Stage, CRITERIA_ZH=CRITERIA_LABELS_ZH, criterion_required=criterion_required,
    )
    t.env.globals["MILESTONE_STATUS_ZH"] = MILESTONE_STATUS_ZH  # issue 13 (milestones)
    # Instants are shown in Beijing time (Asia/Shanghai), like the due dates.
    t.env.filters["dt"] = lambda v: "" if v is None else (
        v.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M") if isinstance(v, datetime) else str(v))
    t.env.filters["units"] = lambda v: "、".join(v or [])
    return t


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings.from_env()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        from activities.calendar_source import load_calendar
        from activities.policy_source import load_policy

        pool = await asyncpg.create_pool(settings.database_url, min_size=1, max_size=settings.db_pool_max)
        client = await connect_client(settings, identity="case-console")
        policy = load_policy(settings.policy_file)
        app.state.pool = pool
        app.state.service = Service(
            pool=pool, client=client, task_queue=settings.task_queue,
            calendar=load_calendar(settings.calendar_overrides_file),
            office_unit=policy.office_unit,
        )
        # Every read shown to a user goes through the read model (domain.visibility's rules).
        app.state.reads = ReadModel(pool=pool, client=client, calendar=app.state.service.calendar,
                                    home=HomeUnits(office=policy.office_unit, discipline=policy.discipline_unit))
        log.info("console_started", task_queue=settings.task_queue)
        try:
            yield
        finally:
            await pool.close()

    app = FastAPI(title="督察整改案件控制台 Case console", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")
    add_console_routes(app, console_probes)  # /healthz, /readyz (ops/health.py): no login
    # Headers (CSP, frame, nosniff, no-store), Secure cookies over TLS, request-size limits.
    from admin.web.evidence_routes import FORM_OVERHEAD

    app.add_middleware(SecurityMiddleware, upload_max_bytes=settings.console_upload_max_bytes,
                       force_secure_cookies=settings.console_secure_cookies,
                       evidence_max_body=settings.evidence_max_bytes + FORM_OVERHEAD)
    templates = _templates()

    # ------------------------------------------------------------ helpers

    def svc(request: Request) -> Service:
        return request.app.state.service

    def reads(request: Request) -> ReadModel:
        return request.app.state.reads

    def remote(request: Request) -> str:
        return request.client.host if request.client else ""

    async def session(request: Request) -> auth.Session:
        s = await auth.load_session(request.app.state.pool, settings, request.cookies.get(auth.SESSION_COOKIE))
        if s is None:
            raise NotLoggedIn()
        return s

    async def post_session(request: Request) -> tuple[auth.Session, Any]:
        """The session of a POST whose form carries the right CSRF token (403 otherwise)."""
        s = await session(request)
        form = await request.form()
        if not auth.csrf_ok(s.csrf_token, form.get("csrf_token")):  # type: ignore[arg-type]
            log.warning("csrf_refused", user=s.user.username, path=request.url.path)
            raise Forbidden("CSRF 校验失败:表单已过期或来源不明,请刷新页面后重试 (CSRF token missing or wrong)")
        return s, form

    def writer(s: auth.Session) -> None:
        if s.user.read_only:
            raise Forbidden("审计人员只读,不能提交操作 (auditors are read-only)")

    def page(request: Request, name: str, s: auth.Session | None, status: int = 200, **ctx: Any) -> HTMLResponse:
        ctx.update(request=request, user=s.user if s else None, csrf=s.csrf_token if s else "",
                   views=reads(request).views(s.user) if s else set())
        return templates.TemplateResponse(request, name, ctx, status_code=status)

    async def api_user(request: Request) -> User:
        h = request.headers.get("authorization", "")
        token = h[7:].strip() if h.lower().startswith("bearer ") else None
        user = await auth.user_for_api_token(request.app.state.pool, token)
        if user is None:
            raise _ApiError(401, "Unauthorized", "missing, unknown or revoked API token (Authorization: Bearer …)")
        if request.method != "GET" and user.read_only:
            raise _ApiError(403, "NotAuthorizedError", f"user {user.username} is an auditor: API access is read-only")
        return user

    @app.exception_handler(NotLoggedIn)
    async def _not_logged_in(request: Request, exc: NotLoggedIn) -> Response:
        if request.method == "GET":
            return RedirectResponse(f"/login?next={quote(str(request.url.path))}", status_code=303)
        return page(request, "error.html", None, status=403, message="未登录或会话已过期 (not logged in or session expired)")

    @app.exception_handler(Forbidden)
    async def _forbidden(request: Request, exc: Forbidden) -> Response:
        return page(request, "error.html", None, status=403, message=exc.message)

    @app.exception_handler(ReadDenied)
    async def _read_denied(request: Request, exc: ReadDenied) -> Response:
        if request.url.path.startswith("/api/"):
            return JSONResponse({"error": "NotAuthorizedError", "message": exc.message}, status_code=403)
        return page(request, "error.html", None, status=403, message=exc.message)

    @app.exception_handler(_ApiError)
    async def _api_error(request: Request, exc: _ApiError) -> Response:
        return JSONResponse({"error": exc.error_type, "message": exc.message}, status_code=exc.status)

    # A database outage: 数据库暂不可用 (503) and GET /health/db, not a traceback (issue 11).
    outage.install(app, lambda request, name, status, **ctx: page(request, name, None, status=status, **ctx))

    # ------------------------------------------------------------ login

    @app.get("/login", response_class=HTMLResponse)
    async def login_form(request: Request, next: str = "/my") -> Response:
        token = secrets.token_urlsafe(24)
        resp = page(request, "login.html", None, login_csrf=token, next=_safe_next(next), error="")
        resp.set_cookie(LOGIN_CSRF_COOKIE, token, httponly=True, samesite="lax", secure=settings.console_secure_cookies)
        return resp

    @app.post("/login")
    async def login_post(request: Request) -> Response:
        form = await request.form()
        cookie = request.cookies.get(LOGIN_CSRF_COOKIE) or ""
        if not cookie or not auth.csrf_ok(cookie, form.get("csrf_token")):  # type: ignore[arg-type]
            raise Forbidden("CSRF 校验失败,请重新打开登录页 (CSRF token missing or wrong)")
        username = str(form.get("username") or "").strip()
        nxt = _safe_next(str(form.get("next") or "/my"))
        try:
            user = await auth.login(request.app.state.pool, settings, username, str(form.get("password") or ""),
                                    remote(request))
        except auth.LoginError as e:
            throttled = isinstance(e, auth.ThrottledError)
            resp = page(request, "login.html", None, status=429 if throttled else 401, login_csrf=cookie,
                        next=nxt, error=str(e), username=username[:auth.MAX_USERNAME])
            if isinstance(e, auth.ThrottledError):
                resp.headers["Retry-After"] = str(e.retry_after)
            return resp
        token, _csrf = await auth.create_session(request.app.state.pool, settings, user, remote(request))
        resp = RedirectResponse(nxt, status_code=303)
        resp.set_cookie(auth.SESSION_COOKIE, token, httponly=True, samesite="lax",
                        secure=settings.console_secure_cookies, max_age=settings.console_session_max_hours * 3600)
        resp.delete_cookie(LOGIN_CSRF_COOKIE)
        return resp

    @app.post("/logout")
    async def logout(request: Request) -> Response:
        s, _form = await post_session(request)
        await auth.end_session(request.app.state.pool, request.cookies.get(auth.SESSION_COOKIE))
        log.info("logout", username=s.user.username)
        resp = RedirectResponse("/login", status_code=303)
        resp.delete_cookie(auth.SESSION_COOKIE)
        return resp

    # ------------------------------------------------------------ pages

    @app.get("/")
    async def root() -> Response:
        return RedirectResponse("/my", status_code=303)

    @app.get("/my", response_class=HTMLResponse)
    async def my_work(request: Request) -> Response:
        s = await session(request)
        rows = await reads(request).my_work(s.user)
        return page(request, "my.html", s, rows=rows, nav="my")

    @app.get("/cases", response_class=HTMLResponse)
    async def cases(request: Request) -> Response:
        s = await session(request)
        try:
            f = CaseFilter.from_params(request.query_params)
            rows, total = await reads(request).list_cases(s.user, f)
        except FormError as e:
            return page(request, "error.html", s, status=400, message=str(e))
        opts = await reads(request).filter_options(s.user)
        pages = max(1, (total + f.page_size - 1) // f.page_size)
        return page(request, "cases.html", s, rows=rows, total=total, f=f, pages=pages, opts=opts, nav="cases")

    @app.get("/cases/export.{fmt}")
    async def export(request: Request, fmt: str) -> Response:
        s = await session(request)
        return await _export(request, s.user, fmt)

    async def _export(request: Request, user: User, fmt: str) -> Response:
        try:
            f = CaseFilter.from_params(request.query_params)
            rows = await reads(request).export_rows(user, f)
        except FormError as e:
            return JSONResponse({"error": "InvalidInput", "message": str(e)}, status_code=400)
        stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M")
        if fmt == "xlsx":
            return Response(export_xlsx(rows), media_type=(
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
                headers={"Content-Disposition": f'attachment; filename="taizhang-{stamp}.xlsx"'})
        if fmt == "csv":
            return Response(export_csv(rows), media_type="text/csv; charset=utf-8",
                            headers={"Content-Disposition": f'attachment; filename="taizhang-{stamp}.csv"'})
        return JSONResponse({"error": "InvalidInput", "message": f"unknown export format {fmt!r} (xlsx or csv)"},
                            status_code=400)

    @app.get("/cases/{case_no}", response_class=HTMLResponse)
    async def case_page(request: Request, case_no: str, ok: str = "") -> Response:
        s = await session(request)
        return await _case_page(request, s, case_no, ok=ok)

    async def _case_page(request: Request, s: auth.Session, case_no: str, ok: str = "", error: str = "",
                         status: int = 200) -> Response:
        view = await reads(request).case_view(s.user, case_no)
        if view is None:  # not filed, or not this user's to see: the same answer (no probing)
            return page(request, "error.html", s, status=404, message=f"没有编号为 {case_no} 的案件 (no such case)")
        from admin.web.evidence_routes import evidence_context

        ev = await evidence_context(request, s.user, case_no, settings)
        return page(request, "case.html", s, status=status, v=view, ok=ok, error=error, nav="cases",
                    request_id=uuid.uuid4().hex, **ev)

    # ------------------------------------------------------------ audit (read-only)

    @app.get("/audit", response_class=HTMLResponse)
    async def audit_index(request: Request, case_no: str = "") -> Response:
        s = await session(request)
        runs = await reads(request).audit_index(s.user)
        if case_no.strip():
            return RedirectResponse(f"/audit/cases/{quote(case_no.strip())}", status_code=303)
        return page(request, "audit_index.html", s, runs=runs, nav="audit")

    @app.get("/audit/cases/{case_no}", response_class=HTMLResponse)
    async def audit_case(request: Request, case_no: str) -> Response:
        s = await session(request)
        report = await reads(request).audit_report(s.user, case_no)
        if report is None:
            return page(request, "error.html", s, status=404,
                        message=f"案件 {case_no} 在归档和服务器上都没有工作流历史 (no workflow history for this case)")
        from admin.evidence_store import audit_rows

        return page(request, "audit.html", s, r=report, nav="audit",
                    evidence=await audit_rows(request.app.state.pool, case_no, report.entries))

    @app.get("/audit/cases/{case_no}/timeline.{fmt}")
    async def audit_export(request: Request, case_no: str, fmt: str) -> Response:
        s = await session(request)
        if fmt not in ("html", "pdf"):
            return page(request, "error.html", s, status=400, message=f"未知格式 unknown format {fmt!r} (html, pdf)")
        report = await reads(request).audit_report(s.user, case_no, verify=False)
        if report is None:
            return page(request, "error.html", s, status=404, message=f"案件 {case_no} 没有工作流历史 (no history)")
        from audit import timeline as tl

        name = f"audit-timeline-{case_no}.{fmt}"
        disposition = {"Content-Disposition": f"attachment; filename*=UTF-8''{quote(name)}"}
        from admin.evidence_store import audit_rows

        evidence = await audit_rows(request.app.state.pool, case_no, report.entries)
        if fmt == "html":
            body = tl.render_html(case_no, report.entries, report.runs, evidence=evidence).encode()
            return Response(body, media_type="text/html; charset=utf-8", headers=disposition)
        return Response(tl.render_pdf(case_no, report.entries, report.runs, evidence=evidence),
                        media_type="application/pdf", headers=disposition)

    @app.post("/cases/{case_no}/act/{action}")
    async def case_act(request: Request, case_no: str, action: str) -> Response:
        s, form = await post_session(request)
        writer(s)
        try:
            act = Action(action)
        except ValueError:
            return await _case_page(request, s, case_no, error=f"未知操作 unknown action {action!r}", status=400)
        try:
            payload = payload_from_form(act, form)
            if form.get("expected_stage"):
                payload["expected_stage"] = form.get("expected_stage")
            result = await svc(request).perform(s.user, case_no, act, payload,
                                                request_id=_request_id(form.get("request_id")))
        except FormError as e:
            return await _case_page(request, s, case_no, error=f"{ACTION_LABELS_ZH[act]} ({act.value}): {e}",
                                    status=422)
        except ActionRefused as e:
            log.info("action_refused", user=s.user.username, case_no=case_no, action=act.value, why=e.message)
            return await _case_page(request, s, case_no, status=409,
                                    error=f"{ACTION_LABELS_ZH[act]} ({act.value}) 被拒绝 refused: {e.message}")
        log.info("action", user=s.user.username, case_no=case_no, action=act.value, stage=result.stage.value)
        return RedirectResponse(f"/cases/{quote(case_no)}?ok={act.value}", status_code=303)

    @app.get("/file", response_class=HTMLResponse)
    async def file_form(request: Request) -> Response:
        s = await session(request)
        return page(request, "file.html", s, nav="file", values={}, error="", report=None)

    @app.post("/file", response_class=HTMLResponse)
    async def file_post(request: Request) -> Response:
        s, form = await post_session(request)
        writer(s)
        values = {k: str(v) for k, v in form.items() if k != "csrf_token"}
        try:
            filing = filing_from_form(form)
            outcome = await svc(request).file_one(s.user, filing)
        except (FormError, ActionRefused) as e:
            msg = e.message if isinstance(e, ActionRefused) else str(e)
            return page(request, "file.html", s, status=422, nav="file", values=values, error=msg, report=None)
        if not outcome.filed:
            return page(request, "file.html", s, status=409, nav="file", values=values, error=outcome.reason,
                        report=None)
        return RedirectResponse(f"/cases/{quote(filing.case_no)}?ok=FILED", status_code=303)

    @app.get("/import", response_class=HTMLResponse)
    async def import_form(request: Request) -> Response:
        s = await session(request)
        return page(request, "import.html", s, nav="file", report=None, error="")

    @app.get("/import/template.xlsx")
    async def import_template(request: Request) -> Response:
        """The import template (导入模板, issue 13): headers, one example row, accepted words."""
        from admin.import_template import TEMPLATE_FILENAME, XLSX_MEDIA_TYPE, template_xlsx

        importer((await session(request)).user)
        return Response(await asyncio.to_thread(template_xlsx), media_type=XLSX_MEDIA_TYPE,
                        headers={"Content-Disposition": f'attachment; filename="{TEMPLATE_FILENAME}"'})

    def importer(user: User) -> None:
        """Who may import, checked before the upload's body is read."""
        if user.read_only or Role.RECTIFICATION_OFFICE not in user.roles:
            raise Forbidden("只有整改办可以导入案件 (only the rectification office imports cases)")

    async def parse_upload(filename: str, content: bytes) -> list[tuple[str, Any]]:
        """Parse off the event loop, within the import limits."""
        return await asyncio.to_thread(rows_from_upload, filename, content, settings.console_import_max_rows,
                                       settings.console_import_max_unzipped_bytes)

    @app.post("/import", response_class=HTMLResponse)
    async def import_post(request: Request) -> Response:
        importer((await session(request)).user)  # before the body is read
        await request.form(max_part_size=settings.console_upload_max_bytes)  # cached for post_session
        s, form = await post_session(request)
        writer(s)
        upload = form.get("file")
        if upload is None or isinstance(upload, str) or not upload.filename:
            return page(request, "import.html", s, status=422, nav="file", report=None,
                        error="请选择 .xlsx 或 .json 文件 (choose a file)")
        try:
            rows = await parse_upload(upload.filename, await upload.read())
            report = await svc(request).import_rows(s.user, rows)
        except (FormError, ActionRefused) as e:
            msg = e.message if isinstance(e, ActionRefused) else str(e)
            return page(request, "import.html", s, status=422, nav="file", report=None, error=msg)
        return page(request, "import.html", s, nav="file", report=report, error="", filename=upload.filename)

    @app.get("/dashboard", response_class=HTMLResponse)
    async def dashboard(request: Request) -> Response:
        s = await session(request)
        d = await reads(request).dashboard(s.user)
        return page(request, "dashboard.html", s, d=d, nav="dashboard")

    # Issue 9: blocked cases, UNBLOCK and the watchdog's nudges (admin/web/runtime.py).
    from admin.web import runtime as _runtime

    _runtime.register(app, page=page, session=session, post_session=post_session, writer=writer,
                      client=lambda r: svc(r).client, forbidden=Forbidden, reads=reads,
                      api_user=api_user, api_error=_ApiError)
    # Issue 13: leadership statistics 统计 (admin/web/statistics.py).
    from admin.web import statistics as _statistics

    _statistics.register(app, page=page, session=session, api_user=api_user, api_error=_ApiError)

    # Issue 13: monthly dispatch reports, their Schedule and downloads (admin/web/dispatch_routes.py).
    from admin.web import dispatch_routes

    dispatch_routes.register(app, dispatch_routes.Hooks(
        page=page, session=session, post_session=post_session, writer=writer, api_user=api_user,
        client=lambda r: svc(r).client, task_queue=settings.task_queue, forbidden=Forbidden, api_error=_ApiError))

    # Issue 13: the programme pages and API (admin/web/programme_routes.py).
    from admin.web import programme_routes

    programme_routes.register(app, templates=templates, page=page, session=session, post_session=post_session,
                              writer=writer, api_user=api_user, api_error=_ApiError, reads=reads, svc=svc,
                              jsonable=_jsonable)
    # Issue 14 (public disclosure): the office's publication page (admin/web/publication_routes.py).
    from admin.web import publication_routes

    publication_routes.register(app, page=page, session=session, post_session=post_session, writer=writer, svc=svc)

    # Issue 14: the look-back campaigns (回头看), pages and API (admin/web/lookback_routes.py).
    from admin.web import lookback_routes

    lookback_routes.register(app, templates=templates, page=page, session=session, post_session=post_session,
                             writer=writer, api_user=api_user, api_error=_ApiError, svc=svc, jsonable=_jsonable,
                             policy_file=settings.policy_file)

    # ------------------------------------------------------------ JSON API (casectl): admin/web/api_routes.py
    api_routes.register(app, api_user=api_user, reads=reads, svc=svc, export=_export, parse_upload=parse_upload)

    # Evidence files (佐证材料): upload, list, download; routes in their own module.
    from admin.web import evidence_routes

    evidence_routes.install(app, evidence_routes.Hooks(
        settings=settings, session=session, api_user=api_user, case_page=_case_page, page=page,
        forbidden=Forbidden, api_error=_ApiError))

    return app


def _safe_next(nxt: str) -> str:
    return nxt if nxt.startswith("/") and not nxt.startswith("//") else "/my"
