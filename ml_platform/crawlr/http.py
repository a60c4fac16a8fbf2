"""crawlr over HTTP: explicit timeouts, bounded retries with backoff, clear 4xx errors.

Only crawlr's own host and the hosts in `image_hosts` are ever contacted: an image URL on
another host is refused, and redirects are followed (at most `MAX_REDIRECTS`) only while
they stay on those hosts. An image download has a deadline for the whole transfer
(`image_deadline_s`), not only per read, so a server trickling bytes cannot hold a batch.
Every URL in a message or log line goes through `redact_url`: crawlr's password never
reaches logs, Dagster run storage or the ingestion tables.
"""

from __future__ import annotations

import logging
import time
from urllib.parse import unquote, urljoin, urlsplit, urlunsplit

import httpx

from ml_platform import telemetry
from ml_platform.crawlr.client import CrawlrError
from ml_platform.redact import redact_text, redact_url

log = logging.getLogger(__name__)

RETRYABLE = (httpx.TransportError,)  # connect, timeout, reset, protocol errors
REDIRECTS = frozenset({301, 302, 303, 307, 308})
MAX_REDIRECTS = 5
DEFAULT_IMAGE_DEADLINE_S = 60.0


class HttpCrawlrClient:
    def __init__(
        self,
        base_url: str,
        *,
        timeout_s: float = 10.0,
        retries: int = 3,
        backoff_s: float = 0.5,
        image_hosts: tuple[str, ...] = (),
        image_deadline_s: float = DEFAULT_IMAGE_DEADLINE_S,
    ) -> None:
        # Credentials leave the URL (httpx logs request URLs) and go only to crawlr's host.
        self._base, self._auth = _split_credentials(base_url.rstrip("/") + "/")
        self._crawlr_host = _host_port(self._base)
        self._retries = retries
        self._backoff_s = backoff_s
        # crawlr itself by host and port; allow-listed hosts as `host` (any port) or `host:port`
        self._hosts = frozenset({self._crawlr_host, *(h.strip().lower() for h in image_hosts)})
        self._timeout_s = timeout_s
        self._image_deadline_s = image_deadline_s
        timeout = httpx.Timeout(timeout_s, connect=min(timeout_s, 5.0))
        self._http = httpx.Client(timeout=timeout, follow_redirects=False)

    @property
    def source(self) -> str:
        """The base URL, without credentials (safe to log and to store)."""
        return self._base

    def url_for(self, url: str) -> str:
        """Absolute image URLs pass through; relative ones resolve against the crawlr base."""
        return urljoin(self._base, url.lstrip("/"))

    def allowed(self, url: str) -> bool:
        """Whether `url` is http(s) on crawlr's host or an allow-listed one."""
        try:
            parts = urlsplit(url)
            host = (parts.hostname or "").lower()
            host_port = _host_port(url)
        except ValueError:
            return False
        if parts.scheme not in ("http", "https") or not host:
            return False
        return host in self._hosts or host_port in self._hosts

    def _get(
        self,
        url: str,
        params: dict[str, str | int] | None = None,
        max_bytes: int = 0,
        deadline_s: float | None = None,
    ) -> bytes:
        shown = redact_url(url)
        with telemetry.span("crawlr.get", {"url.full": shown}):
            return self._attempts(url, shown, params, max_bytes, deadline_s)

    def _attempts(
        self,
        url: str,
        shown: str,
        params: dict[str, str | int] | None,
        max_bytes: int,
        deadline_s: float | None,
    ) -> bytes:
        """Up to 1 + retries attempts (each a span), with exponential backoff between."""
        last: Exception | None = None
        for attempt in range(self._retries + 1):
            if attempt:
                time.sleep(self._backoff_s * 2 ** (attempt - 1))
            try:
                with telemetry.span("crawlr.attempt", {"attempt": attempt + 1}):
                    return self._follow(url, params, max_bytes, deadline_s)
            except RETRYABLE as exc:
                last = exc
                log.warning("crawlr GET %s failed (%s); attempt %d", shown, _say(exc), attempt + 1)
            except _ServerError as exc:
                last = exc
                log.warning("crawlr GET %s: %s; attempt %d", shown, exc, attempt + 1)
            except (httpx.HTTPError, httpx.InvalidURL, ValueError) as exc:  # not retryable
                raise NotAllowedError(f"crawlr GET {shown} failed: {_say(exc)}") from exc
        raise CrawlrError(
            f"crawlr at {self.source} unreachable: GET {shown} failed {self._retries + 1} "
            f"times; last error: {_say(last) if last else 'none'}"
        )

    def _follow(
        self,
        url: str,
        params: dict[str, str | int] | None,
        max_bytes: int,
        deadline_s: float | None,
    ) -> bytes:
        """GET, following redirects only onto allowed hosts."""
        for _ in range(MAX_REDIRECTS + 1):
            if not self.allowed(url):
                raise NotAllowedError(
                    f"refusing to fetch {redact_url(url)}: its host is neither crawlr's nor in "
                    "ML_PLATFORM_CRAWLR_IMAGE_HOSTS"
                )
            location = self._get_once(url, params, max_bytes, deadline_s)
            if isinstance(location, bytes):
                return location
            url, params = urljoin(url, location), None
        raise NotAllowedError(f"more than {MAX_REDIRECTS} redirects from {redact_url(url)}")

    def _get_once(
        self,
        url: str,
        params: dict[str, str | int] | None,
        max_bytes: int,
        deadline_s: float | None,
    ) -> bytes | str:
        """The body, or the Location of a redirect."""
        started = time.monotonic()
        read = self._timeout_s if deadline_s is None else min(self._timeout_s, deadline_s)
        timeout = httpx.Timeout(read, connect=min(read, 5.0))  # no read outlasts the deadline
        auth = self._auth if _host_port(url) == self._crawlr_host else None
        with self._http.stream("GET", url, params=params, timeout=timeout, auth=auth) as reply:
            if reply.status_code in REDIRECTS and "location" in reply.headers:
                return reply.headers["location"]
            if reply.status_code >= 500:
                raise _ServerError(f"HTTP {reply.status_code}")
            if reply.status_code >= 300:
                raise CrawlrRefusedError(
                    f"crawlr refused GET {redact_url(str(reply.url))}: HTTP {reply.status_code} "
                    f"{reply.read()[:200]!r}",
                    status=reply.status_code,
                )
            return _read_limited(reply, max_bytes, deadline_s, started)

    def collections_raw(self) -> bytes:
        return self._get(self.url_for("collections.json"))

    def images_page_raw(self, after: str | None, limit: int) -> bytes:
        params: dict[str, str | int] = {"limit": limit}
        if after is not None:
            params["after"] = after
        return self._get(self.url_for("images.json"), params)

    def labels_page_raw(self, since: str | None, limit: int) -> bytes | None:
        """`GET /labels.json?since=&limit=`; None when crawlr answers 404 (no such endpoint)."""
        params: dict[str, str | int] = {"limit": limit}
        if since is not None:
            params["since"] = since
        try:
            return self._get(self.url_for("labels.json"), params)
        except CrawlrRefusedError as exc:
            if exc.status == 404:
                return None
            raise

    def feed_digest(self) -> str | None:
        return None  # reading the feed over HTTP is the rescan itself

    def image_bytes(self, url: str, max_bytes: int) -> bytes:
        try:
            absolute = self.url_for(url)
        except ValueError as exc:
            raise NotAllowedError(f"image URL {redact_url(url)!r} is malformed: {exc}") from exc
        return self._get(absolute, max_bytes=max_bytes, deadline_s=self._image_deadline_s)

    def close(self) -> None:
        self._http.close()


