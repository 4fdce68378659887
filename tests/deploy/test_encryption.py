"""Encrypted payloads: ciphertext in the server's history, readable with the key only.

A worker process with PAYLOAD_ENCRYPTION=true and a client with the same keys run a case on
the dev server. The history fetched raw from the server (and as `temporal workflow show` prints
it) holds no plaintext of the case; the codec server decrypts it for a bearer-token holder
(directly and for the Temporal CLI's --codec-endpoint), refuses everybody else, and answers the
UI's CORS preflight; the audit replay and timeline read the encrypted history with the keys and
name the missing setting without them. Rotation: a second key becomes current; the case's later
payloads use it and both stay readable.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import httpx
import pytest
import pytest_asyncio
import uvicorn
from google.protobuf import json_format
from temporalio.api.common.v1 import Payload, Payloads
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from config import ROOT
from domain.calendar import local_date
from domain.enums import Action
from embedded import find_free_port, find_temporal_cli
from ops.codec import ENCODING, KEY_ID, data_converter, decrypt_payload, keyring_from_env
from ops.codec_server import create_codec_app
from tests.deploy.procs import WorkerProcess
from tests.harness import OFFICE, RU, CaseDriver, make_filing, start_dev_env
from workflows.contracts import case_workflow_id

pytestmark = [pytest.mark.devserver, pytest.mark.timeout(300)]

K1 = base64.b64encode(b"\x01" * 32).decode()
K2 = base64.b64encode(os.urandom(32)).decode()
TOKEN = "auditor-token-" + base64.urlsafe_b64encode(os.urandom(18)).decode()
UI = "https://temporal-ui.example.gov.cn"
TITLE = "加密测试：湘江源头尾矿库污染治理不到位"


@pytest_asyncio.fixture(scope="module")
async def dev_env() -> AsyncIterator[WorkflowEnvironment]:
    env = await start_dev_env()
    yield env
    await env.shutdown()


def _all_payloads(msg) -> list[Payload]:
    """Every Payload inside a protobuf message, search attributes left out (indexed, never encrypted)."""
    out: list[Payload] = []
    for field, value in msg.ListFields():
        if field.message_type is None or field.name == "search_attributes":
            continue
        if field.message_type.GetOptions().map_entry:
            items = list(value.values())
        elif hasattr(value, "ListFields"):
            items = [value]
        else:
            items = list(value)
        for v in items:
            if isinstance(v, Payload):
                out.append(v)
            elif hasattr(v, "ListFields"):
                out += _all_payloads(v)
    return out


@contextlib.asynccontextmanager
async def _codec_server(keys_env: dict[str, str], namespace: str) -> AsyncIterator[str]:
    port = find_free_port()
    app = create_codec_app(keyring_from_env(keys_env), {TOKEN: "auditor-qian"}, namespace, [UI])
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        assert not task.done(), "codec server did not start"
        await asyncio.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


def _run(cmd: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("TEMPORAL_", "PAYLOAD_", "DATABASE_"))}
    return subprocess.run(cmd, cwd=ROOT, env={**base, **env}, capture_output=True, text=True, timeout=120)


async def test_encrypted_histories_are_ciphertext_on_the_server_and_readable_with_the_key(
    dev_env: WorkflowEnvironment, database_url: str, pool: asyncpg.Pool, task_queue: str, tmp_path: Path
) -> None:
    target = dev_env.client.service_client.config.target_host
    ns = dev_env.client.namespace
    keys1 = {"PAYLOAD_ENCRYPTION": "true", "PAYLOAD_KEYS": f"k1={K1}"}
    keys2 = {"PAYLOAD_ENCRYPTION": "true", "PAYLOAD_KEYS": f"k1={K1},k2={K2}", "PAYLOAD_KEY_ID": "k2"}
    base_env = {"TEMPORAL_ADDRESS": target, "TEMPORAL_NAMESPACE": ns, "TEMPORAL_TASK_QUEUE": task_queue,
                "DATABASE_URL": database_url, "DB_POOL_MAX": "3", "ARCHIVE_POLL_SECONDS": "0"}
    today = local_date(datetime.now(UTC))
    filing = make_filing(due=today + timedelta(days=90)).model_copy(update={"title": TITLE})

    # Key k1: file and transfer.
    w = WorkerProcess("enc-k1", {**base_env, **keys1}, tmp_path)
    try:
        client1 = await Client.connect(target, namespace=ns, data_converter=data_converter(keys1))
        c = CaseDriver(client1, pool, task_queue, filing)
        assert (await c.file()).filed
        await c.do(Action.TRANSFER, OFFICE)
    finally:
        assert w.stop() == 0, w.tail()
    # Rotation: k2 added and current; the same case goes on.
    w = WorkerProcess("enc-k2", {**base_env, **keys2}, tmp_path)
    try:
        client2 = await Client.connect(target, namespace=ns, data_converter=data_converter(keys2))
        c = CaseDriver(client2, pool, task_queue, filing)
        result = await c.do(Action.ACKNOWLEDGE, RU)
        assert result.stage.value == "RECTIFYING"
        assert (await c.state()).filing.title == TITLE
    finally:
        assert w.stop() == 0, w.tail()

    # The server's history, fetched raw: every payload encrypted, no plaintext anywhere.
    wid = case_workflow_id(c.case_no)
    history = await dev_env.client.get_workflow_handle(wid).fetch_history()
    raw = b"".join(e.SerializeToString() for e in history.events)
    assert TITLE.encode() not in raw and c.case_no.encode() in raw  # ids and search attributes stay clear
    payloads = [p for e in history.events for p in _all_payloads(e)]
    data_payloads = [p for p in payloads if p.metadata.get("encoding") == ENCODING]
    # The exceptions are what SDK core writes itself without passing it through the codec, never
    # case content: `workflow.patched` markers (the patch id) and, of a local activity's marker
    # (issue 15: policy, deadlines), its "data" detail (sequence, attempt, activity type, times).
    # The local activity's result is encrypted like any payload.
    def core_written(e, p) -> bool:
        if e.event_type != EventType.EVENT_TYPE_MARKER_RECORDED:
            return False
        m = e.marker_recorded_event_attributes
        return m.marker_name == "core_patch" or (
            m.marker_name == "core_local_activity" and any(p == q for q in m.details["data"].payloads))

    clear = [(e.event_id, e.event_type, dict(p.metadata), p.data[:80]) for e in history.events
             for p in _all_payloads(e) if p.metadata.get("encoding") != ENCODING and not core_written(e, p)]
    assert data_payloads and not clear, f"payloads in the history not encrypted: {clear}"
    la_results = [p for e in history.events if e.event_type == EventType.EVENT_TYPE_MARKER_RECORDED
                  and e.marker_recorded_event_attributes.marker_name == "core_local_activity"
                  for p in e.marker_recorded_event_attributes.details["result"].payloads]
    assert la_results and all(p.metadata.get("encoding") == ENCODING for p in la_results)
    assert {p.metadata[KEY_ID] for p in data_payloads} == {b"k1", b"k2"}
    started = history.events[0].workflow_execution_started_event_attributes.input.payloads[0]
    assert started.metadata["encoding"] == ENCODING
    keyring = keyring_from_env(keys2)
    assert TITLE.encode() in decrypt_payload(started, keyring).data
    shown = _run([find_temporal_cli(), "workflow", "show", "-w", wid, "--address", target, "-n", ns,
                  "-o", "json"], {})
    assert shown.returncode == 0, shown.stderr
    assert TITLE not in shown.stdout and "binary/encrypted" in base64_decoded_metadata(shown.stdout)

    async with _codec_server(keys2, ns) as url, httpx.AsyncClient(timeout=10) as http:
        body = json_format.MessageToJson(Payloads(payloads=[started]))
        auth = {"Authorization": f"Bearer {TOKEN}", "X-Namespace": ns, "Content-Type": "application/json"}
        r = await http.post(f"{url}/{ns}/decode", content=body, headers=auth)
        assert r.status_code == 200, r.text
        decoded = json_format.Parse(r.text, Payloads()).payloads[0]
        assert decoded.metadata["encoding"] == b"json/plain" and TITLE.encode() in decoded.data
        # Round trip: encode with the current key, decode again.
        enc = await http.post(f"{url}/encode", content=json_format.MessageToJson(Payloads(payloads=[decoded])),
                              headers=auth)
        assert json_format.Parse(enc.text, Payloads()).payloads[0].metadata[KEY_ID] == b"k2"
        # Nobody else.
        assert (await http.post(f"{url}/decode", content=body)).status_code == 401
        bad = {**auth, "Authorization": "Bearer " + "x" * 40}
        assert (await http.post(f"{url}/decode", content=body, headers=bad)).status_code == 401
        other = {**auth, "X-Namespace": "someone-else"}
        assert (await http.post(f"{url}/decode", content=body, headers=other)).status_code == 403
        # The UI's preflight is answered for its origin only.
        pre = {"Origin": UI, "Access-Control-Request-Method": "POST",
               "Access-Control-Request-Headers": "content-type,x-namespace,authorization"}
        ok = await http.options(f"{url}/{ns}/decode", headers=pre)
        assert ok.status_code == 200 and ok.headers["access-control-allow-origin"] == UI
        assert ok.headers["access-control-allow-credentials"] == "true"
        evil = await http.options(f"{url}/{ns}/decode", headers={**pre, "Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in evil.headers
        # The Temporal CLI through the codec server.
        cli = [find_temporal_cli(), "workflow", "show", "-w", wid, "--address", target, "-n", ns, "-o", "json",
               "--codec-endpoint", f"{url}/{ns}"]
        with_token = await asyncio.to_thread(_run, [*cli, "--codec-auth", f"Bearer {TOKEN}"], {})
        assert with_token.returncode == 0, with_token.stderr
        assert TITLE in with_token.stdout or TITLE in base64_decoded_data(with_token.stdout)
        without = await asyncio.to_thread(_run, cli, {})
        assert TITLE not in without.stdout and TITLE not in base64_decoded_data(without.stdout)

    # The audit tools on the encrypted history: with the keys they read it, without they say why not.
    audit_env = {"TEMPORAL_ADDRESS": target, "TEMPORAL_NAMESPACE": ns, "DATABASE_URL": database_url}
    replay = await asyncio.to_thread(_run, [sys.executable, "-m", "audit.cli", "replay", c.case_no,
                                            "--source", "temporal"], {**audit_env, **keys2})
    assert replay.returncode == 0, replay.stdout + replay.stderr
    assert "OK" in replay.stdout
    timeline = await asyncio.to_thread(_run, [sys.executable, "-m", "audit.cli", "timeline", c.case_no,
                                              "--format", "json"], {**audit_env, **keys2})
    assert timeline.returncode == 0, timeline.stderr
    assert TITLE in timeline.stdout or TITLE in json.dumps(json.loads(timeline.stdout), ensure_ascii=False)
    no_keys = await asyncio.to_thread(_run, [sys.executable, "-m", "audit.cli", "timeline", c.case_no,
                                             "--format", "json"], audit_env)
    assert no_keys.returncode != 0 and TITLE not in no_keys.stdout
    assert "PAYLOAD_KEYS" in no_keys.stdout + no_keys.stderr
    only_k2 = {**audit_env, "PAYLOAD_KEYS": f"k2={K2}"}
    old_key_missing = await asyncio.to_thread(_run, [sys.executable, "-m", "audit.cli", "timeline", c.case_no,
                                                     "--format", "json"], only_k2)
    assert old_key_missing.returncode != 0 and "'k1'" in old_key_missing.stdout + old_key_missing.stderr
    await dev_env.client.get_workflow_handle(wid).terminate("test done")


def _json_strings(text: str) -> list[str]:
    out: list[str] = []

    def walk(v) -> None:
        if isinstance(v, dict):
            for x in v.values():
                walk(x)
        elif isinstance(v, list):
            for x in v:
                walk(x)
        elif isinstance(v, str):
            out.append(v)

    with contextlib.suppress(ValueError):
        walk(json.loads(text))
    return out


def _b64(s: str) -> str:
    try:
        return base64.b64decode(s, validate=True).decode("utf-8", "replace")
    except ValueError:
        return ""


def base64_decoded_data(text: str) -> str:
    return "\n".join(_b64(s) for s in _json_strings(text))


def base64_decoded_metadata(text: str) -> str:
    return base64_decoded_data(text)
