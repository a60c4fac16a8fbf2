"""A real webhook receiver on 127.0.0.1 (http.server in a thread) that checks each POST's
`X-ML-Platform-Signature` against the shared secret, as a user's receiver would."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Received:
    body: dict[str, Any]
    signature_valid: bool


@dataclass
class Receiver:
    url: str
    secret: str
    received: list[Received] = field(default_factory=list)
    fail_next: int = 0  # answer this many POSTs with a 503 first

    def of_kind(self, kind: str) -> list[Received]:
        return [r for r in self.received if r.body.get("kind") == kind]


@contextmanager
def alert_receiver(secret: str = "s3cret") -> Iterator[Receiver]:
    state: dict[str, Receiver] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            receiver = state["r"]
            raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            if receiver.fail_next > 0:
                receiver.fail_next -= 1
                self.send_response(503)
                self.end_headers()
                return
            expected = "sha256=" + hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()
            given = self.headers.get("X-ML-Platform-Signature", "")
            valid = hmac.compare_digest(expected, given)
            receiver.received.append(Received(json.loads(raw), valid))
            self.send_response(204 if valid else 401)
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state["r"] = Receiver(f"http://127.0.0.1:{server.server_port}/hook", secret)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state["r"]
    finally:
        server.shutdown()
        server.server_close()
