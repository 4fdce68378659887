"""Response headers and request-size limits for the console (issue 10, hostile input).

- Every response: a Content-Security-Policy that allows only the console's own static files
  (the templates have no inline script or style), X-Frame-Options DENY, nosniff and a
  Referrer-Policy; every page and API answer (everything but /static) is `no-store`.
- Cookies get `Secure` whenever the console is reached over TLS: the request's scheme is
  https, or a proxy says so in X-Forwarded-Proto. (CONSOLE_SECURE_COOKIES=true forces it.)
- A control character in the URL path or a query parameter is refused (400, naming it) before
  any route runs: it could only reach PostgreSQL (NUL: a 500) or a response header.
- Request bodies are bounded: uploads (/import, /api/v1/import, any multipart form) by
  CONSOLE_UPLOAD_MAX_BYTES, every other request by a fixed 1 MiB; a larger body is refused with 413 naming the limit,
  from Content-Length before anything is read, or as soon as the stream passes the limit.
"""

from __future__ import annotations

import re
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'")
HEADERS = {
    b"content-security-policy": CSP.encode(),
    b"x-frame-options": b"DENY",
    b"x-content-type-options": b"nosniff",
    b"referrer-policy": b"same-origin",
}
UPLOAD_PATHS = ("/import", "/api/v1/import")
DEFAULT_BODY_LIMIT = 1024 * 1024
EVIDENCE_PATH = re.compile(r"^(/api/v1)?/cases/[^/]+/evidence$")  # = admin.web.evidence_routes.UPLOAD_PATH


def over_tls(scope: Scope) -> bool:
    if scope.get("scheme") == "https":
        return True
    for k, v in scope.get("headers") or []:
        if k == b"x-forwarded-proto":
            return v.decode("latin-1").split(",")[0].strip().lower() == "https"
    return False


def body_limit(scope: Scope, upload_limit: int, evidence_limit: int = 0) -> int:
    """Uploads (the import paths, any multipart form) up to the upload limit; evidence uploads
    (/cases/X/evidence, /api/v1/cases/X/evidence) up to `evidence_limit` (the routes check the
    file's own size, EVIDENCE_MAX_BYTES); anything else 1 MiB."""
    if scope.get("path") in UPLOAD_PATHS:
        return upload_limit
    if evidence_limit and EVIDENCE_PATH.match(str(scope.get("path", ""))):
        return evidence_limit
    ctype = next((v for k, v in scope.get("headers") or [] if k == b"content-type"), b"")
    return max(upload_limit, DEFAULT_BODY_LIMIT) if ctype.startswith(b"multipart/") else DEFAULT_BODY_LIMIT


def too_large_message(limit: int, upload: bool) -> str:
    what = "CONSOLE_UPLOAD_MAX_BYTES" if upload else "the console's request limit"
    return (f"请求过大 (request too large): at most {limit} bytes ({limit // 1024} KiB, {what}); "
            "split the file or ask the operator")


class SecurityMiddleware:
    """Pure ASGI, so that it also sees the body as it streams in."""

    def __init__(self, app: ASGIApp, upload_max_bytes: int, force_secure_cookies: bool = False,
                 evidence_max_body: int = 0) -> None:
        self.app = app
        self.upload_max_bytes = upload_max_bytes
        self.evidence_max_body = evidence_max_body
        self.force_secure = force_secure_cookies

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        secure = self.force_secure or over_tls(scope)
        static = str(scope.get("path", "")).startswith("/static/")
        limit = body_limit(scope, self.upload_max_bytes, self.evidence_max_body)
        upload = limit != DEFAULT_BODY_LIMIT or scope.get("path") in UPLOAD_PATHS
        length = next((v for k, v in scope.get("headers") or [] if k == b"content-length"), None)
        started = False

        async def send_wrapped(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() not in HEADERS]
                headers += list(HEADERS.items())
                if not static:
                    headers = [(k, v) for k, v in headers if k.lower() != b"cache-control"]
                    headers.append((b"cache-control", b"no-store"))
                if secure:
                    headers = [(k, _secure_cookie(v) if k.lower() == b"set-cookie" else v) for k, v in headers]
                message = {**message, "headers": headers}
            await send(message)

        bad_url = url_control_char(scope)
        if bad_url:
            await _refuse(send_wrapped, bad_url, status=400, error="InvalidInput")
            return
        if length is not None and length.isdigit() and int(length) > limit:
            await _refuse(send_wrapped, too_large_message(limit, upload))
            return
        seen = 0

        async def receive_limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise _BodyTooLarge(too_large_message(limit, upload))
            return message

        try:
            await self.app(scope, receive_limited, send_wrapped)
        except _BodyTooLarge as e:
            if started:
                raise
            await _refuse(send_wrapped, str(e))


def url_control_char(scope: Scope) -> str:
    """A message when the path or a query parameter holds a control character (else "").

    Such a value could only reach PostgreSQL (which refuses NUL: a 500) or a header; refused
    here once for every route, naming where it is.
    """
    from urllib.parse import parse_qsl

    from domain.text import control_char

    path = str(scope.get("path", ""))
    if (bad := control_char(path, multiline=False)) is not None:
        return f"the URL path contains a control character U+{ord(bad[1]):04X}"
    query = (scope.get("query_string") or b"").decode("latin-1")
    for name, value in parse_qsl(query, keep_blank_values=True, encoding="utf-8", errors="replace"):
        for what, text in (("name", name), ("value", value)):
            if (bad := control_char(text, multiline=False)) is not None:
                return (f"filter {name[:40]!r}: the query parameter {what} contains a control character "
                        f"U+{ord(bad[1]):04X}")
    return ""


class _BodyTooLarge(Exception):
    pass


def _secure_cookie(v: bytes) -> bytes:
    return v if b"secure" in v.lower() else v + b"; Secure"


async def _refuse(send: Any, message: str, status: int = 413, error: str = "RequestTooLarge") -> None:
    import json

    body = json.dumps({"error": error, "message": message}, ensure_ascii=False).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json; charset=utf-8"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
