"""A real crawlr HTTP server on 127.0.0.1 for tests, with injectable faults."""

from __future__ import annotations

import bisect
import io
import json
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

import numpy as np
from PIL import Image


def jpeg_bytes(seed: int, size: tuple[int, int] = (96, 80)) -> bytes:
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "JPEG")
    return buffer.getvalue()


@dataclass
class CrawlrState:
    collections: list[dict[str, Any]] = field(default_factory=list)
    images: list[dict[str, Any]] = field(default_factory=list)
    files: dict[str, bytes] = field(default_factory=dict)
    # path -> HTTP statuses to answer before behaving normally (e.g. [500])
    failures: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    delays: dict[str, float] = field(default_factory=dict)  # path -> seconds to stall
    raw: dict[str, bytes] = field(default_factory=dict)  # path -> body served verbatim
    hits: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    # GET /labels.json: one row per relabel, in order; the cursor is the row's sequence number
    label_rows: list[dict[str, Any]] = field(default_factory=list)
    serves_labels: bool = True  # False: /labels.json answers 404, as an older crawlr does

    def add_image(self, image_id: int, **fields: Any) -> None:
        url = fields.pop("url", f"/media/{image_id}.jpg")
        self.images.append(
            {"id": image_id, "url": url, "pet_id": fields.pop("pet_id", None),
             "created_at": fields.pop("created_at", "2025-03-01T12:00:00Z"),
             "collection_ids": fields.pop("collection_ids", []), **fields}
        )  # fmt: skip
        self.files.setdefault(url, jpeg_bytes(image_id))

    def relabel(
        self, image_id: int, members: list[int], rejected: list[int] | None = None,
        updated_at: str = "2025-04-01T12:00:00Z",
    ) -> None:  # fmt: skip
        """Change an image's labels as crawlr would: in the feed, and as a labels.json row."""
        for image in (im for im in self.images if im["id"] == image_id):
            image["collection_ids"], image["rejected_collection_ids"] = members, rejected or []
        self.label_rows.append(
            {"image_id": image_id, "collection_ids": members,
             "rejected_collection_ids": rejected or [], "updated_at": updated_at}
        )  # fmt: skip


def _handler(state: CrawlrState) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            return None

        def _send(self, status: int, body: bytes, ctype: str = "application/json") -> None:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            url = urlparse(self.path)
            state.hits[url.path] += 1
            if url.path in state.delays:
                time.sleep(state.delays[url.path])
            if state.failures.get(url.path):
                status = state.failures[url.path].pop(0)
                return self._send(status, b'{"error": "injected"}')
            if url.path in state.raw:
                return self._send(200, state.raw[url.path])
            if url.path == "/collections.json":
                return self._send(200, json.dumps(state.collections).encode())
            if url.path == "/images.json":
                return self._send(200, self._page(parse_qs(url.query)))
            if url.path == "/labels.json" and state.serves_labels:
                return self._send(200, self._labels(parse_qs(url.query)))
            if url.path in state.files:
                return self._send(200, state.files[url.path], "image/jpeg")
            return self._send(404, b'{"error": "not found"}')

        def _page(self, query: dict[str, list[str]]) -> bytes:
            ordered = sorted(state.images, key=lambda im: im["id"])  # ~linear: kept sorted
            after = int(query.get("after", ["0"])[0])
            limit = int(query.get("limit", ["100"])[0])
            start = bisect.bisect_right(ordered, after, key=lambda im: im["id"])
            page = ordered[start : start + limit]
            cursor = str(page[-1]["id"]) if len(ordered) - start > limit else None
            return json.dumps({"images": page, "next_cursor": cursor}).encode()

        def _labels(self, query: dict[str, list[str]]) -> bytes:
            since = int(query.get("since", ["0"])[0])
            limit = int(query.get("limit", ["100"])[0])
            page = state.label_rows[since : since + limit]
            cursor = str(since + len(page)) if page else None
            return json.dumps({"labels": page, "next_cursor": cursor}).encode()

    return Handler


class CrawlrServer:
    def __init__(self, state: CrawlrState) -> None:
        self.state = state
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def __enter__(self) -> CrawlrServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


def serve(state: CrawlrState) -> Iterator[CrawlrServer]:
    with CrawlrServer(state) as server:
        yield server
