"""The public disclosure site (公开 Public disclosure, issue 14): no login, no session, no cookie.

    GET  /                                   the programmes
    GET  /p/{programme}                      the published rectification list, the plan (if published),
                                             the named units (曝光)
    GET  /p/{programme}/items/{item}         one item's public progress and its 公示 notices; the
                                             objection form while its posting window is open
    POST /p/{programme}/items/{item}/objections   lodge an objection -> the receipt page
    GET  /p/{programme}/postings             every 公示 notice of the programme with its window
    GET  /p/{programme}/exposure             曝光: units named for lagging, with the office's reason
    GET  /receipt?no=...                     an objection's status, ruling and published reason

Read-only except the objection form. What is public is decided in domain/disclosure.py (deny by
default: each page is built from fields that module copies); the office's choices come from the
publication ledger (admin/publication.py). None of the console's routes exist here.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import structlog
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from admin import publication as pubdb
from admin.public import store
from admin.web.security import SecurityMiddleware
from domain import disclosure as d

HERE = Path(__file__).resolve().parent
SHANGHAI = ZoneInfo("Asia/Shanghai")
log = structlog.get_logger("admin.public")
FORM_BODY_MAX = 64 * 1024


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    return int(raw) if raw else default


@dataclass(frozen=True)
class PublicSettings:
    """PUBLIC_* environment variables (database and Temporal settings come from config.Settings)."""

    host: str = "127.0.0.1"
    port: int = 8081
    limits: d.RateLimits = field(default_factory=d.RateLimits)
    max_text: int = d.MAX_TEXT
    # Take the client address from X-Forwarded-For's last hop: only behind a proxy that sets it.
    trust_forwarded: bool = False
    redeliver_seconds: float = 30.0  # how often objections the engine did not take are sent again

    @classmethod
    def from_env(cls) -> PublicSettings:
        console_port = _int("CONSOLE_PORT", 8080)
        return cls(
            host=os.environ.get("PUBLIC_HOST") or os.environ.get("CONSOLE_HOST") or "127.0.0.1",
            port=_int("PUBLIC_PORT", console_port + 1),
            limits=d.RateLimits(
                per_address=_int("PUBLIC_RATE_PER_ADDRESS", 5),
                address_window=timedelta(minutes=_int("PUBLIC_RATE_ADDRESS_WINDOW_MINUTES", 60)),
                per_contact=_int("PUBLIC_RATE_PER_CONTACT", 3),
                contact_window=timedelta(minutes=_int("PUBLIC_RATE_CONTACT_WINDOW_MINUTES", 24 * 60))),
            max_text=_int("PUBLIC_OBJECTION_MAX_CHARS", d.MAX_TEXT),
            trust_forwarded=os.environ.get("PUBLIC_TRUST_FORWARDED", "").lower() in ("1", "true", "yes"),
            redeliver_seconds=float(_int("PUBLIC_REDELIVER_SECONDS", 30)),
        )


def _templates() -> Jinja2Templates:
    t = Jinja2Templates(directory=str(HERE / "templates"))  # autoescape on for .html
    t.env.filters["dt"] = lambda v: "" if v is None else (
        v.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M") if isinstance(v, datetime) else str(v))
    t.env.filters["units"] = lambda v: "、".join(v or [])
    t.env.globals["OPTION_LABELS"] = d.OPTION_LABELS
    return t


def create_app(settings: Any = None, public: PublicSettings | None = None) -> FastAPI:
    from config import Settings, connect_client

    settings = settings or Settings.from_env()
    public = public or PublicSettings.from_env()
    templates = _templates()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        pool = await asyncpg.create_pool(settings.database_url, min_size=1, max_size=min(settings.db_pool_max, 10))
        app.state.pool = pool
        app.state.client = await connect_client(settings, identity="public-site")
        app.state.key = await store.form_key(pool)

        async def redeliver() -> None:
            # Objections stored while the engine did not answer are delivered at start and then
            # every `redeliver_seconds`, so none waits for a restart or for its receipt to be read.
            while True:
                try:
                    await store.deliver_pending(pool, app.state.client)
                except Exception as e:  # noqa: BLE001 - the site serves even if the engine is down now
                    log.warning("public_deliver_pending_failed", error=str(e))
                await asyncio.sleep(public.redeliver_seconds)

        task = asyncio.create_task(redeliver(), name="public-redeliver")
        log.info("public_site_started")
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await pool.close()

    app = FastAPI(title="督察整改公开 Public disclosure", lifespan=lifespan, docs_url=None, redoc_url=None,
                  openapi_url=None)
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")
    app.add_middleware(SecurityMiddleware, upload_max_bytes=FORM_BODY_MAX)

    def page(request: Request, name: str, status: int = 200, **ctx: Any) -> HTMLResponse:
        return templates.TemplateResponse(request, name, {"request": request, **ctx}, status_code=status)

    def not_found(request: Request, what: str) -> HTMLResponse:
        return page(request, "error.html", 404, title="未找到 Not found", message=what)

    async def programme_context(request: Request, pid: str) -> dict[str, Any] | None:
        pool = request.app.state.pool
        row = await pubdb.programme_row(pool, pid)
        if row is None:
            return None
        pub = await pubdb.publication(pool, pid)
        today = pubdb.today()
        rows = await pubdb.item_rows(pool, pid)
        items = [d.public_item(r, pub.options, today) for r in rows]
        return {"programme": d.public_programme(row, pub.options, items), "items": items,
                "rows": rows, "opts": pub.options, "namings": [_naming(n) for n in pub.active_namings()]}

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> Response:
        return Response("ok", media_type="text/plain")

    @app.get("/", response_class=HTMLResponse)
    async def index(request: Request) -> HTMLResponse:
        rows = await pubdb.programme_rows(request.app.state.pool)
        progs = [{k: r[k] for k in ("programme_id", "name", "locality", "inspection_round")} for r in rows]
        return page(request, "index.html", programmes=progs)

    @app.get("/p/{pid}", response_class=HTMLResponse)
    async def programme(request: Request, pid: str) -> HTMLResponse:
        ctx = await programme_context(request, pid)
        if ctx is None:
            return not_found(request, f"没有编号为 {pid} 的整改方案 No programme {pid}")
        return page(request, "programme.html", **ctx)

    @app.get("/p/{pid}/postings", response_class=HTMLResponse)
    async def postings(request: Request, pid: str) -> HTMLResponse:
        ctx = await programme_context(request, pid)
        if ctx is None:
            return not_found(request, f"没有编号为 {pid} 的整改方案 No programme {pid}")
        now = datetime.now(UTC)
        notices = []
        for r, item in zip(ctx["rows"], ctx["items"], strict=True):
            for n in d.posting_notices(r["detail"] or {}, now):
                notices.append({"item": item, **n})
        notices.sort(key=lambda n: n["started_at"] or now, reverse=True)
        return page(request, "postings.html", notices=notices, **ctx)

    @app.get("/p/{pid}/exposure", response_class=HTMLResponse)
    async def exposure(request: Request, pid: str) -> HTMLResponse:
        ctx = await programme_context(request, pid)
        if ctx is None:
            return not_found(request, f"没有编号为 {pid} 的整改方案 No programme {pid}")
        return page(request, "exposure.html", **ctx)

    async def item_page(request: Request, pid: str, case_no: str, status: int = 200,
                        error: str = "", form: dict[str, str] | None = None) -> HTMLResponse:
        pool = request.app.state.pool
        prog = await pubdb.programme_row(pool, pid)
        row = await pubdb.item_row(pool, pid, case_no) if prog else None
        if row is None:
            return not_found(request, f"该整改方案中没有事项 {case_no} No item {case_no} in programme {pid}")
        pub = await pubdb.publication(pool, pid)
        now = datetime.now(UTC)
        notices = d.posting_notices(row["detail"] or {}, now)
        reasons = await store.ruling_reasons(pool, case_no)
        for n in notices:
            for o in n["objections"]:
                o["ruling_reason"] = reasons.get(str(o["objection_id"]), "") if o["ruling"] else ""
        open_ = d.accepts_objections(row["stage"], row["detail"] or {}, now)
        return page(request, "item.html", status, programme={"programme_id": pid, "name": prog["name"]},
                    item=d.public_item(row, pub.options, pubdb.today()), notices=notices, accepts=open_,
                    token=d.form_token(request.app.state.key, case_no, now) if open_ else "",
                    error=error, form=form or {}, max_text=public.max_text, min_text=d.MIN_TEXT)

    @app.get("/p/{pid}/items/{case_no}", response_class=HTMLResponse)
    async def item(request: Request, pid: str, case_no: str) -> HTMLResponse:
        return await item_page(request, pid, case_no)

    @app.post("/p/{pid}/items/{case_no}/objections", response_class=HTMLResponse)
    async def object_(request: Request, pid: str, case_no: str) -> HTMLResponse:
        pool = request.app.state.pool
        form = {k: v for k, v in (await request.form()).items() if isinstance(v, str)}
        keep = {"text": form.get("text", "")[:public.max_text + 100], "contact": form.get("contact", "")[:300]}
        row = await pubdb.item_row(pool, pid, case_no)
        if row is None:
            return not_found(request, f"该整改方案中没有事项 {case_no} No item {case_no} in programme {pid}")
        now = datetime.now(UTC)
        if not _same_origin(request):
            return await item_page(request, pid, case_no, 403, "请从本站表单提交 Submit the form from this site", keep)
        try:
            d.check_form_token(request.app.state.key, case_no, form.get("token", ""), now)
            obj = d.check_objection(form.get("text", ""), form.get("contact", ""), public.max_text)
        except d.ObjectionInputError as e:
            return await item_page(request, pid, case_no, 422, str(e), keep)
        if not d.accepts_objections(row["stage"], row["detail"] or {}, now):
            return await item_page(request, pid, case_no, 409,
                                   "该事项不在公示期内,不受理异议 This item is not in an open public posting: "
                                   "objections are not accepted", keep)
        address = _address(request, public.trust_forwarded)
        try:
            lodged = await store.lodge(pool, pid, case_no, obj, address, public.limits)
        except store.RateLimited as e:
            resp = page(request, "error.html", 429, title="提交过于频繁 Too many objections",
                        message=f"异议未提交 Objection not lodged: {e.message}. 请稍后再试 Please try again later.")
            resp.headers["Retry-After"] = str(int(public.limits.address_window.total_seconds()))
            return resp
        status = await store.deliver(pool, request.app.state.client, lodged.row_id)
        log.info("public_objection", ref=lodged.objection_ref, case_no=case_no, status=status)
        view = await store.receipt_view(pool, lodged.receipt)
        return page(request, "receipt.html", 200 if status != "REFUSED" else 409, r=view, new=True)

    @app.get("/receipt", response_class=HTMLResponse)
    async def receipt(request: Request, no: str = "") -> HTMLResponse:
        if not no:
            return page(request, "receipt_lookup.html")
        view = await store.receipt_view(request.app.state.pool, store.normalise_receipt(no))
        if view is None:
            return page(request, "receipt_lookup.html", 404, error="没有这个回执号 No such receipt number")
        if view["status"] == "STORED":  # not delivered yet (engine away when lodged): try again now
            await store.deliver_pending(request.app.state.pool, request.app.state.client)
            view = await store.receipt_view(request.app.state.pool, view["receipt"])
        return page(request, "receipt.html", r=view, new=False)

    return app


def _naming(n: d.Naming) -> dict[str, Any]:
    return {"unit": n.unit, "reason": n.reason, "at": n.at}  # never who decided it


def _same_origin(request: Request) -> bool:
    """A browser's POST says where its form came from (Origin, else Referer); another site's is refused.
    A request with neither (curl) is let through: it carries no one's cookie, and the token still applies."""
    origin = request.headers.get("origin") or request.headers.get("referer") or ""
    if not origin or origin == "null":
        return not origin
    host = request.headers.get("host", "")
    return origin.split("://", 1)[-1].split("/", 1)[0] == host


def _address(request: Request, trust_forwarded: bool) -> str:
    if trust_forwarded:
        fwd = request.headers.get("x-forwarded-for", "")
        if fwd:
            return fwd.split(",")[-1].strip()[:64]
    return (request.client.host if request.client else "unknown")[:64]