class _ServerError(Exception):
    pass


class ImageTooLargeDownload(CrawlrError):
    retryable = False


class CrawlrRefusedError(CrawlrError):
    """crawlr answered 4xx: asking again will not change the answer."""

    retryable = False

    def __init__(self, message: str, status: int = 0) -> None:
        super().__init__(message)
        self.status = status


class NotAllowedError(CrawlrError):
    """A URL off crawlr's host and the allow-list, or malformed: never fetched."""

    retryable = False


class DownloadDeadlineExceeded(CrawlrError):
    pass


def _split_credentials(url: str) -> tuple[str, httpx.BasicAuth | None]:
    """`url` without user-info, and that user-info as basic auth."""
    parts = urlsplit(url)
    if parts.username is None:
        return url, None
    host = parts.netloc.rpartition("@")[2]
    bare = urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))
    return bare, httpx.BasicAuth(unquote(parts.username), unquote(parts.password or ""))


def _host_port(url: str) -> str:
    """`host:port` with the scheme's default port filled in (raises ValueError if malformed)."""
    parts = urlsplit(url)
    port = parts.port or {"http": 80, "https": 443}.get(parts.scheme, 0)
    return f"{(parts.hostname or '').lower()}:{port}"


def _say(exc: BaseException) -> str:
    text = str(exc) if isinstance(exc, _ServerError) else f"{type(exc).__name__}: {exc}"
    return redact_text(text)


def _read_limited(
    reply: httpx.Response,
    max_bytes: int,
    deadline_s: float | None = None,
    started: float | None = None,
) -> bytes:
    """Read the body, refusing more than `max_bytes` (0 = no limit) or, with `deadline_s`,
    a transfer lasting longer since `started`, without buffering it all first. The check
    runs after each read, and no read waits longer than the deadline: a trickling server is
    cut off within twice the deadline at worst."""
    shown = redact_url(str(reply.url))
    declared = reply.headers.get("content-length", "")
    if max_bytes and declared.isdigit() and int(declared) > max_bytes:
        raise ImageTooLargeDownload(f"{shown} is {declared} bytes; the limit is {max_bytes}")
    started = time.monotonic() if started is None else started
    chunks: list[bytes] = []
    size = 0
    for chunk in reply.iter_bytes():
        size += len(chunk)
        if max_bytes and size > max_bytes:
            raise ImageTooLargeDownload(f"{shown} exceeds the limit of {max_bytes} bytes")
        if deadline_s is not None and time.monotonic() - started > deadline_s:
            raise DownloadDeadlineExceeded(
                f"{shown} took longer than {deadline_s:g} s to download "
                f"({size} bytes so far; ML_PLATFORM_CRAWLR_IMAGE_DEADLINE_S)"
            )
        chunks.append(chunk)
    return b"".join(chunks)
