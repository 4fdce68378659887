"""mTLS to Temporal with the engine's settings: a real handshake against a TLS front that demands
a client certificate (the dev server has no TLS options, so a local TLS-terminating proxy with
ALPN h2 stands in front of it, as a load balancer or the frontend itself would).

`connect_client` with TEMPORAL_TLS_CA_FILE / _CERT_FILE / _KEY_FILE / _SERVER_NAME reaches the
server; without the client certificate, or trusting another CA, it does not.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import ipaddress
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest
from temporalio.testing import WorkflowEnvironment

from config import Settings, connect_client
from embedded import find_free_port
from tests.harness import start_dev_env

pytestmark = [pytest.mark.devserver, pytest.mark.timeout(180)]


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _cert(subject: str, issuer_key, issuer: str | None, *, ca: bool = False, server: bool = False):
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    b = (x509.CertificateBuilder().subject_name(_name(subject)).issuer_name(_name(issuer or subject))
         .public_key(key.public_key()).serial_number(x509.random_serial_number())
         .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
         .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if ca:
        b = b.add_extension(x509.KeyUsage(True, False, False, False, False, True, True, False, False), critical=True)
    else:
        b = b.add_extension(x509.KeyUsage(True, False, True, False, False, False, False, False, False), critical=True)
        usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
        b = b.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        if server:
            b = b.add_extension(x509.SubjectAlternativeName(
                [x509.DNSName("temporal.test"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
    cert = b.sign(issuer_key or key, hashes.SHA256())
    return key, cert


def _write(path: Path, key, cert) -> tuple[Path, Path]:
    crt, k = path.with_suffix(".pem"), path.with_name(path.name + "-key.pem")
    crt.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    k.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption()))
    return crt, k


@pytest_asyncio.fixture(scope="module")
async def dev_env() -> AsyncIterator[WorkflowEnvironment]:
    env = await start_dev_env()
    yield env
    await env.shutdown()


@contextlib.asynccontextmanager
async def _tls_front(upstream: str, cert: Path, key: Path, client_ca: Path) -> AsyncIterator[int]:
    """TLS (h2, client certificate required) on a free port, bytes piped to the plain upstream."""
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    ctx.load_verify_locations(client_ca)
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.set_alpn_protocols(["h2"])
    host, port = upstream.rsplit(":", 1)
    tasks: set[asyncio.Task] = set()

    async def pipe(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        try:
            while data := await r.read(65536):
                w.write(data)
                await w.drain()
        except (ConnectionError, ssl.SSLError):
            pass
        finally:
            w.close()

    async def handle(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        ur, uw = await asyncio.open_connection(host, int(port))
        for t in (asyncio.create_task(pipe(r, uw)), asyncio.create_task(pipe(ur, w))):
            tasks.add(t)
            t.add_done_callback(tasks.discard)

    listen = find_free_port()
    server = await asyncio.start_server(handle, "127.0.0.1", listen, ssl=ctx)
    try:
        yield listen
    finally:
        server.close()
        for t in list(tasks):
            t.cancel()


async def test_connect_client_speaks_mtls_with_settings_from_files(
    dev_env: WorkflowEnvironment, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ca_key, ca = _cert("test-ca", None, None, ca=True)
    ca_pem, _ = _write(tmp_path / "ca", ca_key, ca)
    s_key, s_cert = _cert("temporal.test", ca_key, "test-ca", server=True)
    server_pem, server_key = _write(tmp_path / "server", s_key, s_cert)
    c_key, c_cert = _cert("case-engine", ca_key, "test-ca")
    client_pem, client_key = _write(tmp_path / "client", c_key, c_cert)
    other_key, other = _cert("other-ca", None, None, ca=True)
    other_pem, _ = _write(tmp_path / "other", other_key, other)
    upstream = dev_env.client.service_client.config.target_host
    for k in ("TEMPORAL_TLS_CA", "TEMPORAL_TLS_CERT", "TEMPORAL_TLS_KEY"):
        monkeypatch.delenv(k, raising=False)

    async with _tls_front(upstream, server_pem, server_key, ca_pem) as port:
        settings = Settings(temporal_address=f"127.0.0.1:{port}", temporal_namespace=dev_env.client.namespace)
        monkeypatch.setenv("TEMPORAL_TLS_CA_FILE", str(ca_pem))
        monkeypatch.setenv("TEMPORAL_TLS_SERVER_NAME", "temporal.test")
        monkeypatch.setenv("TEMPORAL_TLS_CERT_FILE", str(client_pem))
        monkeypatch.setenv("TEMPORAL_TLS_KEY_FILE", str(client_key))
        client = await asyncio.wait_for(connect_client(settings, identity="mtls-test"), timeout=30)
        assert await client.service_client.check_health()
        ns = await client.workflow_service.describe_namespace(
            DescribeNamespaceRequest(namespace=dev_env.client.namespace))
        assert ns.namespace_info.name == dev_env.client.namespace

        # No client certificate: the front refuses the handshake.
        monkeypatch.delenv("TEMPORAL_TLS_CERT_FILE")
        monkeypatch.delenv("TEMPORAL_TLS_KEY_FILE")
        with pytest.raises(Exception) as no_cert:  # noqa: B017 - RuntimeError or RPCError by SDK version
            c = await asyncio.wait_for(connect_client(settings), timeout=30)
            await c.service_client.check_health()
        assert not isinstance(no_cert.value, TimeoutError)
        # A client that trusts another CA does not accept the server.
        monkeypatch.setenv("TEMPORAL_TLS_CERT_FILE", str(client_pem))
        monkeypatch.setenv("TEMPORAL_TLS_KEY_FILE", str(client_key))
        monkeypatch.setenv("TEMPORAL_TLS_CA_FILE", str(other_pem))
        with pytest.raises(Exception) as wrong_ca:  # noqa: B017
            c = await asyncio.wait_for(connect_client(settings), timeout=30)
            await c.service_client.check_health()
        assert not isinstance(wrong_ca.value, TimeoutError)
        assert "certificate" in str(wrong_ca.value).lower()
