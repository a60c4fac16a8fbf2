"""The HTTP crawlr client against hostile servers on 127.0.0.1: redirects off crawlr's host,
foreign image hosts, a trickling server, and credentials that must never be shown."""

from __future__ import annotations

import base64
import logging
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from ml_platform.crawlr.client import CrawlrError, open_crawlr
from ml_platform.crawlr.http import DownloadDeadlineExceeded, HttpCrawlrClient
from ml_platform.redact import redact_text, redact_url

Route = Callable[[BaseHTTPRequestHandler], None]


class Server:
    """A server whose routes are functions of the request handler."""

    def __init__(self, routes: dict[str, Route]) -> None:
        self.hits: list[str] = []
        self.auth: list[str | None] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                return None

            def do_GET(self) -> None:
                path = self.path.split("?")[0]
                server.hits.append(path)
                server.auth.append(self.headers.get("Authorization"))
                routes.get(path, _not_found)(self)

        self._http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._http.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._http.server_address[1]}"

    def close(self) -> None:
        self._http.shutdown()
        self._http.server_close()


def _not_found(handler: BaseHTTPRequestHandler) -> None:
    _send(handler, 404, b"not found")


def _send(handler: BaseHTTPRequestHandler, status: int, body: bytes, **headers: str) -> None:
    handler.send_response(status)
    for name, value in {"Content-Length": str(len(body)), **headers}.items():
        handler.send_header(name, value)
    handler.end_headers()
    handler.wfile.write(body)


def _redirect(location: str) -> Route:
    return lambda handler: _send(handler, 302, b"", Location=location)


def _trickle(handler: BaseHTTPRequestHandler) -> None:
    """Headers at once, then one byte every 0.2 s for up to 10 s (under any read timeout)."""
    handler.send_response(200)
    handler.send_header("Content-Length", "50")
    handler.end_headers()
    try:
        for _ in range(50):
            handler.wfile.write(b"x")
            handler.wfile.flush()
            time.sleep(0.2)
    except OSError:  # the client gave up, as it should
        return


@pytest.fixture
def other() -> Iterator[Server]:
    server = Server({"/elsewhere.jpg": lambda h: _send(h, 200, b"FOREIGN")})
    yield server
    server.close()


@pytest.fixture
def crawlr(other: Server) -> Iterator[Server]:
    server = Server(
        {
            "/media/1.jpg": lambda h: _send(h, 200, b"IMAGE"),
            "/moved.jpg": _redirect("/media/1.jpg"),
            "/off-host.jpg": _redirect(f"{other.url}/elsewhere.jpg"),
            "/loop.jpg": _redirect("/loop.jpg"),
            "/slow.jpg": _trickle,
        }
    )
    yield server
    server.close()


def client(server: Server, **options: Any) -> HttpCrawlrClient:
    return HttpCrawlrClient(server.url, timeout_s=2.0, retries=0, backoff_s=0.01, **options)


def test_redirects_on_crawlrs_host_are_followed(crawlr: Server) -> None:
    assert client(crawlr).image_bytes("/moved.jpg", 0) == b"IMAGE"


def test_redirect_off_crawlrs_host_is_refused_before_contacting_it(
    crawlr: Server, other: Server
) -> None:
    with pytest.raises(CrawlrError, match="neither crawlr's nor in ML_PLATFORM_CRAWLR_IMAGE_HOSTS"):
        client(crawlr).image_bytes("/off-host.jpg", 0)
    assert other.hits == []


def test_allow_listed_host_may_serve_images_and_redirect_targets(
    crawlr: Server, other: Server
) -> None:
    host = other.url.removeprefix("http://")
    with_password = crawlr.url.replace("http://", "http://u:pw@")
    allowed = HttpCrawlrClient(with_password, timeout_s=2.0, retries=0, image_hosts=(host,))
    assert allowed.image_bytes(f"{other.url}/elsewhere.jpg", 0) == b"FOREIGN"
    assert allowed.image_bytes("/off-host.jpg", 0) == b"FOREIGN"
    assert other.auth == [None, None]  # crawlr's credentials stay with crawlr


def test_absolute_image_url_on_a_foreign_host_is_refused(crawlr: Server, other: Server) -> None:
    with pytest.raises(CrawlrError, match="refusing to fetch"):
        client(crawlr).image_bytes(f"{other.url}/elsewhere.jpg", 0)
    with pytest.raises(CrawlrError, match="refusing to fetch"):
        client(crawlr).image_bytes("http://169.254.169.254/latest/meta-data", 0)
    assert other.hits == []


def test_redirect_loop_ends_with_a_clear_error(crawlr: Server) -> None:
    with pytest.raises(CrawlrError, match="more than 5 redirects"):
        client(crawlr).image_bytes("/loop.jpg", 0)


@pytest.mark.parametrize("url", ["http://[::1/x", "http://h:99999/x", "/a\r\nb.jpg", "ftp://x/y"])
def test_malformed_image_url_from_the_feed_is_a_crawlr_error(crawlr: Server, url: str) -> None:
    with pytest.raises(CrawlrError):
        client(crawlr).image_bytes(url, 0)


def test_trickling_download_is_cut_at_the_whole_transfer_deadline(crawlr: Server) -> None:
    """Each byte comes well within the 2 s read timeout; only the total deadline stops it."""
    with pytest.raises(DownloadDeadlineExceeded, match="longer than 0.5 s") as caught:
        client(crawlr, image_deadline_s=0.5).image_bytes("/slow.jpg", 0)
    assert "bytes so far" in str(caught.value)


def test_crawlr_password_is_never_shown(crawlr: Server, caplog: pytest.LogCaptureFixture) -> None:
    secret_url = crawlr.url.replace("http://", "http://ingest:hunter2@")
    secret = open_crawlr(secret_url, timeout_s=1.0, retries=1)
    caplog.set_level(logging.DEBUG)
    messages = []
    for path in ("/missing.jpg", "/off-host.jpg"):
        with pytest.raises(CrawlrError) as caught:
            secret.image_bytes(path, 0)
        messages.append(str(caught.value))
    down = HttpCrawlrClient("http://ingest:hunter2@127.0.0.1:9", timeout_s=0.5, retries=1)
    with pytest.raises(CrawlrError) as unreachable:
        down.collections_raw()
    messages.append(str(unreachable.value))

    assert secret.source == crawlr.url + "/"
    for text in [*messages, caplog.text]:
        assert "hunter2" not in text
    assert secret.image_bytes("/media/1.jpg", 0) == b"IMAGE"
    assert crawlr.auth[-1] == "Basic " + base64.b64encode(b"ingest:hunter2").decode()


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://bob:pw@h.example/a?x=1", "https://bob:***@h.example/a?x=1"),
        ("https://tok@h.example/", "https://***@h.example/"),
        ("https://h.example/a?token=abc&limit=5", "https://h.example/a?token=***&limit=5"),
        ("http://[::1/x", "http://[::1/x"),
        ("/relative/path.jpg", "/relative/path.jpg"),
    ],
)
def test_redact_url_masks_credentials(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_redact_text_masks_urls_inside_messages() -> None:
    text = "GET https://bob:pw@h/a failed; then http://t0k3n@g/b"
    assert redact_text(text) == "GET https://bob:***@h/a failed; then http://***@g/b"
