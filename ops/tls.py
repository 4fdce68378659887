"""TLS and mTLS for the Temporal client, from environment variables or files.

Each of the three PEM items is given either inline (`TEMPORAL_TLS_CA`, `TEMPORAL_TLS_CERT`,
`TEMPORAL_TLS_KEY`) or as a file (`..._FILE`, e.g. a mounted Kubernetes secret); the file wins
when both are set. `TEMPORAL_TLS_SERVER_NAME` overrides the name the server's certificate is
checked against (and the SNI). Any of them turns TLS on; `TEMPORAL_TLS=true` alone uses the
system roots without a client certificate. A client certificate needs its key and vice versa.
Nothing here is logged; errors name the setting, never its content.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from temporalio.service import TLSConfig

_ITEMS = ("CA", "CERT", "KEY")


class TlsSettingsError(ValueError):
    """A TLS setting that cannot be used."""


def _pem(env: Mapping[str, str], item: str) -> bytes | None:
    name = f"TEMPORAL_TLS_{item}"
    path = env.get(f"{name}_FILE")
    if path:
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError as e:
            raise TlsSettingsError(f"{name}_FILE={path}: {e.strerror}") from None
        where = f"{name}_FILE={path}"
    elif env.get(name):
        data = env[name].encode()
        where = name
    else:
        return None
    if b"-----BEGIN " not in data:
        raise TlsSettingsError(f"{where} is not PEM (no -----BEGIN line)")
    return data


def tls_config(tls_flag: bool, environ: Mapping[str, str] | None = None) -> TLSConfig | bool:
    """What to pass as `tls=` to `Client.connect`."""
    env = os.environ if environ is None else environ
    ca, cert, key = (_pem(env, i) for i in _ITEMS)
    server_name = env.get("TEMPORAL_TLS_SERVER_NAME") or None
    if (cert is None) != (key is None):
        raise TlsSettingsError("mTLS needs both TEMPORAL_TLS_CERT(_FILE) and TEMPORAL_TLS_KEY(_FILE)")
    if ca is None and cert is None and server_name is None:
        return bool(tls_flag)
    return TLSConfig(server_root_ca_cert=ca, client_cert=cert, client_private_key=key, domain=server_name)
