"""The dataset sensor and the nightly fine-tune schedule on a real Dagster instance, a real
MLflow store and a home with a catalog: partitions appear, versions follow membership."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import pytest

from ml_platform.defs.assets.datasets import datasets
from ml_platform.defs.dataset_planning import accepted_labels, finetune_runs
from ml_platform.defs.resources import StorageResource
from ml_platform.defs.resources.mlflow import MlflowResource
from ml_platform.defs.runner import instance_for
from ml_platform.defs.schedules import nightly_finetune_schedule
from ml_platform.defs.sensors import dataset_sensor
from ml_platform.domain import ImageRecord
from ml_platform.services.dataset_planning import DATASET_VERSION_TAG
from ml_platform.settings import Settings
from ml_platform.store.accepted_labels import AcceptedLabel
from tests.finetune_home import DATASETS_YAML, RED, coloured_images, write_catalog


@pytest.fixture
def home(tmp_path: Path) -> Path:
    write_catalog(StorageResource(home=str(tmp_path)), "b1", coloured_images(tmp_path))
    return tmp_path


def sense(instance: dg.DagsterInstance, home: Path) -> dg.SensorResult | dg.SkipReason:
    resources = {"storage": StorageResource(home=str(home))}
    result = dataset_sensor(dg.build_sensor_context(instance=instance, resources=resources))
    assert isinstance(result, dg.SensorResult | dg.SkipReason)
    if isinstance(result, dg.SensorResult):
        for request in result.dynamic_partitions_requests or []:
            assert isinstance(request, dg.AddDynamicPartitionsRequest)
            instance.add_dynamic_partitions(request.partitions_def_name, request.partition_keys)
    return result


def requested(result: dg.SensorResult | dg.SkipReason) -> list[str | None]:
    assert isinstance(result, dg.SensorResult), result
    return [r.partition_key for r in result.run_requests or []]


def make_version(instance: dg.DagsterInstance, home: Path) -> None:
    resources = {
        "storage": StorageResource(home=str(home)),
        "mlflow": MlflowResource(home=str(home)),
    }
    assert dg.materialize([datasets], instance=instance, resources=resources,
                          partition_key="colours").success  # fmt: skip


def test_no_datasets_file_is_a_skip_and_a_configured_missing_one_an_error(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    instance = dg.DagsterInstance.ephemeral()
    skipped = sense(instance, home)
    assert isinstance(skipped, dg.SkipReason) and "no datasets declared" in str(
        skipped.skip_message
    )
    monkeypatch.setenv("ML_PLATFORM_DATASETS_FILE", str(home / "absent.yaml"))
    with pytest.raises(FileNotFoundError, match="absent.yaml"):
        sense(instance, home)
    (home / "broken.yaml").write_text("datasets: {pets: [unclosed\n")
    monkeypatch.setenv("ML_PLATFORM_DATASETS_FILE", str(home / "broken.yaml"))
    with pytest.raises(ValueError, match=r"broken.yaml, line 2, column 1"):
        sense(instance, home)


@pytest.fixture
def instance(home: Path) -> dg.DagsterInstance:
    # the home's own instance, as the daemon has it (a schedule context needs a persistent
    # one; `instance_for_test` would reset Dagster's current state storage on exit)
    return instance_for(Settings(home=home))


def test_versions_follow_membership_and_the_schedule_follows_versions(
    home: Path, instance: dg.DagsterInstance
) -> None:
    (home / "datasets.yaml").write_text(DATASETS_YAML)
    assert requested(sense(instance, home)) == ["colours"]
    assert instance.get_dynamic_partitions("datasets") == ["colours"]
    make_version(instance, home)
    assert isinstance(sense(instance, home), dg.SkipReason)  # nothing changed

    schedule_context = dg.build_schedule_context(
        instance=instance, resources={"storage": StorageResource(home=str(home))}
    )
    runs = nightly_finetune_schedule(schedule_context)
    assert isinstance(runs, list) and [r.partition_key for r in runs] == ["colours"]
    version = runs[0].run_key
    assert version is not None and finetune_runs(instance, ["colours"])[0].reason == (
        "never fine-tuned"
    )
    instance.report_runless_asset_event(  # what the fine-tune asset records (see the e2e test)
        dg.AssetMaterialization(
            "finetuned_classifier",
            partition="colours",
            tags={DATASET_VERSION_TAG: version.split(":")[-1]},
        )
    )
    assert isinstance(nightly_finetune_schedule(schedule_context), dg.SkipReason)

    new_red = ImageRecord(40, "/media/40.png", datetime(2025, 2, 1, tzinfo=UTC), 40, (RED,))
    StorageResource(home=str(home)).metadata().register_batch("b2", [new_red])
    assert requested(sense(instance, home)) == ["colours"]  # a new member
    make_version(instance, home)
    assert isinstance(sense(instance, home), dg.SkipReason)

    label = AcceptedLabel("colours", 25, "red", "clip", 0.9)
    accepted_labels(StorageResource(home=str(home))).accept([label])
    first = sense(instance, home)
    assert requested(first) == ["colours"]  # an accepted suggestion
    again = sense(instance, home)
    assert isinstance(again, dg.SensorResult) and again.run_requests is not None
    assert first.run_requests is not None
    assert again.run_requests[0].run_key == first.run_requests[0].run_key  # Dagster dedupes
