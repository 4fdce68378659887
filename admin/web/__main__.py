"""Runs the console with uvicorn: `python -m admin.web`."""

from __future__ import annotations

import os
import sys

import uvicorn

from admin.web.app import create_app
from config import Settings


def main() -> int:
    settings = Settings.from_env()
    from worker import configure_logging

    configure_logging(settings.log_level, settings.log_json)
    print(f"console: http://{settings.console_host}:{settings.console_port}/", flush=True)
    uvicorn.run(create_app(settings), host=settings.console_host, port=settings.console_port,
                log_level=settings.log_level.lower(), access_log=False)
    return 0


if __name__ == "__main__":
    status = main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)  # sdk-python#300
