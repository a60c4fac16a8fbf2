"""Sensors with build_sensor_context against a real crawlr server on 127.0.0.1."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest

from ml_platform.defs.resources import CrawlrResource, StorageResource
from ml_platform.defs.sensors import collections_sensor, new_images_sensor
from ml_platform.services.batches import FeedCursor
from tests.crawlr.test_contract import FLAT, NESTED
from tests.crawlr_server import CrawlrServer, CrawlrState


@pytest.fixture
def state() -> CrawlrState:
    state = CrawlrState(collections=copy.deepcopy([NESTED, FLAT]))  # tests mutate it
    for image_id in range(1, 6):
        state.add_image(image_id)
    return state


@pytest.fixture
def server(state: CrawlrState, monkeypatch: pytest.MonkeyPatch) -> Iterator[CrawlrServer]:
    monkeypatch.setenv("ML_PLATFORM_CRAWLR_PAGE_SIZE", "2")
    monkeypatch.setenv("ML_PLATFORM_CRAWLR_RETRIES", "0")
    with CrawlrServer(state) as server:
        yield server


def tick(
    instance: dg.DagsterInstance, home: Path, url: str, cursor: str | None
) -> dg.SensorResult | dg.SkipReason:
    resources = {
        "crawlr": CrawlrResource(home=str(home), source=url),
        "storage": StorageResource(home=str(home)),
    }
    context = dg.build_sensor_context(instance=instance, cursor=cursor, resources=resources)
    result = new_images_sensor(context)
    assert isinstance(result, dg.SensorResult | dg.SkipReason)
    return result


def batch_images(home: Path, key: str) -> list[int]:
    images, _ = StorageResource(home=str(home)).manifests().read(key)
    return [im.id for im in images]


def test_new_images_become_one_batch_and_cursor_survives_ticks(
    tmp_path: Path, server: CrawlrServer, state: CrawlrState
) -> None:
    instance = dg.DagsterInstance.ephemeral()
    first = tick(instance, tmp_path, server.url, None)
    assert isinstance(first, dg.SensorResult) and first.run_requests
    (request,) = first.run_requests
    key = request.partition_key
    assert key is not None and instance.get_dynamic_partitions("ingestion_batches") == [key]
    assert batch_images(tmp_path, key) == [1, 2, 3, 4, 5]

    state.add_image(6)
    state.add_image(7)
    second = tick(instance, tmp_path, server.url, first.cursor)
    assert isinstance(second, dg.SensorResult)
    new_keys = set(instance.get_dynamic_partitions("ingestion_batches")) - {key}
    (new_key,) = new_keys
    assert batch_images(tmp_path, new_key) == [6, 7]
    assert {r.run_key for r in second.run_requests} == {key, new_key}  # run_key dedups in Dagster

    third = tick(instance, tmp_path, server.url, second.cursor)
    assert isinstance(third, dg.SensorResult)
    assert len(instance.get_dynamic_partitions("ingestion_batches")) == 2


def test_crawlr_error_keeps_the_cursor(
    tmp_path: Path, server: CrawlrServer, state: CrawlrState
) -> None:
    instance = dg.DagsterInstance.ephemeral()
    state.failures["/images.json"] = [500]
    cursor = FeedCursor(after="2").dumps()
    result = tick(instance, tmp_path, server.url, cursor)
    assert isinstance(result, dg.SkipReason)
    assert "cursor kept" in (result.skip_message or "")
    assert instance.get_dynamic_partitions("ingestion_batches") == []


def test_reset_cursor_never_ingests_an_image_twice(tmp_path: Path, server: CrawlrServer) -> None:
    instance = dg.DagsterInstance.ephemeral()
    tick(instance, tmp_path, server.url, None)
    again = tick(instance, tmp_path, server.url, None)  # cursor lost, e.g. sensor reset
    assert isinstance(again, dg.SensorResult)
    assert len(instance.get_dynamic_partitions("ingestion_batches")) == 1


def test_crash_before_partition_registration_is_recovered_next_tick(
    tmp_path: Path, server: CrawlrServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    instance = dg.DagsterInstance.ephemeral()
    real_add = instance.add_dynamic_partitions

    def crash(*args: object, **kwargs: object) -> None:
        raise RuntimeError("daemon killed")

    monkeypatch.setattr(instance, "add_dynamic_partitions", crash)
    with pytest.raises(RuntimeError, match="daemon killed"):
        tick(instance, tmp_path, server.url, None)  # no cursor is returned: it does not advance
    monkeypatch.setattr(instance, "add_dynamic_partitions", real_add)
    result = tick(instance, tmp_path, server.url, None)
    assert isinstance(result, dg.SensorResult)
    (key,) = instance.get_dynamic_partitions("ingestion_batches")
    assert [r.partition_key for r in result.run_requests] == [key]
    assert batch_images(tmp_path, key) == [1, 2, 3, 4, 5]


def test_collections_sensor_fires_only_when_the_reply_changes(
    server: CrawlrServer, state: CrawlrState, tmp_path: Path
) -> None:
    resources = {"crawlr": CrawlrResource(home=str(tmp_path), source=server.url)}
    first = collections_sensor(dg.build_sensor_context(cursor=None, resources=resources))
    assert isinstance(first, dg.SensorResult) and len(first.run_requests or []) == 1
    same = collections_sensor(dg.build_sensor_context(cursor=first.cursor, resources=resources))
    assert isinstance(same, dg.SkipReason)
    state.collections[0]["collection_focus"]["embedding_type"] = {"name": "embed_clip_vit_b_32"}
    changed = collections_sensor(dg.build_sensor_context(cursor=first.cursor, resources=resources))
    assert isinstance(changed, dg.SensorResult) and changed.cursor != first.cursor


def test_a_concurrent_planner_cannot_put_an_image_in_two_batches(
    tmp_path: Path, server: CrawlrServer, state: CrawlrState
) -> None:
    from ml_platform.services.batches import register_batch
    from ml_platform.store.ledger import LedgerConflictError

    crawlr = CrawlrResource(home=str(tmp_path), source=server.url)
    storage = StorageResource(home=str(tmp_path))
    first, _ = crawlr.next_batch(FeedCursor(), storage.ledger())  # e.g. `ml-platform run`
    state.add_image(6)
    second, _ = crawlr.next_batch(FeedCursor(), storage.ledger())  # the sensor, same moment
    assert first is not None and second is not None
    register_batch(first, storage.manifests(), storage.ledger())
    with pytest.raises(LedgerConflictError, match="already in another batch"):
        register_batch(second, storage.manifests(), storage.ledger())
    assert storage.ledger().pending_batches() == [first.key]
    replanned, _ = crawlr.next_batch(FeedCursor(), storage.ledger())
    assert replanned is not None and [im.id for im in replanned.images] == [6]
