"""A real local HTTP receiver for the webhook channel tests (http.server on a free port, in a thread).

It records every request (headers, body bytes) and answers what its `answer` function says for
the n-th request carrying one Idempotency-Key; `hang_on` makes the n-th request overall wait
(the test kills the sender meanwhile)."""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from domain.notice_channels import IDEMPOTENCY_HEADER, SIGNATURE_HEADER, verify


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def key(self) -> str:
        return self.headers.get(IDEMPOTENCY_HEADER.lower(), "")

    @property
    def json(self) -> dict[str, Any]:
        return json.loads(self.body.decode())

    def signed_by(self, secret: str) -> bool:
        return verify(secret, self.body, self.headers.get(SIGNATURE_HEADER.lower(), ""))


class Receiver:
    def __init__(self, port: int, answer: Callable[[int, Received], tuple[int, str]] | None = None,
                 hang_on: int | None = None) -> None:
        self.port = port
        self.requests: list[Received] = []
        self._answer = answer or (lambda n, r: (200, "ok"))
        self._hang_on = hang_on
        self.release = threading.Event()
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/notify"

    def counts(self) -> Counter[str]:
        with self._lock:
            return Counter(r.key for r in self.requests)

    def start(self) -> Receiver:
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server API
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                rec = Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                with outer._lock:
                    outer.requests.append(rec)
                    total = len(outer.requests)
                    nth = sum(1 for r in outer.requests if r.key == rec.key)
                if outer._hang_on is not None and total == outer._hang_on:
                    outer.release.wait(60)
                status, text = outer._answer(nth, rec)
                data = text.encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "text/plain; charset=utf-8")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:
                    pass  # the sender is gone (killed mid-request)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.release.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
