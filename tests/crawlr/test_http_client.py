"""The HTTP crawlr client against a real server on 127.0.0.1."""

from __future__ import annotations

import copy
import socket
from collections.abc import Iterator

import pytest

from ml_platform.crawlr.client import CrawlrError, fetch_collections, fetch_images_page
from ml_platform.crawlr.contract import MalformedReplyError
from ml_platform.crawlr.http import HttpCrawlrClient
from tests.crawlr.test_contract import FLAT, KNOWN, NESTED
from tests.crawlr_server import CrawlrServer, CrawlrState


@pytest.fixture
def state() -> CrawlrState:
    state = CrawlrState(collections=copy.deepcopy([NESTED, FLAT]))
    for image_id in range(1, 8):
        state.add_image(image_id, collection_ids=[7])
    return state


@pytest.fixture
def server(state: CrawlrState) -> Iterator[CrawlrServer]:
    with CrawlrServer(state) as server:
        yield server


def client_for(server: CrawlrServer, timeout_s: float = 2.0, retries: int = 2) -> HttpCrawlrClient:
    return HttpCrawlrClient(server.url, timeout_s=timeout_s, retries=retries, backoff_s=0.01)


def test_reads_collections_in_both_focus_shapes(server: CrawlrServer) -> None:
    collections = fetch_collections(client_for(server), KNOWN)
    assert [c.id for c in collections] == [7, 8]
    assert all(c.usable for c in collections)


def test_pages_through_images(server: CrawlrServer) -> None:
    client = client_for(server)
    first = fetch_images_page(client, None, 3)
    second = fetch_images_page(client, first.next_cursor, 3)
    third = fetch_images_page(client, second.next_cursor, 3)
    ids = [im.id for page in (first, second, third) for im in page.images]
    assert ids == list(range(1, 8))
    assert third.next_cursor is None


def test_retries_a_500_then_succeeds(server: CrawlrServer, state: CrawlrState) -> None:
    state.failures["/collections.json"] = [500, 503]
    assert len(fetch_collections(client_for(server), KNOWN)) == 2
    assert state.hits["/collections.json"] == 3


def test_gives_up_after_bounded_retries_on_5xx(server: CrawlrServer, state: CrawlrState) -> None:
    state.failures["/collections.json"] = [500] * 5
    with pytest.raises(CrawlrError, match="failed 3 times; last error: HTTP 500"):
        fetch_collections(client_for(server, retries=2), KNOWN)


def test_4xx_is_a_clear_error_without_retry(server: CrawlrServer, state: CrawlrState) -> None:
    state.failures["/images.json"] = [403]
    with pytest.raises(CrawlrError, match="refused GET .* HTTP 403"):
        fetch_images_page(client_for(server), None, 10)
    assert state.hits["/images.json"] == 1


def test_timeout_is_retried_then_reported(server: CrawlrServer, state: CrawlrState) -> None:
    state.delays["/collections.json"] = 0.6
    with pytest.raises(CrawlrError, match="unreachable"):
        fetch_collections(client_for(server, timeout_s=0.2, retries=1), KNOWN)
    assert state.hits["/collections.json"] == 2


def test_malformed_json_reply_is_reported(server: CrawlrServer, state: CrawlrState) -> None:
    state.raw["/images.json"] = b"<html>maintenance</html>"
    with pytest.raises(MalformedReplyError, match="GET /images.json: not valid JSON"):
        fetch_images_page(client_for(server), None, 10)


def test_crawlr_down_is_a_clear_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    client = HttpCrawlrClient(f"http://127.0.0.1:{port}", timeout_s=0.5, retries=1, backoff_s=0.01)
    with pytest.raises(CrawlrError, match=f"127.0.0.1:{port}.*unreachable"):
        client.collections_raw()


def test_relative_and_absolute_image_urls(server: CrawlrServer, state: CrawlrState) -> None:
    client = client_for(server)
    assert client.image_bytes("/media/1.jpg", 0) == state.files["/media/1.jpg"]
    assert client.image_bytes(f"{server.url}/media/2.jpg", 0) == state.files["/media/2.jpg"]


def test_download_over_the_byte_limit_is_refused(server: CrawlrServer) -> None:
    with pytest.raises(CrawlrError, match="limit is 100"):
        client_for(server).image_bytes("/media/1.jpg", 100)
