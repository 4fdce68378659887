"""Evidence files in the console and the JSON API: upload, list, download, preview.

Routes (all scoped by `domain.evidence.may_read_case_files` / `may_add_case_files`, deny by
default, checked before the request body is read):

    POST /cases/{case}/evidence                     console form (multipart: csrf_token, file)
    GET  /cases/{case}/evidence/{sha256}[?inline=1] download (inline preview for JPEG/PNG)
    POST /api/v1/cases/{case}/evidence?filename=N   casectl: the raw file as the request body
    GET  /api/v1/cases/{case}/evidence              list
    GET  /api/v1/cases/{case}/evidence/{sha256}     download

The file's type is taken from its first bytes, its size is checked as it arrives, and it
is stored outside the workflow history (`admin/evidence_store.py`); a case refers to it as
`evidence:sha256:<hex>` in action payloads.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import asyncpg
import structlog
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response, StreamingResponse
from starlette.datastructures import UploadFile
from starlette.requests import ClientDisconnect

from admin import evidence_store as store
from admin.users import User
from config import Settings
from domain.enums import Role
from domain.evidence import (
    INLINE_TYPES,
    MEDIA_TYPES,
    EvidenceError,
    check_sha256,
    clean_name,
    may_add_case_files,
    may_read_case_files,
)
from domain.visibility import Reader, parts_for

log = structlog.get_logger("admin.web.evidence")

FORM_OVERHEAD = 64 * 1024  # multipart boundaries, headers and the CSRF field around the file
DRAIN_MAX = 32 * 1024 * 1024  # an over-limit body up to this much more is read and discarded, so that
# the client gets the 413 reply instead of a reset connection; beyond it the connection is closed


@dataclass
class Hooks:
    """What the routes need from `create_app` (its session helpers and error types)."""

    settings: Settings
    session: Callable[[Request], Awaitable[Any]]  # -> auth.Session, raises NotLoggedIn
    api_user: Callable[[Request], Awaitable[User]]  # raises the app's _ApiError
    case_page: Callable[..., Awaitable[Response]]  # (request, session, case_no, ok=, error=, status=)
    page: Callable[..., Response]
    forbidden: type[Exception]  # Forbidden(message) -> 403 page
    api_error: type[Exception]  # _ApiError(status, error_type, message)


def _reader(user: User) -> Reader:
    return Reader(user_id=user.username, unit=user.unit, roles=tuple(user.roles))


async def evidence_context(request: Request, user: User, case_no: str, settings: Settings) -> dict[str, Any]:
    """Template variables for the case page: the case's files (None when the user may not see
    them), whether the user may add files, and the limit."""
    pool, home = request.app.state.pool, request.app.state.reads.home
    facts = await store.case_facts(pool, case_no)
    if facts is None or not may_read_case_files(_reader(user), facts, home):
        return {"evidence": None, "evidence_may_add": False, "evidence_limit": settings.evidence_max_bytes}
    return {"evidence": await store.list_files(pool, case_no),
            "evidence_may_add": may_add_case_files(_reader(user), facts, home),
            "evidence_limit": settings.evidence_max_bytes}


# The upload routes, for a request-size limit in front of the app (a middleware bounding bodies
# must let these through up to `upload_body_limit`; the routes check the file's size themselves).
UPLOAD_PATH = re.compile(r"^(/api/v1)?/cases/[^/]+/evidence$")


def upload_body_limit(path: str, settings: Settings) -> int | None:
    """The largest request body an evidence upload route accepts at `path`; None: not one."""
    return settings.evidence_max_bytes + FORM_OVERHEAD if UPLOAD_PATH.match(path) else None


def _disposition(kind: str, name: str) -> str:
    ascii_name = "".join(c if c.isascii() and c.isprintable() and c not in '"\\;' else "_" for c in name)
    return f"{kind}; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(name, safe='')}"


async def _drain(request: Request) -> None:
    """Read (and drop) what is left of the body, up to DRAIN_MAX, so the reply reaches the client."""
    n = 0
    try:
        async for piece in request.stream():
            n += len(piece)
            if n > DRAIN_MAX:
                return
    except (RuntimeError, ClientDisconnect):  # already consumed, or the client went away
        return


def _declared_length(request: Request) -> int | None:
    raw = request.headers.get("content-length")
    if raw is None:
        return None
    try:
        return int(raw)
    except ValueError:
        return None


def install(r: FastAPI, h: Hooks) -> None:
    """Add the evidence routes to the console app (as its own routes, so that `app.routes`
    lists each of them)."""
    limit = h.settings.evidence_max_bytes

    async def pool_of(request: Request) -> asyncpg.Pool:
        return request.app.state.pool

    async def scoped(request: Request, user: User, case_no: str, write: bool) -> tuple[bool, str]:
        """(allowed, why not); (False, '') when there is no such case or the user may not see it
        at all (the same answer, as for the case page: no probing)."""
        facts = await store.case_facts(await pool_of(request), case_no)
        home = request.app.state.reads.home
        if facts is None or not parts_for(_reader(user), facts, home):
            return False, ""
        if write:
            if user.read_only:
                return False, f"user {user.username} is an auditor: read-only, cannot add evidence"
            if not may_add_case_files(_reader(user), facts, home):
                return False, (f"user {user.username} ({user.unit}) may not add evidence to case {case_no}: "
                               "only the office and the units working on or supervising the case may")
        elif not may_read_case_files(_reader(user), facts, home):
            return False, f"user {user.username} ({user.unit}) may not see the evidence files of case {case_no}"
        return True, ""

    def actor_for(user: User) -> Any:
        acting = [r for r in user.roles if r is not Role.AUDITOR]
        return user.actor(acting[0])

    async def lookup(request: Request, case_no: str, raw_sha: str) -> tuple[store.EvidenceFile | None, str, int]:
        """(the file, else the error message and status)."""
        try:
            sha = check_sha256(raw_sha)
        except EvidenceError as e:
            return None, str(e), 400
        f = await store.get_file(await pool_of(request), case_no, sha)
        if f is None:
            return None, f"case {case_no} has no evidence file {sha}", 404
        return f, "", 200

    async def download(request: Request, f: store.EvidenceFile, inline: bool) -> Response:
        show_inline = inline and f.media_type in INLINE_TYPES
        headers = {
            "Content-Length": str(f.size),
            "Content-Disposition": _disposition("inline" if show_inline else "attachment", f.original_name),
            "ETag": f'"{f.sha256}"',
            "X-Content-Type-Options": "nosniff",
            "Cache-Control": "private, no-store",
            "Content-Security-Policy": "default-src 'none'; img-src 'self'; sandbox",
            "X-Evidence-Sha256": f.sha256,
        }
        return StreamingResponse(store.iter_bytes(await pool_of(request), f.sha256), media_type=f.media_type,
                                 headers=headers)

    # ------------------------------------------------------------ console (session + CSRF)

    @r.post("/cases/{case_no}/evidence")
    async def console_upload(request: Request, case_no: str) -> Response:
        from admin import auth

        s = await h.session(request)
        ok, why = await scoped(request, s.user, case_no, write=True)
        if not ok:
            await _drain(request)
            if not why:
                return h.page(request, "error.html", s, status=404, message=f"没有编号为 {case_no} 的案件 (no such case)")
            raise h.forbidden(f"无权上传佐证材料 (not allowed): {why}")
        declared = _declared_length(request)
        if declared is None:
            return await h.case_page(request, s, case_no, status=411,
                                     error="上传失败 upload refused: the request has no Content-Length")
        if declared > limit + FORM_OVERHEAD:
            if declared <= limit + DRAIN_MAX:
                await _drain(request)
            return await h.case_page(request, s, case_no, status=413, error=(
                f"上传失败 upload refused: 文件过大 file too large: the request has {declared:,} bytes; "
                f"each file may have at most {limit:,} bytes ({limit / 1024 / 1024:.1f} MiB, EVIDENCE_MAX_BYTES)"))
        try:
            form = await request.form(max_files=1, max_fields=8, max_part_size=64 * 1024)
        except Exception as e:  # malformed multipart, too many parts
            return await h.case_page(request, s, case_no, status=400, error=f"上传失败 upload refused: {e}")
        try:
            if not auth.csrf_ok(s.csrf_token, form.get("csrf_token")):  # type: ignore[arg-type]
                raise h.forbidden("CSRF 校验失败:表单已过期或来源不明,请刷新页面后重试 (CSRF token missing or wrong)")
            upload = form.get("file")
            if not isinstance(upload, UploadFile) or not upload.filename:
                return await h.case_page(request, s, case_no, status=422,
                                         error="上传失败 upload refused: 请选择文件 (choose a file: JPEG, PNG or PDF)")
            try:
                name = clean_name(upload.filename)
                up = await store.spool_file(upload.file, name, limit)
                f, created = await store.store(await pool_of(request), case_no, up, actor_for(s.user))
            except store.EvidenceTooLarge as e:
                return await h.case_page(request, s, case_no, status=413,
                                         error=f"上传失败 upload refused: 文件过大 {e}")
            except EvidenceError as e:
                return await h.case_page(request, s, case_no, status=422,
                                         error=f"上传失败 upload refused: 文件不合格 {e}")
        finally:
            await form.close()
        log.info("evidence_uploaded", user=s.user.username, case_no=case_no, sha256=f.sha256, size=f.size,
                 media_type=f.media_type, new=created)
        return RedirectResponse(f"/cases/{quote(case_no)}?ok=EVIDENCE&file={f.sha256}#evidence", status_code=303)

    @r.get("/cases/{case_no}/evidence/{sha}")
    async def console_download(request: Request, case_no: str, sha: str, inline: str = "") -> Response:
        s = await h.session(request)
        ok, why = await scoped(request, s.user, case_no, write=False)
        if not ok:
            if not why:
                return h.page(request, "error.html", s, status=404, message=f"没有编号为 {case_no} 的案件 (no such case)")
            raise h.forbidden(f"无权查看佐证材料 (not allowed): {why}")
        f, msg, status = await lookup(request, case_no, sha)
        if f is None:
            return h.page(request, "error.html", s, status=status, message=f"佐证材料不存在 (no such evidence file): {msg}")
        return await download(request, f, inline in ("1", "true", "yes"))

    # ------------------------------------------------------------ JSON API (casectl)

    async def api_scoped(request: Request, case_no: str, write: bool) -> User:
        user = await h.api_user(request)
        ok, why = await scoped(request, user, case_no, write=write)
        if not ok:
            if write:
                await _drain(request)
            if not why:
                raise h.api_error(404, "CaseNotFoundError", f"no case {case_no} has been filed")
            raise h.api_error(403, "NotAuthorizedError", why)
        return user

    @r.post("/api/v1/cases/{case_no}/evidence")
    async def api_upload(request: Request, case_no: str, filename: str = "") -> Response:
        user = await api_scoped(request, case_no, write=True)
        declared = _declared_length(request)
        try:
            name = clean_name(filename or request.headers.get("x-filename", ""))
            if declared is not None and declared > limit:
                if declared <= limit + DRAIN_MAX:
                    await _drain(request)
                raise store.EvidenceTooLarge(
                    f"{name}: file too large: {declared:,} bytes; at most {limit:,} bytes "
                    f"({limit / 1024 / 1024:.1f} MiB) per file (EVIDENCE_MAX_BYTES)")
            up = await store.spool_stream(request.stream(), name, limit)
        except store.EvidenceTooLarge as e:
            await _drain(request)
            raise h.api_error(413, "FileTooLarge", str(e)) from None
        except EvidenceError as e:
            await _drain(request)
            raise h.api_error(422, "InvalidInput", str(e)) from None
        except ClientDisconnect:
            raise h.api_error(400, "InvalidInput", "the upload was interrupted (client disconnected)") from None
        try:
            f, created = await store.store(await pool_of(request), case_no, up, actor_for(user))
        finally:
            up.close()
        log.info("evidence_uploaded", user=user.username, case_no=case_no, sha256=f.sha256, size=f.size,
                 media_type=f.media_type, new=created)
        return JSONResponse(f.to_json() | {"created": created}, status_code=201 if created else 200)

    @r.get("/api/v1/cases/{case_no}/evidence")
    async def api_list(request: Request, case_no: str) -> Response:
        await api_scoped(request, case_no, write=False)
        files = await store.list_files(await pool_of(request), case_no)
        return JSONResponse({"case_no": case_no, "files": [f.to_json() for f in files],
                             "accepted_types": sorted(MEDIA_TYPES), "max_bytes": limit})

    @r.get("/api/v1/cases/{case_no}/evidence/{sha}")
    async def api_download(request: Request, case_no: str, sha: str) -> Response:
        await api_scoped(request, case_no, write=False)
        f, msg, status = await lookup(request, case_no, sha)
        if f is None:
            raise h.api_error(status, "InvalidInput" if status == 400 else "NotFound", msg)
        return await download(request, f, inline=False)
