"""Payload keys, codec-server tokens and TLS settings: parsed from env/files, refused by name, never shown."""

from __future__ import annotations

import asyncio
import base64
import os

import pytest
from temporalio.api.common.v1 import Payload
from temporalio.service import TLSConfig

from ops.codec import (
    ENCODING,
    KEY_ID,
    EncryptionCodec,
    PayloadKeyError,
    decrypt_payload,
    encrypt_payloads,
    keyring_from_env,
)
from ops.codec_server import parse_tokens
from ops.health import parse_bind
from ops.tls import TlsSettingsError, tls_config

K1 = base64.b64encode(os.urandom(32)).decode()
K2 = base64.b64encode(os.urandom(32)).decode()
PEM = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"


def _payload(text: str) -> Payload:
    return Payload(metadata={"encoding": b"json/plain"}, data=text.encode())


def test_encrypts_with_the_current_key_and_decrypts_with_any_listed_key() -> None:
    old = keyring_from_env({"PAYLOAD_KEYS": f"k1={K1}"})
    new = keyring_from_env({"PAYLOAD_KEYS": f"k1={K1},k2={K2}", "PAYLOAD_KEY_ID": "k2"})
    [by_old] = encrypt_payloads([_payload('"整改"')], old)
    [by_new] = encrypt_payloads([_payload('"整改"')], new)
    assert by_old.metadata["encoding"] == ENCODING and by_old.metadata[KEY_ID] == b"k1"
    assert by_new.metadata[KEY_ID] == b"k2" and "整改".encode() not in by_new.data
    assert decrypt_payload(by_old, new).data == decrypt_payload(by_new, new).data == '"整改"'.encode()
    with pytest.raises(PayloadKeyError, match="'k2'.*not configured"):
        decrypt_payload(by_new, old)


def test_an_altered_ciphertext_or_wrong_key_under_an_id_is_refused() -> None:
    keys = keyring_from_env({"PAYLOAD_KEYS": f"k1={K1}"})
    [p] = encrypt_payloads([_payload("1")], keys)
    p.data = p.data[:-1] + bytes([p.data[-1] ^ 1])
    with pytest.raises(PayloadKeyError, match="does not decrypt"):
        decrypt_payload(p, keys)
    other = keyring_from_env({"PAYLOAD_KEYS": f"k1={K2}"})
    [q] = encrypt_payloads([_payload("1")], keys)
    with pytest.raises(PayloadKeyError, match="does not decrypt"):
        decrypt_payload(q, other)


def test_plain_payloads_pass_through_and_keys_without_encryption_only_decrypt() -> None:
    keys = keyring_from_env({"PAYLOAD_KEYS": f"k1={K1}"})
    plain = _payload("2")
    assert decrypt_payload(plain, keys) is plain and decrypt_payload(plain, None) is plain
    codec = EncryptionCodec(keys, encrypt=False)
    assert asyncio.run(codec.encode([plain])) == [plain]
    [enc] = encrypt_payloads([plain], keys)
    assert asyncio.run(codec.decode([enc]))[0].data == b"2"
    with pytest.raises(PayloadKeyError, match="PAYLOAD_KEYS"):
        decrypt_payload(enc, None)


@pytest.mark.parametrize(("env", "message"), [
    ({"PAYLOAD_ENCRYPTION": "true"}, "needs keys"),
    ({"PAYLOAD_KEYS": "k1"}, "not id=base64key"),
    ({"PAYLOAD_KEYS": "k1=***"}, "not valid base64"),
    ({"PAYLOAD_KEYS": "k1=" + base64.b64encode(b"short").decode()}, "5 bytes"),
    ({"PAYLOAD_KEYS": f"k1={K1},k1={K2}"}, "listed twice"),
    ({"PAYLOAD_KEYS": f"k1={K1},k2={K2}"}, "set PAYLOAD_KEY_ID"),
    ({"PAYLOAD_KEYS": f"k1={K1}", "PAYLOAD_KEY_ID": "k9"}, "not among"),
    ({"PAYLOAD_KEYS": f"bad id={K1}"}, "must be ASCII"),
    ({"PAYLOAD_KEYS_FILE": "/nonexistent/keys"}, "PAYLOAD_KEYS_FILE=/nonexistent/keys"),
])
def test_bad_key_settings_are_refused_by_name_without_showing_a_key(env: dict, message: str) -> None:
    with pytest.raises(PayloadKeyError, match=message) as e:
        keyring_from_env(env)
    assert K1 not in str(e.value) and K2 not in str(e.value)


def test_keys_from_a_file_and_a_repr_without_key_material(tmp_path) -> None:
    f = tmp_path / "keys"
    f.write_text(f"# rotated 2026-11\nk1={K1}\nk2={K2}\n")
    keys = keyring_from_env({"PAYLOAD_KEYS_FILE": str(f), "PAYLOAD_KEY_ID": "k2"})
    assert keys.ids == ["k1", "k2"] and keys.current == "k2"
    assert K1 not in repr(keys) and K2 not in repr(keys)
    assert keyring_from_env({}) is None


def test_codec_server_tokens() -> None:
    assert parse_tokens("qian=" + "a" * 30 + "\nzhao=" + "b" * 30, "T") == {"a" * 30: "qian", "b" * 30: "zhao"}
    with pytest.raises(ValueError, match="shorter than 24"):
        parse_tokens("qian=short", "T")
    with pytest.raises(ValueError, match="also 'qian'"):
        parse_tokens("qian=" + "a" * 30 + ",zhao=" + "a" * 30, "T")


def test_tls_settings_from_env_and_files(tmp_path) -> None:
    assert tls_config(False, {}) is False and tls_config(True, {}) is True
    (tmp_path / "ca.pem").write_text(PEM)
    cfg = tls_config(False, {"TEMPORAL_TLS_CA_FILE": str(tmp_path / "ca.pem"), "TEMPORAL_TLS_CERT": PEM,
                             "TEMPORAL_TLS_KEY": PEM.replace("CERTIFICATE", "PRIVATE KEY"),
                             "TEMPORAL_TLS_SERVER_NAME": "temporal.internal"})
    assert isinstance(cfg, TLSConfig) and cfg.server_root_ca_cert == PEM.encode() and cfg.domain == "temporal.internal"
    with pytest.raises(TlsSettingsError, match="both"):
        tls_config(False, {"TEMPORAL_TLS_CERT": PEM})
    with pytest.raises(TlsSettingsError, match="TEMPORAL_TLS_KEY is not PEM"):
        tls_config(False, {"TEMPORAL_TLS_CERT": PEM, "TEMPORAL_TLS_KEY": "secret-bytes"})
    with pytest.raises(TlsSettingsError, match="TEMPORAL_TLS_CA_FILE=/nope"):
        tls_config(False, {"TEMPORAL_TLS_CA_FILE": "/nope"})


def test_bind_addresses() -> None:
    assert parse_bind("0.0.0.0:8081") == ("0.0.0.0", 8081)
    assert parse_bind(":9464") == ("0.0.0.0", 9464)
    assert parse_bind("[::1]:80") == ("::1", 80)
    with pytest.raises(ValueError, match="no port"):
        parse_bind("localhost")
