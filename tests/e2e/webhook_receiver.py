"""A webhook receiver on loopback that can be down, then flaky, and records every POST."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class Receiver:
    """Answers 500 on every `fail_every`-th call (0: never); records what it accepted."""

    def __init__(self, port: int, secret: str, fail_every: int = 0) -> None:
        self.port = port
        self.secret = secret
        self.fail_every = fail_every
        self.calls = 0
        self.accepted: list[dict[str, Any]] = []
        self.bad_signatures = 0
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with receiver._lock:
                    receiver.calls += 1
                    failing = receiver.fail_every and receiver.calls % receiver.fail_every == 0
                    expected = (
                        "sha256="
                        + hmac.new(receiver.secret.encode(), body, hashlib.sha256).hexdigest()
                    )
                    if not hmac.compare_digest(expected, self.headers.get("Arca-Signature", "")):
                        receiver.bad_signatures += 1
                    if not failing:
                        event = json.loads(body)
                        assert self.headers["ce-id"] == event["id"]
                        assert self.headers["ce-type"] == event["type"]
                        receiver.accepted.append(event)
                self.send_response(500 if failing else 204)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def ids(self) -> set[str]:
        with self._lock:
            return {event["id"] for event in self.accepted}
