"""crawlr read from a local snapshot directory: collections.json, images.json, image files."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from ml_platform.crawlr.client import CrawlrError
from ml_platform.crawlr.contract import loads


class SnapshotCrawlrClient:
    """Serves the crawlr contract from files; pages through images.json like the HTTP API."""

    def __init__(self, root: Path) -> None:
        self._root = root.expanduser().resolve()

    @property
    def source(self) -> str:
        return str(self._root)

    def _read(self, name: str) -> bytes:
        path = self._root / name
        if not path.is_file():
            raise CrawlrError(
                f"crawlr snapshot {self._root} has no {name}; run `ml-platform demo` to build the "
                "sample snapshot or set ML_PLATFORM_CRAWLR to a crawlr URL or snapshot directory"
            )
        return path.read_bytes()

    def collections_raw(self) -> bytes:
        return self._read("collections.json")

    def images_page_raw(self, after: str | None, limit: int) -> bytes:
        """Emulate paging: the cursor is the offset into the snapshot's stable image list."""
        data = loads(self._read("images.json"), "snapshot images.json")
        images = data.get("images", []) if isinstance(data, dict) else data
        if not isinstance(images, list):
            return json.dumps({"images": None, "next_cursor": None}).encode()
        start = int(after) if after else 0
        end = start + limit
        cursor = str(end) if end < len(images) else None
        return json.dumps({"images": images[start:end], "next_cursor": cursor}).encode()

    def labels_page_raw(self, since: str | None, limit: int) -> bytes | None:
        return None  # a snapshot's labels live in images.json: see feed_digest

    def feed_digest(self) -> str | None:
        """The sha256 of images.json: label changes are re-read whenever it changes."""
        return hashlib.sha256(self._read("images.json")).hexdigest()

    def image_bytes(self, url: str, max_bytes: int) -> bytes:
        path = (self._root / url.lstrip("/")).resolve()
        if not path.is_relative_to(self._root):
            raise CrawlrError(f"image url {url!r} points outside the snapshot {self._root}")
        if not path.is_file():
            raise CrawlrError(f"image file {url!r} is missing from the snapshot {self._root}")
        if max_bytes and path.stat().st_size > max_bytes:
            raise CrawlrError(f"{url} is {path.stat().st_size} bytes; the limit is {max_bytes}")
        return path.read_bytes()

    def close(self) -> None:
        return None
