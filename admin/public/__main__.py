"""Runs the public disclosure site alone with uvicorn: `python -m admin.public` (PUBLIC_HOST, PUBLIC_PORT)."""

from __future__ import annotations

import os
import sys

import uvicorn

from admin.public.app import PublicSettings, create_app
from config import Settings


def main() -> int:
    settings = Settings.from_env()
    public = PublicSettings.from_env()
    from worker import configure_logging

    configure_logging(settings.log_level, settings.log_json)
    print(f"public site: http://{public.host}:{public.port}/", flush=True)
    uvicorn.run(create_app(settings, public), host=public.host, port=public.port,
                log_level=settings.log_level.lower(), access_log=False)
    return 0


if __name__ == "__main__":
    status = main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)  # sdk-python#300
