"""A fault-injecting crawlr HTTP server on 127.0.0.1, seeded: 5xx, stalls past the client's
timeout, connection resets, malformed JSON, truncated bodies, ids repeated across pages."""

from __future__ import annotations

import json
import random
import socket
import struct
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import StrEnum
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

from tests.crawlr_server import jpeg_bytes


class Fault(StrEnum):
    SERVER_ERROR = "server_error"
    STALL = "stall"
    RESET = "reset"
    MALFORMED_JSON = "malformed_json"
    TRUNCATED = "truncated"


@dataclass
class FaultPlan:
    """Which fault, if any, each request gets: seeded, so a failing trial replays."""

    seed: int
    rate: float = 0.25
    stall_s: float = 2.5
    lock: threading.Lock = field(default_factory=threading.Lock)
    injected: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)

    def draw(self, path: str) -> Fault | None:
        with self.lock:
            if self.rate <= 0 or self._rng.random() >= self.rate:
                return None
            faults = list(Fault)
            if not path.endswith(".json"):
                faults.remove(Fault.MALFORMED_JSON)
            fault = self._rng.choice(faults)
            self.injected[fault.value] = self.injected.get(fault.value, 0) + 1
            return fault


@dataclass
class FaultyState:
    collections: list[dict[str, Any]]
    images: list[dict[str, Any]] = field(default_factory=list)
    files: dict[str, bytes] = field(default_factory=dict)
    faults: FaultPlan = field(default_factory=lambda: FaultPlan(seed=0))
    requests: int = 0

    def add_image(self, image_id: int, **fields: Any) -> None:
        url = f"/media/{image_id}.jpg"
        self.images.append({"id": image_id, "url": url, "created_at": "2025-03-01T12:00:00Z",
                            "collection_ids": [], **fields})  # fmt: skip
        self.files.setdefault(url, jpeg_bytes(image_id, (72, 64)))

    def served_ids(self) -> set[int]:
        return {int(im["id"]) for im in self.images}


def _page(state: FaultyState, query: dict[str, list[str]]) -> bytes:
    """Pages by id; an entry listed twice (a duplicate) is served on every page it falls in."""
    ordered = sorted(state.images, key=lambda im: im["id"])
    after = int(query.get("after", ["0"])[0])
    limit = int(query.get("limit", ["100"])[0])
    rest = [im for im in ordered if im["id"] > after]
    page = rest[:limit]
    if page and after:  # the last id of the previous page shows up again: a duplicate
        page = [*[im for im in ordered if im["id"] == after][:1], *page]
    cursor = str(page[-1]["id"]) if len(rest) > limit else None
    return json.dumps({"images": page, "next_cursor": cursor}).encode()


def _handler(state: FaultyState) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:
            return None

        def do_GET(self) -> None:
            url = urlparse(self.path)
            state.requests += 1
            body, ctype = self._body(url.path, parse_qs(url.query))
            if body is None:
                return self._send(404, b'{"error": "not found"}', "application/json")
            fault = state.faults.draw(url.path)
            if fault is Fault.SERVER_ERROR:
                return self._send(503, b'{"error": "injected"}', "application/json")
            if fault is Fault.STALL:
                time.sleep(state.faults.stall_s)
            if fault is Fault.RESET:
                return self._reset()
            if fault is Fault.MALFORMED_JSON:
                return self._send(200, body[: len(body) // 2], ctype)
            if fault is Fault.TRUNCATED:
                return self._truncated(body, ctype)
            return self._send(200, body, ctype)

        def _body(self, path: str, query: dict[str, list[str]]) -> tuple[bytes | None, str]:
            if path == "/collections.json":
                return json.dumps(state.collections).encode(), "application/json"
            if path == "/images.json":
                return _page(state, query), "application/json"
            return state.files.get(path), "image/jpeg"

        def _send(self, status: int, body: bytes, ctype: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _truncated(self, body: bytes, ctype: str) -> None:
            self.send_response(200)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body[: len(body) // 3])
            self.close_connection = True
            self._reset()

        def _reset(self) -> None:
            self.close_connection = True
            linger = struct.pack("ii", 1, 0)  # RST instead of FIN
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
            self.connection.close()

    return Handler


@contextmanager
def faulty_crawlr(state: FaultyState) -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        host, port = server.server_address[:2]
        yield f"http://{host!s}:{port}"
    finally:
        server.shutdown()
        server.server_close()
