"""The label tick against a real crawlr server on 127.0.0.1 (and a snapshot directory) and a
real sqlite metadata database: exactly-once application, replays, crashes between pages, the
404 fallback rescan with its interval, snapshot changes, and the retrain token it moves."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ml_platform.crawlr.client import CrawlrClient, open_crawlr
from ml_platform.defs.resources import StorageResource
from ml_platform.domain import (
    DerivativeType,
    Focus,
    ImageLabels,
    ImageRecord,
    IngestedImage,
    IngestStatus,
    LabelChange,
    LabelSource,
    LabelState,
)
from ml_platform.services.label_changes import (
    LABELS_CURSOR,
    LabelSyncConfig,
    label_tick,
)
from ml_platform.services.retraining import label_token
from ml_platform.services.training_data import load_images, with_labels
from ml_platform.store.label_index import apply_labels, history
from ml_platform.store.metadata import MetadataDB
from tests.crawlr_server import CrawlrServer, CrawlrState
from tests.synthetic_home import SyntheticImage, add_batch

T0 = datetime(2025, 4, 1, 12, tzinfo=UTC)
CONFIG = LabelSyncConfig(page_size=2, rescan_interval_s=6 * 3600)
MEMBER, REJECTED, NONE = LabelState.MEMBER, LabelState.REJECTED, LabelState.NONE


@pytest.fixture
def state() -> CrawlrState:
    state = CrawlrState()
    for image_id in range(1, 6):
        state.add_image(image_id, collection_ids=[7], rejected_collection_ids=[8])
    return state


@pytest.fixture
def server(state: CrawlrState) -> Iterator[CrawlrServer]:
    with CrawlrServer(state) as server:
        yield server


@pytest.fixture
def db(tmp_path: Path, state: CrawlrState) -> MetadataDB:
    """The platform after ingesting the five images with their labels at the time."""
    db = MetadataDB(f"sqlite:///{tmp_path / 'metadata.sqlite'}")
    db.register_batch("b1", [record(im) for im in state.images])
    return db


def record(image: dict[str, Any]) -> ImageRecord:
    return ImageRecord(
        id=image["id"], url=image["url"], created_at=T0,
        collection_ids=tuple(image["collection_ids"]),
        rejected_collection_ids=tuple(image.get("rejected_collection_ids", [])),
    )  # fmt: skip


def client(server: CrawlrServer) -> CrawlrClient:
    return open_crawlr(server.url, retries=0)


def at(hours: float) -> str:
    return (T0 + timedelta(hours=hours)).isoformat()


def test_a_label_change_reaches_the_index_with_its_history(
    server: CrawlrServer, state: CrawlrState, db: MetadataDB
) -> None:
    before = db.label_fingerprints()
    state.relabel(2, [], [7])  # a moderator rejects image 2 from collection 7
    tick = label_tick(client(server), db, CONFIG)
    assert tick.source is LabelSource.LABELS_JSON
    assert tick.changes == [LabelChange(2, 7, MEMBER, REJECTED), LabelChange(2, 8, REJECTED, NONE)]
    assert tick.collections == [7, 8]
    assert db.current_labels([2]) == {2: ([], [7])}
    (first, second) = history(db, 2)
    assert (first["collection_id"], first["before"], first["after"]) == (7, "member", "rejected")
    assert first["source"] == "labels.json" and second["after"] == "none"
    after = db.label_fingerprints()
    assert after[7][:2] == (4, 1) and before[7][:2] == (5, 0)
    assert label_token("whole_image/x", after[7]) != label_token("whole_image/x", before[7])


def test_a_second_tick_and_a_replay_of_every_page_change_nothing(
    server: CrawlrServer, state: CrawlrState, db: MetadataDB
) -> None:
    for image_id in (1, 2, 3):
        state.relabel(image_id, [9], [], updated_at=at(image_id))
    assert len(label_tick(client(server), db, CONFIG).changes) == 9
    assert label_tick(client(server), db, CONFIG).changes == []
    db.set_cursor(LABELS_CURSOR, "")  # a lost cursor: every page is read again
    again = label_tick(client(server), db, CONFIG)
    assert again.pages == 3 and again.rows == 3 and again.changes == []
    assert len(history(db)) == 9


def test_an_older_row_replayed_after_a_newer_change_is_ignored(db: MetadataDB) -> None:
    newer = ImageLabels(1, (9,), (), T0 + timedelta(hours=2))
    older = ImageLabels(1, (), (), T0 + timedelta(hours=1))
    assert len(apply_labels(db, [newer], LabelSource.LABELS_JSON, "2").changes) == 3
    replay = apply_labels(db, [older], LabelSource.LABELS_JSON, "1")
    assert replay.changes == () and replay.stale == 1
    assert db.current_labels([1]) == {1: ([9], [])}


class DiesAfter:
    """A real client that is killed after `pages` labels pages (a crash between pages)."""

    def __init__(self, inner: CrawlrClient, pages: int) -> None:
        self.inner, self.left = inner, pages

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def labels_page_raw(self, since: str | None, limit: int) -> bytes | None:
        if self.left == 0:
            raise KeyboardInterrupt("daemon killed between pages")
        self.left -= 1
        return self.inner.labels_page_raw(since, limit)


def test_a_crash_between_pages_resumes_after_the_last_applied_page(
    server: CrawlrServer, state: CrawlrState, db: MetadataDB
) -> None:
    for image_id in (1, 2, 3, 4, 5):
        state.relabel(image_id, [7, 9], [8], updated_at=at(1))
    dying: Any = DiesAfter(client(server), pages=1)
    with pytest.raises(KeyboardInterrupt):
        label_tick(dying, db, CONFIG)
    assert db.get_cursor(LABELS_CURSOR) == "2"  # the first page and its cursor, together
    assert [h["image_id"] for h in history(db)] == [1, 2]
    resumed = label_tick(client(server), db, CONFIG)
    assert sorted({c.image_id for c in resumed.changes}) == [3, 4, 5]
    assert sorted(h["image_id"] for h in history(db)) == [1, 2, 3, 4, 5]  # each change once


def test_bad_rows_are_reported_and_skipped_and_the_rest_applied(
    server: CrawlrServer, state: CrawlrState, db: MetadataDB
) -> None:
    rows = [{"image_id": "x"}, {"image_id": 2, "collection_ids": [], "updated_at": "soon"},
            {"image_id": 3, "collection_ids": [], "updated_at": at(1)}]  # fmt: skip
    state.raw["/labels.json"] = json.dumps({"labels": rows, "next_cursor": None}).encode()
    tick = label_tick(client(server), db, LabelSyncConfig(10, 3600))
    assert len(tick.malformed) == 2 and "updated_at='soon'" in tick.malformed[1]
    assert {c.image_id for c in tick.changes} == {3}


def test_labels_of_images_not_ingested_are_left_to_their_ingestion(
    server: CrawlrServer, state: CrawlrState, db: MetadataDB
) -> None:
    state.relabel(99, [7])  # crawlr knows image 99; the platform has not ingested it yet
    tick = label_tick(client(server), db, CONFIG)
    assert tick.not_ingested == 1 and tick.changes == []
    assert db.current_labels([99]) == {}


def test_without_labels_json_the_feed_is_rescanned_every_interval(
    server: CrawlrServer, state: CrawlrState, db: MetadataDB
) -> None:
    state.serves_labels = False
    state.relabel(4, [])
    first = label_tick(client(server), db, CONFIG, now=T0)
    assert first.source is LabelSource.RESCAN and first.pages == 3  # 5 images, 2 a page
    assert first.changes == [LabelChange(4, 7, MEMBER, NONE), LabelChange(4, 8, REJECTED, NONE)]
    state.relabel(5, [])
    early = label_tick(client(server), db, CONFIG, now=T0 + timedelta(hours=5))
    assert early.source is None and "next feed rescan" in early.note
    assert db.current_labels([5]) == {5: ([7], [8])}
    due = label_tick(client(server), db, CONFIG, now=T0 + timedelta(hours=6))
    assert due.source is LabelSource.RESCAN and {c.image_id for c in due.changes} == {5}
    assert {h["source"] for h in history(db)} == {"rescan"}


def test_a_rescan_cut_short_resumes_where_it_stopped(
    server: CrawlrServer, state: CrawlrState, db: MetadataDB
) -> None:
    state.serves_labels = False
    state.relabel(1, [7, 9], [8])  # on the first page
    state.relabel(5, [])  # on the third
    one_page = LabelSyncConfig(page_size=2, rescan_interval_s=3600, max_pages=1)
    ticks = [label_tick(client(server), db, one_page, now=T0) for _ in range(3)]
    assert [t.complete for t in ticks] == [False, False, True]
    assert [len(t.changes) for t in ticks] == [1, 0, 2]
    # retrained once, when the scan is complete, for everything the whole scan changed
    assert [t.settled for t in ticks] == [[], [], [7, 8, 9]]
    assert state.hits["/images.json"] == 3  # no page read twice
    assert label_tick(client(server), db, one_page, now=T0).source is None


def test_a_snapshot_is_rediffed_whenever_its_images_json_changes(
    tmp_path: Path, state: CrawlrState, db: MetadataDB
) -> None:
    snapshot = tmp_path / "snapshot"
    snapshot.mkdir()
    path = snapshot / "images.json"
    path.write_text(json.dumps({"images": state.images}))
    reader = open_crawlr(str(snapshot))
    first = label_tick(reader, db, CONFIG)
    assert first.source is LabelSource.SNAPSHOT and first.changes == []  # as ingested
    assert label_tick(reader, db, CONFIG).source is None  # unchanged: not even read
    state.images[0]["collection_ids"] = [7, 9]
    path.write_text(json.dumps({"images": state.images}))
    changed = label_tick(reader, db, CONFIG)
    assert changed.changes == [LabelChange(1, 9, NONE, MEMBER)]
    assert history(db)[0]["source"] == "snapshot"


def test_training_reads_the_current_labels_not_those_recorded_at_ingestion(
    tmp_path: Path,
) -> None:
    storage = StorageResource(home=str(tmp_path / "home"))
    vector = np.ones(4, np.float32)
    images = [SyntheticImage(i, vector, members=(7,)) for i in (1, 2, 3)]
    add_batch(storage, "b1", images, [Focus(DerivativeType.WHOLE_IMAGE, "embed_dino_v2")])
    db = storage.metadata()
    apply_labels(db, [ImageLabels(2, (9,), (7,), T0)], LabelSource.LABELS_JSON, "0")
    loaded = {e.image.id: e.image for e in load_images(storage.layout())}
    assert (loaded[2].collection_ids, loaded[2].rejected_collection_ids) == ((9,), (7,))
    assert loaded[1].collection_ids == (7,)
    catalog_only = with_labels(replace_id(loaded[1], 42), db.current_labels([42]))
    assert catalog_only.image.collection_ids == (7,)  # not in the index: the catalog's labels


def replace_id(image: ImageRecord, image_id: int) -> IngestedImage:
    return IngestedImage(image=dataclasses.replace(image, id=image_id), status=IngestStatus.OK)
