"""End to end on a real crawlr test server: train -> promote -> new labels in crawlr disagree
with the champion -> the champion_health check fails -> its sensor asks the retrain planner ->
retrain -> the promotion gate -> a new champion; a real webhook receiver on 127.0.0.1 gets
every champion change and the failing check, each with a valid signature.

The fixtures are those of `test_label_changes_e2e` (the sample snapshot served over HTTP, tiny
CLIP/DINOv2 checkpoints, the real Dagster instance, MLflow registry and metadata database).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest

from ml_platform.defs.assets.champion_health import CHECK, champion_health
from ml_platform.defs.label_planning import apply_label_changes
from ml_platform.defs.resources import CrawlrResource, StorageResource
from ml_platform.defs.resources.mlflow import MlflowResource
from ml_platform.defs.runner import instance_for, run_once
from ml_platform.defs.sensors import health_retrain_sensor
from ml_platform.model_registry.collection.lookup import get_champion
from ml_platform.settings import Settings
from tests.alert_receiver import Receiver, alert_receiver
from tests.crawlr_server import CrawlrServer, CrawlrState
from tests.defs.test_label_changes_e2e import sample_state

CHELSEA = 1  # the sample's whole-image CLIP collection: 14 chelsea photos are its members


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    with alert_receiver() as running:
        yield running


@pytest.fixture(scope="module")
def world(
    tmp_path_factory: pytest.TempPathFactory, tiny_model_dirs: dict[str, Path], receiver: Receiver
) -> Iterator[tuple[Settings, CrawlrServer, CrawlrState]]:
    state = sample_state(tmp_path_factory.mktemp("snapshot"))
    with CrawlrServer(state) as server, pytest.MonkeyPatch.context() as env:
        env.setenv("ML_PLATFORM_ALERT_WEBHOOK_URL", receiver.url)  # as a deployment sets them
        env.setenv("ML_PLATFORM_ALERT_WEBHOOK_SECRET", receiver.secret)
        settings = Settings(
            home=tmp_path_factory.mktemp("home"), crawlr=server.url,
            clip_model=str(tiny_model_dirs["clip"]), dino_model=str(tiny_model_dirs["dino"]),
        )  # fmt: skip
        yield settings, server, state


def relabel_against_the_champion(state: CrawlrState) -> int:
    """Moderators turn collection 1 around: its chelsea members are rejected, and photos of
    other sources become its members. Returns how many labels changed."""
    changed = 0
    for image in [im for im in state.images if int(str(im["id"])) < 900]:
        members = [c for c in image["collection_ids"] if c != CHELSEA]
        rejected = [c for c in image.get("rejected_collection_ids", []) if c != CHELSEA]
        if CHELSEA in image["collection_ids"]:
            rejected.append(CHELSEA)
        elif "/astronaut-" in str(image["url"]) or "/camera-" in str(image["url"]):
            members.append(CHELSEA)
        else:
            continue
        state.relabel(int(str(image["id"])), members, sorted(rejected), "2025-06-01T10:00:00Z")
        changed += 1
    return changed


def test_disagreeing_labels_fail_the_health_check_retrain_and_alert_signed(
    world: tuple[Settings, CrawlrServer, CrawlrState], receiver: Receiver
) -> None:
    settings, server, state = world
    assert run_once(settings).failed_runs == []
    home = str(settings.home)
    client = MlflowResource(home=home).client()
    first = get_champion(client, CHELSEA)
    assert first is not None
    promoted = [r.body for r in receiver.of_kind("champion_changed")]
    assert any(b["collection_id"] == CHELSEA and b["versions"]["champion"] == first.version
               for b in promoted)  # fmt: skip

    assert relabel_against_the_champion(state) >= 20
    storage = StorageResource(home=home)
    tick = apply_label_changes(CrawlrResource(home=home, source=server.url), storage)
    assert CHELSEA in tick.collections
    instance = instance_for(settings)
    resources = {"storage": storage, "mlflow": MlflowResource(home=home)}
    result = dg.materialize(
        [champion_health], partition_key=str(CHELSEA), instance=instance, resources=resources
    )
    (evaluation,) = result.get_asset_check_evaluations()
    assert evaluation.check_name == CHECK and not evaluation.passed, evaluation.description
    (failed,) = receiver.of_kind("health_check_failed")
    assert failed.signature_valid and failed.body["versions"]["champion"] == first.version

    context = dg.build_sensor_context(instance=instance, resources={"storage": storage})
    sensed = health_retrain_sensor(context)
    assert isinstance(sensed, dg.SensorResult)
    assert [r.partition_key for r in sensed.run_requests or []] == [str(CHELSEA)]
    after = run_once(settings)  # executes the retrain the planner now holds; the gate decides
    assert after.failed_runs == [] and f"collection_classifier[{CHELSEA}]" in after.materialized
    second = get_champion(client, CHELSEA)
    assert second is not None and int(second.version) > int(first.version)
    (change,) = [r for r in receiver.of_kind("champion_changed")
                 if r.body["versions"]["champion"] == second.version
                 and r.body["collection_id"] == CHELSEA]  # fmt: skip
    assert change.signature_valid and change.body["versions"]["previous_champion"] == first.version
    assert all(r.signature_valid for r in receiver.received)
