"""The snapshot directory source, on the built-in sample snapshot."""

from __future__ import annotations

from pathlib import Path

import pytest

from ml_platform.crawlr.client import CrawlrError, fetch_collections, fetch_images_page, open_crawlr
from ml_platform.crawlr.snapshot import SnapshotCrawlrClient
from ml_platform.demo.sample import build_sample_snapshot
from ml_platform.domain import DerivativeType
from ml_platform.services.batches import FeedCursor, plan_next_batch
from ml_platform.store.metadata import MetadataDB

KNOWN = ["embed_clip_vit_b_32", "embed_dino_v2"]


@pytest.fixture(scope="module")
def snapshot(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("snapshot")
    assert build_sample_snapshot(root)
    return root


def test_sample_snapshot_covers_what_later_stages_need(snapshot: Path) -> None:
    client = open_crawlr(str(snapshot))
    assert isinstance(client, SnapshotCrawlrClient)
    collections = fetch_collections(client, KNOWN)
    usable = [c for c in collections if c.usable]
    assert {c.focus.derivative_type for c in usable if c.focus} == set(DerivativeType)
    assert {c.focus.embedding_type for c in usable if c.focus} == set(KNOWN)
    assert len(collections) - len(usable) == 2
    images = fetch_images_page(client, None, 1000).images
    assert len(images) >= 60
    per_pet: dict[int, int] = {}
    for image in images:
        if image.pet_id is not None:
            per_pet[image.pet_id] = per_pet.get(image.pet_id, 0) + 1
    assert len(per_pet) >= 3 and min(per_pet.values()) >= 10
    assert any(im.rejected_collection_ids for im in images)


def test_snapshot_pages_like_the_http_api(snapshot: Path, tmp_path: Path) -> None:
    client = open_crawlr(str(snapshot))
    total = len(fetch_images_page(client, None, 1000).images)
    batch, cursor = plan_next_batch(
        client,
        FeedCursor(),
        MetadataDB(f"sqlite:///{tmp_path / 'l.sqlite'}"),
        page_size=7,
        max_images=20,
    )
    assert batch is not None and 20 <= len(batch.images) < 27
    assert cursor.after is not None
    taken = len(batch.images)
    ledger = MetadataDB(f"sqlite:///{tmp_path / 'l.sqlite'}")
    ledger.register_batch(batch.key, batch.images)
    while True:
        batch, cursor = plan_next_batch(client, cursor, ledger, page_size=7, max_images=1000)
        if batch is None:
            break
        ledger.register_batch(batch.key, batch.images)
        taken += len(batch.images)
    assert taken == total


def test_building_the_sample_twice_is_a_no_op(snapshot: Path) -> None:
    before = (snapshot / "images.json").stat().st_mtime_ns
    assert not build_sample_snapshot(snapshot)
    assert (snapshot / "images.json").stat().st_mtime_ns == before


def test_missing_snapshot_says_how_to_make_one(tmp_path: Path) -> None:
    with pytest.raises(CrawlrError, match="ml-platform demo"):
        open_crawlr(str(tmp_path / "nowhere")).collections_raw()


def test_snapshot_refuses_urls_outside_it(snapshot: Path) -> None:
    with pytest.raises(CrawlrError, match="outside the snapshot"):
        open_crawlr(str(snapshot)).image_bytes("../../etc/passwd", 0)
