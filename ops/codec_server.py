"""Codec server: Temporal's remote codec protocol, so the UI and CLI show decrypted payloads.

`POST .../encode` and `POST .../decode` (only the last path segment counts, as the protocol
says) take and return a `Payloads` message as protobuf JSON. Every request needs
`Authorization: Bearer <token>`; tokens come from `CODEC_AUTH_TOKENS` (`name=token,...`) or
`CODEC_AUTH_TOKENS_FILE` (one `name=token` per line), compared in constant time; the log names
the token's holder, never the token or a payload. `X-Namespace`, when sent, must be the engine's
namespace (`TEMPORAL_NAMESPACE`). CORS answers the UI's origin(s) in `CODEC_CORS_ORIGINS`
(comma-separated; credentials allowed, so the UI's `TEMPORAL_CODEC_INCLUDE_CREDENTIALS` and
`TEMPORAL_CODEC_PASS_ACCESS_TOKEN` work). Keys: the same `PAYLOAD_KEYS` / `PAYLOAD_KEYS_FILE` /
`PAYLOAD_KEY_ID` as the worker (ops/codec.py).

For the Temporal UI, which sends its user's OIDC access token (`TEMPORAL_CODEC_PASS_ACCESS_TOKEN`),
set `CODEC_OIDC_USERINFO_URL` (the identity provider's userinfo endpoint): a bearer token that is
not a static one is accepted when the provider answers that endpoint with 200 for it, and, with
`CODEC_OIDC_REQUIRED_GROUP`, lists that group in its `groups` claim (answers cached 60 s).

Run: `python -m ops.codec_server` (CODEC_SERVER_HOST, CODEC_SERVER_PORT; default 127.0.0.1:8089),
behind TLS. CLI: `temporal workflow show -w case-X --codec-endpoint https://codec.example/ \
--codec-auth "Bearer $TOKEN"`.
"""

from __future__ import annotations

import hmac
import os
import sys
from collections.abc import Mapping

import structlog
from fastapi import FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse, Response
from google.protobuf import json_format
from temporalio.api.common.v1 import Payloads

from ops.codec import KeyRing, PayloadKeyError, decrypt_payloads, encrypt_payloads, keyring_from_env

log = structlog.get_logger(__name__)

MAX_BODY_BYTES = 8 * 1024 * 1024


def parse_tokens(text: str, where: str) -> dict[str, str]:
    """`name=token` items (commas or lines) -> {token: name}; refuses short or repeated tokens."""
    out: dict[str, str] = {}
    items = [i.strip() for line in text.splitlines() for i in line.split(",")]
    for n, item in enumerate((i for i in items if i and not i.startswith("#")), start=1):
        name, sep, token = item.partition("=")
        name, token = name.strip(), token.strip()
        if not sep or not name or not token:
            raise ValueError(f"{where}: item {n} is not name=token")
        if len(token) < 24:
            raise ValueError(f"{where}: the token of {name!r} is shorter than 24 characters")
        if token in out:
            raise ValueError(f"{where}: the token of {name!r} is also {out[token]!r}'s")
        out[token] = name
    return out


