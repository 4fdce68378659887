"""The web console: `python -m admin.web` (CONSOLE_HOST / CONSOLE_PORT, default 127.0.0.1:8080)."""
