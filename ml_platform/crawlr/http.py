"""crawlr over HTTP: explicit timeouts, bounded retries with backoff, clear 4xx errors."""

from __future__ import annotations

import logging
import time
from urllib.parse import urljoin

import httpx

from ml_platform.crawlr.client import CrawlrError

log = logging.getLogger(__name__)

RETRYABLE = (httpx.TransportError,)  # connect, timeout, reset, protocol errors


class HttpCrawlrClient:
    def __init__(
        self, base_url: str, *, timeout_s: float = 10.0, retries: int = 3, backoff_s: float = 0.5
    ) -> None:
        self._base = base_url.rstrip("/") + "/"
        self._retries = retries
        self._backoff_s = backoff_s
        timeout = httpx.Timeout(timeout_s, connect=min(timeout_s, 5.0))
        self._http = httpx.Client(timeout=timeout, follow_redirects=True)

    @property
    def source(self) -> str:
        return self._base

    def url_for(self, url: str) -> str:
        """Absolute image URLs pass through; relative ones resolve against the crawlr base."""
        return urljoin(self._base, url.lstrip("/"))

    def _get(
        self, url: str, params: dict[str, str | int] | None = None, max_bytes: int = 0
    ) -> bytes:
        last: Exception | None = None
        for attempt in range(self._retries + 1):
            if attempt:
                time.sleep(self._backoff_s * 2 ** (attempt - 1))
            try:
                return self._get_once(url, params, max_bytes)
            except RETRYABLE as exc:
                last = exc
                log.warning("crawlr GET %s failed (%s); attempt %d", url, exc, attempt + 1)
            except _ServerError as exc:
                last = exc
                log.warning("crawlr GET %s: %s; attempt %d", url, exc, attempt + 1)
            except httpx.HTTPError as exc:  # not retryable: bad URL, redirect loop, ...
                raise CrawlrError(f"crawlr GET {url} failed: {type(exc).__name__}: {exc}") from exc
        raise CrawlrError(
            f"crawlr at {self._base} unreachable: GET {url} failed {self._retries + 1} times; "
            f"last error: {last}"
        )

    def _get_once(self, url: str, params: dict[str, str | int] | None, max_bytes: int) -> bytes:
        with self._http.stream("GET", url, params=params) as reply:
            if reply.status_code >= 500:
                raise _ServerError(f"HTTP {reply.status_code}")
            if reply.status_code >= 400:
                raise CrawlrRefusedError(
                    f"crawlr refused GET {reply.url}: HTTP {reply.status_code} "
                    f"{reply.read()[:200]!r}"
                )
            return _read_limited(reply, max_bytes)

    def collections_raw(self) -> bytes:
        return self._get(self.url_for("collections.json"))

    def images_page_raw(self, after: str | None, limit: int) -> bytes:
        params: dict[str, str | int] = {"limit": limit}
        if after is not None:
            params["after"] = after
        return self._get(self.url_for("images.json"), params)

    def image_bytes(self, url: str, max_bytes: int) -> bytes:
        return self._get(self.url_for(url), max_bytes=max_bytes)

    def close(self) -> None:
        self._http.close()


class _ServerError(Exception):
    pass


class ImageTooLargeDownload(CrawlrError):
    retryable = False


class CrawlrRefusedError(CrawlrError):
    """crawlr answered 4xx: asking again will not change the answer."""

    retryable = False


def _read_limited(reply: httpx.Response, max_bytes: int) -> bytes:
    """Read the body, refusing more than `max_bytes` (0 = no limit) without buffering it all."""
    declared = int(reply.headers.get("content-length") or 0)
    if max_bytes and declared > max_bytes:
        raise ImageTooLargeDownload(f"{reply.url} is {declared} bytes; the limit is {max_bytes}")
    chunks: list[bytes] = []
    size = 0
    for chunk in reply.iter_bytes():
        size += len(chunk)
        if max_bytes and size > max_bytes:
            raise ImageTooLargeDownload(f"{reply.url} exceeds the limit of {max_bytes} bytes")
        chunks.append(chunk)
    return b"".join(chunks)
