"""The label sensor with build_sensor_context against a real crawlr server on 127.0.0.1, a
real Dagster instance and a real sqlite metadata database."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest

from ml_platform.defs.label_planning import LABELS_CLAIM
from ml_platform.defs.resources import StorageResource
from ml_platform.defs.sensors import label_sensor
from ml_platform.services.label_changes import LABELS_CURSOR
from tests.crawlr.test_contract import FLAT, NESTED
from tests.crawlr_server import CrawlrServer, CrawlrState
from tests.defs.test_sensors import materialize_collections, resources
from tests.services.test_label_changes import record


@pytest.fixture
def state() -> CrawlrState:
    state = CrawlrState(collections=copy.deepcopy([NESTED, FLAT]))
    for image_id in range(1, 8):
        state.add_image(image_id, collection_ids=[8] if image_id <= 6 else [7])
    return state


@pytest.fixture
def server(state: CrawlrState, monkeypatch: pytest.MonkeyPatch) -> Iterator[CrawlrServer]:
    monkeypatch.setenv("ML_PLATFORM_CRAWLR_RETRIES", "0")
    with CrawlrServer(state) as server:
        yield server


@pytest.fixture
def instance(tmp_path: Path, server: CrawlrServer, state: CrawlrState) -> dg.DagsterInstance:
    """Collections materialized and the seven images ingested with their labels."""
    instance = dg.DagsterInstance.ephemeral()
    materialize_collections(instance, tmp_path, server.url)
    db = StorageResource(home=str(tmp_path)).metadata()
    db.register_batch("b1", [record(im) for im in state.images])
    return instance


def tick(instance: dg.DagsterInstance, home: Path, url: str) -> dg.SensorResult | dg.SkipReason:
    context = dg.build_sensor_context(instance=instance, resources=resources(home, url))
    result = label_sensor(context)
    assert isinstance(result, dg.SensorResult | dg.SkipReason)
    return result


def test_a_relabel_requests_training_of_exactly_the_changed_collection(
    tmp_path: Path, server: CrawlrServer, state: CrawlrState, instance: dg.DagsterInstance
) -> None:
    state.relabel(1, [], [8])
    result = tick(instance, tmp_path, server.url)
    assert isinstance(result, dg.SensorResult)
    (request,) = result.run_requests or []
    assert request.job_name == "training_job" and request.partition_key == "8"
    assert "labels changed in crawlr" in request.tags["retrain_reason"]
    again = tick(instance, tmp_path, server.url)
    assert isinstance(again, dg.SkipReason) and "0 label changes" in (again.skip_message or "")


def test_a_change_in_a_collection_too_small_to_train_requests_nothing(
    tmp_path: Path, server: CrawlrServer, state: CrawlrState, instance: dg.DagsterInstance
) -> None:
    state.relabel(7, [], [7])  # collection 7 has one member: the planner would skip it
    result = tick(instance, tmp_path, server.url)
    assert isinstance(result, dg.SkipReason) and "no collection to retrain" in str(
        result.skip_message
    )
    db = StorageResource(home=str(tmp_path)).metadata()
    assert db.current_labels([7]) == {7: ([], [7])}  # applied all the same


def test_a_crawlr_failure_skips_the_tick_and_keeps_the_cursor(
    tmp_path: Path, server: CrawlrServer, state: CrawlrState, instance: dg.DagsterInstance
) -> None:
    state.relabel(1, [], [8])
    state.failures["/labels.json"] = [503]
    result = tick(instance, tmp_path, server.url)
    assert isinstance(result, dg.SkipReason) and "labels not read" in str(result.skip_message)
    assert StorageResource(home=str(tmp_path)).metadata().get_cursor(LABELS_CURSOR) is None
    assert isinstance(tick(instance, tmp_path, server.url), dg.SensorResult)  # next tick


def test_a_tick_while_another_process_applies_labels_reads_nothing(
    tmp_path: Path, server: CrawlrServer, state: CrawlrState, instance: dg.DagsterInstance
) -> None:
    state.relabel(1, [], [8])
    db = StorageResource(home=str(tmp_path)).metadata()
    assert db.claim(LABELS_CLAIM, lease_s=60, owner="other-host:1")  # e.g. `ml-platform run`
    result = tick(instance, tmp_path, server.url)
    assert isinstance(result, dg.SkipReason) and "another process" in str(result.skip_message)
    assert state.hits["/labels.json"] == 0 and db.current_labels([1]) == {1: ([8], [])}
    db.release(LABELS_CLAIM, owner="other-host:1")
    assert isinstance(tick(instance, tmp_path, server.url), dg.SensorResult)
