"""The planner sensor with build_sensor_context against a real crawlr server on 127.0.0.1."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest

from ml_platform.defs.planning import FEED_CURSOR
from ml_platform.defs.resources import CrawlrResource, StorageResource
from ml_platform.defs.sensors import planner_sensor
from ml_platform.services.batches import FeedCursor, register_batch
from ml_platform.store.metadata import BatchConflictError
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


def resources(home: Path, url: str) -> dict[str, object]:
    return {
        "crawlr": CrawlrResource(home=str(home), source=url),
        "storage": StorageResource(home=str(home)),
    }


def tick(instance: dg.DagsterInstance, home: Path, url: str) -> dg.SensorResult | dg.SkipReason:
    context = dg.build_sensor_context(instance=instance, resources=resources(home, url))
    result = planner_sensor(context)
    assert isinstance(result, dg.SensorResult | dg.SkipReason)
    return result


def materialize_collections(instance: dg.DagsterInstance, home: Path, url: str) -> None:
    from ml_platform.defs.assets.collections import crawlr_collections
    from ml_platform.defs.resources.vision_models import ModelsResource

    res = {**resources(home, url), "models": ModelsResource(home=str(home))}
    assert dg.materialize([crawlr_collections], instance=instance, resources=res).success


def batch_images(home: Path, key: str) -> list[int]:
    images, _ = StorageResource(home=str(home)).manifests().read(key)
    return [im.id for im in images]


def jobs(result: dg.SensorResult | dg.SkipReason) -> list[tuple[str | None, str | None]]:
    assert isinstance(result, dg.SensorResult)
    return [(r.job_name, r.partition_key) for r in result.run_requests or []]


def test_first_tick_asks_for_collections_before_any_batch(
    tmp_path: Path, server: CrawlrServer
) -> None:
    instance = dg.DagsterInstance.ephemeral()
    assert jobs(tick(instance, tmp_path, server.url)) == [("collections_job", None)]
    assert instance.get_dynamic_partitions("ingestion_batches") == []


def test_new_images_become_one_batch_and_later_images_another(
    tmp_path: Path, server: CrawlrServer, state: CrawlrState
) -> None:
    instance = dg.DagsterInstance.ephemeral()
    materialize_collections(instance, tmp_path, server.url)
    first = jobs(tick(instance, tmp_path, server.url))
    (key,) = instance.get_dynamic_partitions("ingestion_batches")
    assert first == [("ingest_job", key)]
    assert batch_images(tmp_path, key) == [1, 2, 3, 4, 5]

    state.add_image(6)
    state.add_image(7)
    second = jobs(tick(instance, tmp_path, server.url))
    (new_key,) = set(instance.get_dynamic_partitions("ingestion_batches")) - {key}
    assert batch_images(tmp_path, new_key) == [6, 7]
    assert second == [("ingest_job", key), ("ingest_job", new_key)]  # both still incomplete


def test_a_changed_collections_reply_asks_for_a_refresh(
    tmp_path: Path, server: CrawlrServer, state: CrawlrState
) -> None:
    instance = dg.DagsterInstance.ephemeral()
    materialize_collections(instance, tmp_path, server.url)
    assert ("collections_job", None) not in jobs(tick(instance, tmp_path, server.url))
    state.collections[0]["collection_focus"]["embedding_type"] = {"name": "embed_clip_vit_b_32"}
    assert jobs(tick(instance, tmp_path, server.url))[0] == ("collections_job", None)


def test_crawlr_error_plans_nothing(
    tmp_path: Path, server: CrawlrServer, state: CrawlrState
) -> None:
    instance = dg.DagsterInstance.ephemeral()
    state.failures["/collections.json"] = [500]
    result = tick(instance, tmp_path, server.url)
    assert isinstance(result, dg.SkipReason) and "crawlr not read" in (result.skip_message or "")
    assert instance.get_dynamic_partitions("ingestion_batches") == []


def test_a_lost_feed_cursor_never_ingests_an_image_twice(
    tmp_path: Path, server: CrawlrServer
) -> None:
    instance = dg.DagsterInstance.ephemeral()
    materialize_collections(instance, tmp_path, server.url)
    tick(instance, tmp_path, server.url)
    StorageResource(home=str(tmp_path)).metadata().set_cursor(FEED_CURSOR, "")  # reset
    tick(instance, tmp_path, server.url)
    assert len(instance.get_dynamic_partitions("ingestion_batches")) == 1


def test_crash_before_partition_registration_is_recovered_next_tick(
    tmp_path: Path, server: CrawlrServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    instance = dg.DagsterInstance.ephemeral()
    materialize_collections(instance, tmp_path, server.url)
    real_add = instance.add_dynamic_partitions

    def crash(*args: object, **kwargs: object) -> None:
        raise RuntimeError("daemon killed")

    monkeypatch.setattr(instance, "add_dynamic_partitions", crash)
    with pytest.raises(RuntimeError, match="daemon killed"):
        tick(instance, tmp_path, server.url)
    monkeypatch.setattr(instance, "add_dynamic_partitions", real_add)
    result = jobs(tick(instance, tmp_path, server.url))
    (key,) = instance.get_dynamic_partitions("ingestion_batches")
    assert result == [("ingest_job", key)]
    assert batch_images(tmp_path, key) == [1, 2, 3, 4, 5]


def test_an_id_repeated_within_and_across_pages_enters_one_batch_once(
    tmp_path: Path, server: CrawlrServer, state: CrawlrState
) -> None:
    state.images.insert(1, dict(state.images[0]))  # id 1 twice on page one
    state.images.append(dict(state.images[2]))  # id 2 again on the last page
    crawlr = CrawlrResource(home=str(tmp_path), source=server.url)
    storage = StorageResource(home=str(tmp_path))
    batch, _ = crawlr.next_batch(FeedCursor(), storage.metadata())
    assert batch is not None and [im.id for im in batch.images] == [1, 2, 3, 4, 5]
    register_batch(batch, storage.manifests(), storage.metadata())
    assert storage.metadata().image_count() == 5


def test_a_concurrent_planner_cannot_put_an_image_in_two_batches(
    tmp_path: Path, server: CrawlrServer, state: CrawlrState
) -> None:
    crawlr = CrawlrResource(home=str(tmp_path), source=server.url)
    storage = StorageResource(home=str(tmp_path))
    db = storage.metadata()
    first, _ = crawlr.next_batch(FeedCursor(), db)  # e.g. `ml-platform run`
    state.add_image(6)
    second, _ = crawlr.next_batch(FeedCursor(), db)  # the sensor, same moment
    assert first is not None and second is not None
    register_batch(first, storage.manifests(), db)
    with pytest.raises(BatchConflictError, match="already in another batch"):
        register_batch(second, storage.manifests(), db)
    assert db.batch_keys() == [first.key]
    replanned, _ = crawlr.next_batch(FeedCursor(), db)
    assert replanned is not None and [im.id for im in replanned.images] == [6]
