"""Optional payload encryption: AES-256-GCM, the key id in each payload's metadata.

Enabled by `PAYLOAD_ENCRYPTION=true`. Keys come only from the environment or a file, never from
the repository or a log line:

* `PAYLOAD_KEYS` = `id=base64key[,id=base64key...]`, or `PAYLOAD_KEYS_FILE` = a file with one
  `id=base64key` per line (`#` comments allowed); each key is 32 random bytes in base64
  (`python -m ops.codec new-key`).
* `PAYLOAD_KEY_ID` = the id to encrypt with (required when more than one key is listed).

Rotation is adding a key: list the new key beside the old ones and make it `PAYLOAD_KEY_ID`.
New payloads are encrypted with it; every listed key still decrypts (the key id travels in the
payload's metadata). Remove an old key only when no history, archive row or history file that
needs it is kept any longer.

An encrypted payload is `metadata = {encoding: binary/encrypted, encryption-key-id: <id>}` and
`data = nonce (12 bytes) || AES-GCM(serialized original Payload, aad = key id)`. Payloads that
are not encrypted pass through decoding unchanged (histories from before encryption was turned
on stay readable), so keys configured with `PAYLOAD_ENCRYPTION=false` decrypt without encrypting.

Not encrypted (they are not payloads): search attributes (case stage, kind, units, due time,
rung, round), workflow ids (the case number), and failure messages.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import os
import sys
from collections.abc import Iterable, Mapping, Sequence

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from temporalio.api.common.v1 import Payload
from temporalio.converter import DataConverter, PayloadCodec

ENCODING = b"binary/encrypted"
KEY_ID = "encryption-key-id"
NONCE_BYTES = 12


class PayloadKeyError(ValueError):
    """A key setting that cannot be used, or a payload no configured key can decrypt."""


class KeyRing:
    """Known keys by id and the one to encrypt with. Never shows key material (repr included)."""

    def __init__(self, keys: Mapping[str, bytes], current: str) -> None:
        if not keys:
            raise PayloadKeyError("no payload keys configured")
        for kid, key in keys.items():
            if not kid or not kid.isascii() or not kid.replace("-", "").replace("_", "").replace(".", "").isalnum():
                raise PayloadKeyError(f"payload key id {kid!r} must be ASCII letters, digits, '-', '_' or '.'")
            if len(key) != 32:
                raise PayloadKeyError(f"payload key {kid!r} is {len(key)} bytes; AES-256 needs 32")
        if current not in keys:
            raise PayloadKeyError(f"PAYLOAD_KEY_ID={current!r} is not among the configured keys {sorted(keys)}")
        self._aead = {kid: AESGCM(key) for kid, key in keys.items()}
        self.current = current

    @property
    def ids(self) -> list[str]:
        return sorted(self._aead)

    def __repr__(self) -> str:
        return f"KeyRing(ids={self.ids}, current={self.current!r})"

    def encrypt(self, plain: bytes) -> tuple[str, bytes]:
        nonce = os.urandom(NONCE_BYTES)
        return self.current, nonce + self._aead[self.current].encrypt(nonce, plain, self.current.encode())

    def decrypt(self, kid: str, data: bytes) -> bytes:
        aead = self._aead.get(kid)
        if aead is None:
            raise PayloadKeyError(f"payload encrypted with key {kid!r}, which is not configured "
                                  f"(known: {self.ids}); add it to PAYLOAD_KEYS / PAYLOAD_KEYS_FILE")
        try:
            return aead.decrypt(data[:NONCE_BYTES], data[NONCE_BYTES:], kid.encode())
        except Exception:  # InvalidTag: wrong key under that id, or altered ciphertext
            raise PayloadKeyError(f"payload under key {kid!r} does not decrypt (altered, or a different key "
                                  "carries that id)") from None


def parse_keys(text: str, where: str) -> dict[str, bytes]:
    """`id=base64` items separated by commas or newlines; a bad item is refused by position."""
    keys: dict[str, bytes] = {}
    items = [i.strip() for line in text.splitlines() for i in line.split(",")]
    for n, item in enumerate((i for i in items if i and not i.startswith("#")), start=1):
        kid, sep, b64 = item.partition("=")
        if not sep or not kid.strip() or not b64.strip():
            raise PayloadKeyError(f"{where}: item {n} is not id=base64key")
        try:
            key = base64.b64decode(b64.strip() + "=" * (-len(b64.strip()) % 4), validate=True)
        except (binascii.Error, ValueError):
            raise PayloadKeyError(f"{where}: key {kid.strip()!r} is not valid base64") from None
        if kid.strip() in keys:
            raise PayloadKeyError(f"{where}: key id {kid.strip()!r} is listed twice")
        keys[kid.strip()] = key
    return keys


def keyring_from_env(environ: Mapping[str, str] | None = None) -> KeyRing | None:
    """The configured keys (None when none are); errors name the setting, never a key."""
    env = os.environ if environ is None else environ
    keys: dict[str, bytes] = {}
    if env.get("PAYLOAD_KEYS"):
        keys.update(parse_keys(env["PAYLOAD_KEYS"], "PAYLOAD_KEYS"))
    path = env.get("PAYLOAD_KEYS_FILE")
    if path:
        try:
            text = open(path, encoding="utf-8").read()  # noqa: SIM115
        except OSError as e:
            raise PayloadKeyError(f"PAYLOAD_KEYS_FILE={path}: {e.strerror}") from None
        for kid, key in parse_keys(text, f"PAYLOAD_KEYS_FILE={path}").items():
            if kid in keys and keys[kid] != key:
                raise PayloadKeyError(f"key id {kid!r} has different keys in PAYLOAD_KEYS and PAYLOAD_KEYS_FILE")
            keys[kid] = key
    if not keys:
        if (env.get("PAYLOAD_ENCRYPTION") or "").lower() in ("1", "true", "yes", "on"):
            raise PayloadKeyError("PAYLOAD_ENCRYPTION=true needs keys: set PAYLOAD_KEYS or PAYLOAD_KEYS_FILE")
        return None
    current = env.get("PAYLOAD_KEY_ID") or ""
    if not current:
        if len(keys) > 1:
            raise PayloadKeyError(f"several payload keys {sorted(keys)}: set PAYLOAD_KEY_ID to the one to encrypt with")
        current = next(iter(keys))
    return KeyRing(keys, current)


def is_encrypted(p: Payload) -> bool:
    return p.metadata.get("encoding") == ENCODING


def decrypt_payload(p: Payload, keys: KeyRing | None) -> Payload:
    """The original payload (unchanged if it was not encrypted)."""
    if not is_encrypted(p):
        return p
    kid = p.metadata.get(KEY_ID, b"").decode("ascii", "replace")
    if keys is None:
        raise PayloadKeyError(f"payload is encrypted (key {kid!r}) and no payload keys are configured "
                              "(set PAYLOAD_KEYS or PAYLOAD_KEYS_FILE)")
    out = Payload()
    out.ParseFromString(keys.decrypt(kid, p.data))
    return out


def decrypt_payloads(payloads: Iterable[Payload], keys: KeyRing | None) -> list[Payload]:
    return [decrypt_payload(p, keys) for p in payloads]


def encrypt_payloads(payloads: Iterable[Payload], keys: KeyRing) -> list[Payload]:
    out = []
    for p in payloads:
        kid, data = keys.encrypt(p.SerializeToString())
        out.append(Payload(metadata={"encoding": ENCODING, KEY_ID: kid.encode()}, data=data))
    return out


class EncryptionCodec(PayloadCodec):
    """The SDK's payload codec: encrypts when `encrypt` is on, always decrypts what it can."""

    def __init__(self, keys: KeyRing, encrypt: bool = True) -> None:
        self.keys = keys
        self.encrypt = encrypt

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return encrypt_payloads(payloads, self.keys) if self.encrypt else list(payloads)

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return decrypt_payloads(payloads, self.keys)