def tokens_from_env(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    env = os.environ if environ is None else environ
    tokens: dict[str, str] = {}
    if env.get("CODEC_AUTH_TOKENS"):
        tokens.update(parse_tokens(env["CODEC_AUTH_TOKENS"], "CODEC_AUTH_TOKENS"))
    path = env.get("CODEC_AUTH_TOKENS_FILE")
    if path:
        try:
            with open(path, encoding="utf-8") as f:
                tokens.update(parse_tokens(f.read(), f"CODEC_AUTH_TOKENS_FILE={path}"))
        except OSError as e:
            raise ValueError(f"CODEC_AUTH_TOKENS_FILE={path}: {e.strerror}") from None
    if not tokens:
        raise ValueError("the codec server needs CODEC_AUTH_TOKENS or CODEC_AUTH_TOKENS_FILE (nobody could use it)")
    return tokens


def _holder(tokens: Mapping[str, str], header: str | None) -> str | None:
    if not header or not header.startswith("Bearer "):
        return None
    given = header[len("Bearer "):].strip().encode()
    found = None
    for token, name in tokens.items():  # every token compared, in constant time each
        if hmac.compare_digest(given, token.encode()):
            found = name
    return found


class OidcUserinfo:
    """Accepts an OIDC access token that the provider's userinfo endpoint accepts (and, if set,
    whose `groups` claim has the required group). Answers are cached for `ttl` seconds, keyed by
    the token's sha256 (the token itself is not kept)."""

    def __init__(self, url: str, required_group: str = "", ttl: float = 60.0, timeout: float = 5.0) -> None:
        self.url, self.required_group, self.ttl, self.timeout = url, required_group, ttl, timeout
        self._cache: dict[str, tuple[float, str | None]] = {}

    async def holder(self, header: str | None) -> str | None:
        import hashlib
        import time

        import httpx

        if not header or not header.startswith("Bearer "):
            return None
        digest = hashlib.sha256(header.encode()).hexdigest()
        hit = self._cache.get(digest)
        if hit is not None and hit[0] > time.monotonic():
            return hit[1]
        who: str | None = None
        try:
            async with httpx.AsyncClient(timeout=self.timeout) as http:
                r = await http.get(self.url, headers={"Authorization": header})
            if r.status_code == 200:
                info = r.json()
                groups = info.get("groups") or []
                if not self.required_group or self.required_group in groups:
                    who = str(info.get("preferred_username") or info.get("sub") or "oidc-user")
        except (httpx.HTTPError, ValueError) as e:
            log.warning("codec_oidc_unreachable", error=type(e).__name__)
            return None  # not cached: the next request asks again
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[digest] = (time.monotonic() + self.ttl, who)
        return who


def create_codec_app(
    keys: KeyRing, tokens: Mapping[str, str], namespace: str, cors_origins: list[str] | None = None,
    oidc: OidcUserinfo | None = None,
) -> FastAPI:
    app = FastAPI(title="case engine codec server", docs_url=None, redoc_url=None, openapi_url=None)
    if cors_origins:
        app.add_middleware(
            CORSMiddleware, allow_origins=cors_origins, allow_credentials=True, allow_methods=["POST"],
            allow_headers=["content-type", "x-namespace", "authorization"], max_age=600,
        )

    async def handle(request: Request, op: str) -> Response:
        who = _holder(tokens, request.headers.get("authorization"))
        if who is None and oidc is not None:
            who = await oidc.holder(request.headers.get("authorization"))
        if who is None:
            log.warning("codec_refused", op=op, reason="no or unknown bearer token",
                        client=request.client.host if request.client else "")
            return JSONResponse({"error": "a valid bearer token is required"}, status_code=401,
                                headers={"WWW-Authenticate": "Bearer"})
        ns = request.headers.get("x-namespace")
        if ns and ns != namespace:
            log.warning("codec_refused", op=op, user=who, reason="other namespace", namespace=ns)
            return JSONResponse({"error": f"this codec server serves namespace {namespace!r} only"}, status_code=403)
        body = await request.body()
        if len(body) > MAX_BODY_BYTES:
            return JSONResponse({"error": f"body over {MAX_BODY_BYTES} bytes"}, status_code=413)
        try:
            msg = json_format.Parse(body or b"{}", Payloads())
        except json_format.ParseError as e:
            return JSONResponse({"error": f"not a Payloads message in protobuf JSON: {e}"}, status_code=400)
        try:
            out = (decrypt_payloads(msg.payloads, keys) if op == "decode"
                   else encrypt_payloads(msg.payloads, keys))
        except PayloadKeyError as e:
            log.warning("codec_failed", op=op, user=who, error=str(e))
            return JSONResponse({"error": str(e)}, status_code=400)
        log.info("codec", op=op, user=who, payloads=len(out))
        return Response(json_format.MessageToJson(Payloads(payloads=out)), media_type="application/json",
                        headers={"Cache-Control": "no-store"})

    @app.post("/{prefix:path}")
    async def codec(prefix: str, request: Request) -> Response:
        op = prefix.rstrip("/").rsplit("/", 1)[-1]
        if op not in ("encode", "decode"):
            return JSONResponse({"error": "POST .../encode or .../decode"}, status_code=404)
        return await handle(request, op)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app


def app_from_env() -> FastAPI:
    keys = keyring_from_env()
    if keys is None:
        raise PayloadKeyError("the codec server needs PAYLOAD_KEYS or PAYLOAD_KEYS_FILE")
    origins = [o.strip() for o in os.environ.get("CODEC_CORS_ORIGINS", "").split(",") if o.strip()]
    oidc = None
    if os.environ.get("CODEC_OIDC_USERINFO_URL"):
        oidc = OidcUserinfo(os.environ["CODEC_OIDC_USERINFO_URL"], os.environ.get("CODEC_OIDC_REQUIRED_GROUP", ""))
    tokens = tokens_from_env() if oidc is None or os.environ.get("CODEC_AUTH_TOKENS") \
        or os.environ.get("CODEC_AUTH_TOKENS_FILE") else {}
    return create_codec_app(keys, tokens, os.environ.get("TEMPORAL_NAMESPACE") or "default", origins, oidc)


def main() -> int:
    import uvicorn

    from config import Settings
    from ops.context import configure_logging

    settings = Settings.from_env()
    configure_logging(settings.log_level, settings.log_json)
    try:
        app = app_from_env()
    except ValueError as e:
        print(f"codec server: {e}", file=sys.stderr)
        return 2
    host = os.environ.get("CODEC_SERVER_HOST") or "127.0.0.1"
    port = int(os.environ.get("CODEC_SERVER_PORT") or "8089")
    uvicorn.run(app, host=host, port=port, log_level=settings.log_level.lower(), access_log=False)
    return 0


if __name__ == "__main__":
    status = main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)
