"""The codec server accepts the Temporal UI's OIDC access tokens through the provider's userinfo
endpoint (a real local HTTP server standing in for the identity provider), with a required group."""

from __future__ import annotations

import asyncio
import base64
import os

import httpx
import uvicorn
from fastapi import FastAPI, Header
from fastapi.responses import JSONResponse
from google.protobuf import json_format
from temporalio.api.common.v1 import Payload, Payloads

from embedded import find_free_port
from ops.codec import encrypt_payloads, keyring_from_env
from ops.codec_server import OidcUserinfo, create_codec_app

USERS = {"tok-auditor": {"sub": "u1", "preferred_username": "qian", "groups": ["case-auditors"]},
         "tok-clerk": {"sub": "u2", "preferred_username": "li", "groups": ["clerks"]}}


def _idp() -> tuple[FastAPI, list[str]]:
    app = FastAPI()
    calls: list[str] = []

    @app.get("/userinfo")
    async def userinfo(authorization: str = Header("")) -> JSONResponse:
        token = authorization.removeprefix("Bearer ")
        calls.append(token)
        if token not in USERS:
            return JSONResponse({"error": "invalid_token"}, status_code=401)
        return JSONResponse(USERS[token])

    return app, calls


async def test_ui_tokens_are_checked_with_the_identity_provider() -> None:
    idp_app, calls = _idp()
    port = find_free_port()
    server = uvicorn.Server(uvicorn.Config(idp_app, host="127.0.0.1", port=port, log_level="warning"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        assert not task.done()
        await asyncio.sleep(0.05)
    try:
        env = {"PAYLOAD_KEYS": "k1=" + base64.b64encode(os.urandom(32)).decode()}
        keys = keyring_from_env(env)
        oidc = OidcUserinfo(f"http://127.0.0.1:{port}/userinfo", required_group="case-auditors")
        app = create_codec_app(keys, {}, "inspection", ["https://ui.example"], oidc)
        [enc] = encrypt_payloads([Payload(metadata={"encoding": b"json/plain"}, data='"秘密"'.encode())], keys)
        body = json_format.MessageToJson(Payloads(payloads=[enc]))
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://codec") as http:
            async def decode(token: str) -> httpx.Response:
                return await http.post("/inspection/decode", content=body,
                                       headers={"Authorization": f"Bearer {token}", "X-Namespace": "inspection"})

            ok = await decode("tok-auditor")
            assert ok.status_code == 200
            assert json_format.Parse(ok.text, Payloads()).payloads[0].data == '"秘密"'.encode()
            assert (await decode("tok-clerk")).status_code == 401      # valid user, not in the group
            assert (await decode("tok-forged")).status_code == 401     # the provider does not know it
            await decode("tok-auditor")
            assert calls.count("tok-auditor") == 1                     # cached
        # The provider unreachable: refused, nothing cached.
        down = OidcUserinfo("http://127.0.0.1:1/userinfo", timeout=2)
        assert await down.holder("Bearer tok-auditor") is None
    finally:
        server.should_exit = True
        await task