def encryption_enabled(environ: Mapping[str, str] | None = None) -> bool:
    env = os.environ if environ is None else environ
    raw = (env.get("PAYLOAD_ENCRYPTION") or "false").lower()
    if raw not in ("1", "true", "yes", "on", "0", "false", "no", "off"):
        raise PayloadKeyError(f"PAYLOAD_ENCRYPTION={raw!r} is not a boolean (use true/false)")
    return raw in ("1", "true", "yes", "on")


def data_converter(environ: Mapping[str, str] | None = None) -> DataConverter:
    """The production converter (pydantic), with the encryption codec when keys are configured."""
    from temporalio.contrib.pydantic import pydantic_data_converter

    keys = keyring_from_env(environ)
    if keys is None:
        return pydantic_data_converter
    return dataclasses.replace(pydantic_data_converter,
                               payload_codec=EncryptionCodec(keys, encrypt=encryption_enabled(environ)))


_env_keys: tuple[KeyRing | None] | None = None


def env_keys() -> KeyRing | None:
    """The process's keys from its environment, read once (audit decoding uses them)."""
    global _env_keys
    if _env_keys is None:
        _env_keys = (keyring_from_env(),)
    return _env_keys[0]


def main(argv: list[str]) -> int:
    if argv[:1] == ["new-key"]:
        print(base64.b64encode(os.urandom(32)).decode())
        return 0
    print("usage: python -m ops.codec new-key   (prints a new random 32-byte key in base64)", file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
