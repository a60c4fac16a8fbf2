"""`GET /labels.json`: the contract's parser, and the HTTP client against the real test
crawlr server on 127.0.0.1 (404 means "no labels endpoint", not an error)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ml_platform.crawlr.client import CrawlrError, fetch_labels_page, open_crawlr
from ml_platform.crawlr.contract import MalformedReplyError
from ml_platform.crawlr.labels import parse_labels_page
from ml_platform.domain import ImageLabels
from tests.crawlr_server import CrawlrServer, CrawlrState

GOOD = {"image_id": 3, "collection_ids": [7, 7, 2], "rejected_collection_ids": [8],
        "updated_at": "2025-04-01T12:00:00Z"}  # fmt: skip


def test_a_row_parses_into_a_whole_label_state() -> None:
    page = parse_labels_page(json.dumps({"labels": [GOOD], "next_cursor": 12}))
    assert page.labels == (ImageLabels(3, (2, 7), (8,), datetime(2025, 4, 1, 12, tzinfo=UTC)),)
    assert page.next_cursor == "12" and page.malformed == ()


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        ({**GOOD, "image_id": "3"}, "without an integer image_id"),
        ({**GOOD, "image_id": True}, "without an integer image_id"),
        ({k: v for k, v in GOOD.items() if k != "collection_ids"}, "collection_ids must be"),
        ({**GOOD, "collection_ids": [7, "8"]}, "collection_ids must be a list of integers"),
        ({**GOOD, "rejected_collection_ids": 8}, "rejected_collection_ids must be"),
        ({**GOOD, "updated_at": None}, "updated_at missing"),
        ({**GOOD, "updated_at": "yesterday"}, "updated_at='yesterday' is not ISO 8601"),
        ("not a row", "without an integer image_id"),
    ],
)
def test_a_bad_row_is_skipped_with_its_reason_and_the_rest_kept(row: object, reason: str) -> None:
    page = parse_labels_page(json.dumps({"labels": [row, {**GOOD, "image_id": 4}]}))
    assert [r.image_id for r in page.labels] == [4]
    assert len(page.malformed) == 1 and reason in page.malformed[0]


@pytest.mark.parametrize(
    "body", [b"<html>", b"[]", b'{"labels": {}}', b'{"labels": [], "next_cursor": [1]}']
)
def test_a_reply_of_the_wrong_shape_is_malformed(body: bytes) -> None:
    with pytest.raises(MalformedReplyError, match="labels.json"):
        parse_labels_page(body)


@pytest.fixture
def state() -> CrawlrState:
    state = CrawlrState()
    for image_id in range(1, 4):
        state.add_image(image_id, collection_ids=[7])
    return state


@pytest.fixture
def server(state: CrawlrState) -> Iterator[CrawlrServer]:
    with CrawlrServer(state) as server:
        yield server


def test_the_http_client_pages_labels_with_since_and_limit(
    server: CrawlrServer, state: CrawlrState
) -> None:
    for image_id in (1, 2, 3):
        state.relabel(image_id, [], [7])
    client = open_crawlr(server.url, retries=0)
    first = fetch_labels_page(client, None, 2)
    assert first is not None and [r.image_id for r in first.labels] == [1, 2]
    second = fetch_labels_page(client, first.next_cursor, 2)
    assert second is not None and [r.image_id for r in second.labels] == [3]
    assert second.labels[0].rejected_collection_ids == (7,)
    end = fetch_labels_page(client, second.next_cursor, 2)
    assert end is not None and end.labels == () and end.next_cursor is None


def test_a_crawlr_without_the_endpoint_answers_none(
    server: CrawlrServer, state: CrawlrState
) -> None:
    state.serves_labels = False
    assert open_crawlr(server.url, retries=0).labels_page_raw(None, 10) is None


def test_other_refusals_and_server_errors_still_fail(
    server: CrawlrServer, state: CrawlrState
) -> None:
    client = open_crawlr(server.url, retries=0)
    state.failures["/labels.json"] = [403]
    with pytest.raises(CrawlrError, match="HTTP 403"):
        client.labels_page_raw(None, 10)
    state.failures["/labels.json"] = [500]
    with pytest.raises(CrawlrError, match="unreachable"):
        client.labels_page_raw(None, 10)


def test_a_snapshot_has_no_labels_endpoint_and_a_feed_digest(tmp_path: Path) -> None:
    (tmp_path / "images.json").write_text('{"images": []}')
    snapshot = open_crawlr(str(tmp_path))
    digest = snapshot.feed_digest()
    assert snapshot.labels_page_raw(None, 10) is None and digest is not None
    (tmp_path / "images.json").write_text('{"images": [], "next_cursor": null}')
    assert snapshot.feed_digest() != digest
    assert open_crawlr("http://127.0.0.1:9").feed_digest() is None
