"""The crawlr interface and its two implementations: HTTP and a local snapshot directory."""

from __future__ import annotations

from collections.abc import Collection as Names
from pathlib import Path
from typing import Protocol

from ml_platform.crawlr.contract import parse_collections, parse_images_page
from ml_platform.crawlr.labels import parse_labels_page
from ml_platform.domain import Collection, ImagePage, LabelsPage


class CrawlrError(RuntimeError):
    """crawlr could not be reached or refused a request; the message says which and why."""

    retryable = True  # a timeout, a reset or a 5xx may succeed later


class CrawlrClient(Protocol):
    """What ml_platform needs from crawlr (docs/crawlr.md)."""

    @property
    def source(self) -> str: ...

    def collections_raw(self) -> bytes: ...

    def images_page_raw(self, after: str | None, limit: int) -> bytes: ...

    def image_bytes(self, url: str, max_bytes: int) -> bytes: ...

    def labels_page_raw(self, since: str | None, limit: int) -> bytes | None:
        """A page of `GET /labels.json`, or None where crawlr has no labels endpoint."""
        ...

    def feed_digest(self) -> str | None:
        """A digest of the whole image feed where reading it is cheap (a snapshot's
        images.json), else None."""
        ...

    def close(self) -> None: ...


def fetch_collections(client: CrawlrClient, known_embeddings: Names[str]) -> list[Collection]:
    return parse_collections(client.collections_raw(), known_embeddings)


def fetch_images_page(client: CrawlrClient, after: str | None, limit: int) -> ImagePage:
    return parse_images_page(client.images_page_raw(after, limit))


def fetch_labels_page(client: CrawlrClient, since: str | None, limit: int) -> LabelsPage | None:
    raw = client.labels_page_raw(since, limit)
    return None if raw is None else parse_labels_page(raw)


def is_http(source: str) -> bool:
    return source.startswith(("http://", "https://"))


def open_crawlr(
    source: str,
    *,
    timeout_s: float = 10.0,
    retries: int = 3,
    image_hosts: str | None = None,
    image_deadline_s: float = 60.0,
) -> CrawlrClient:
    """An HTTP client for an http(s) URL, a snapshot reader for a directory path.

    `image_hosts` (comma-separated) are fetched from besides crawlr's own host.
    """
    if is_http(source):
        from ml_platform.crawlr.http import HttpCrawlrClient

        hosts = tuple(h for h in (image_hosts or "").split(",") if h.strip())
        return HttpCrawlrClient(
            source,
            timeout_s=timeout_s,
            retries=retries,
            image_hosts=hosts,
            image_deadline_s=image_deadline_s,
        )
    from ml_platform.crawlr.snapshot import SnapshotCrawlrClient

    return SnapshotCrawlrClient(Path(source))
