"""champion_health, its check, its retrain request and the alerts, on a temporary instance with
a real MLflow sqlite registry and a real webhook receiver on 127.0.0.1: train, promote, new
labels disagree, the check fails (alert), the sensor asks the planner for a retrain, the gate
promotes a new champion (alert), all signed."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import numpy as np
import pytest

from ml_platform.defs.assets.champion_health import CHECK, champion_health, failing_health
from ml_platform.defs.assets.classifiers import collection_classifier
from ml_platform.defs.resources import StorageResource
from ml_platform.defs.resources.mlflow import MlflowResource
from ml_platform.defs.resources.vision_models import ModelsResource
from ml_platform.defs.sensors import alert_on_run_failure, health_retrain_sensor
from ml_platform.domain import Collection, DerivativeType, Focus
from ml_platform.model_registry.collection.lookup import get_champion
from tests.alert_receiver import Receiver
from tests.defs.assets.conftest import materialize, only_check
from tests.synthetic_home import SyntheticImage, add_batch, set_collections

CLIP = Focus(DerivativeType.WHOLE_IMAGE, "embed_clip_vit_b_32")  # tiny checkpoint: 16-d
DIRECTION = np.ones(16) / 4.0


def vector(rng: np.random.Generator, positive: bool) -> np.ndarray:
    return rng.standard_normal(16) + (2.5 if positive else -2.5) * DIRECTION


@pytest.fixture(scope="module")
def home(
    tmp_path_factory: pytest.TempPathFactory, tiny_model_dirs: dict[str, Path], receiver: Receiver
) -> dict[str, object]:
    """Collections 7 and 9 trained on b1 (same members); b2's labels then agree with 7's
    champion and contradict 9's."""
    root = tmp_path_factory.mktemp("health_assets")
    overrides = {"clip_model": str(tiny_model_dirs["clip"]),
                 "dino_model": str(tiny_model_dirs["dino"])}  # fmt: skip
    alerts = {"alert_webhook_url": receiver.url, "alert_webhook_secret": receiver.secret,
              "health_min_fresh_labels": "20"}  # fmt: skip
    storage = StorageResource(home=str(root), overrides={**overrides, **alerts})
    rng = np.random.default_rng(1)
    add_batch(storage, "b1", [SyntheticImage(i, vector(rng, i % 3 == 0),
                                             members=(7, 9) if i % 3 == 0 else ())
                              for i in range(1, 37)], [CLIP])  # fmt: skip
    set_collections(storage, [Collection(7, "cats", CLIP), Collection(9, "dogs", CLIP)])
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("collections", ["7", "9"])
    resources = {"storage": storage, "mlflow": MlflowResource(home=str(root), overrides=overrides),
                 "models": ModelsResource(home=str(root), overrides=overrides)}  # fmt: skip
    home = {"storage": storage, "instance": instance, "resources": resources}
    for partition in ("7", "9"):
        materialize(home, collection_classifier, partition)
    add_batch(storage, "b2", [SyntheticImage(i, vector(rng, i % 2 == 0),
                                             members=(7,) if i % 2 == 0 else (9,),
                                             rejected=(9,) if i % 2 == 0 else (7,))
                              for i in range(100, 130)], [CLIP])  # fmt: skip
    return home


def test_agreeing_labels_pass_the_check_with_a_trend_plot(home: dict[str, object],
                                                          receiver: Receiver) -> None:  # fmt: skip
    result = materialize(home, champion_health, "7")
    evaluation = only_check(result, CHECK)
    assert evaluation.passed and evaluation.partition == "7"
    (event,) = result.get_asset_materialization_events()
    metadata = event.materialization.metadata
    assert metadata["status"].value == "ok" and metadata["n_fresh"].value == 30
    assert "data:image/png;base64," in str(metadata["trend"].value)
    assert "/#/experiments/" in str(metadata["mlflow_run"].value)
    assert receiver.of_kind("health_check_failed") == []
    assert evaluation.metadata["alert"].value == "none"


def test_contradicting_labels_fail_the_check_as_an_error_and_alert(
    home: dict[str, object], receiver: Receiver
) -> None:
    evaluation = only_check(materialize(home, champion_health, "9"), CHECK)
    assert not evaluation.passed and evaluation.severity is dg.AssetCheckSeverity.ERROR
    assert "below the floor" in (evaluation.description or "")
    assert evaluation.metadata["alert"].value == "sent"
    again = only_check(materialize(home, champion_health, "9"), CHECK)  # the next day's run
    assert not again.passed
    assert str(again.metadata["alert"].value).startswith("repeat suppressed (last sent ")
    (alert,) = receiver.of_kind("health_check_failed")
    assert alert.signature_valid and alert.body["collection_id"] == 9
    assert (alert.body["status"], alert.body["severity"]) == ("firing", "error")
    assert alert.body["versions"] == {"champion": "1"}
    assert alert.body["figures"]["fresh_average_precision"] < 0.5
    assert set(alert.body["links"]) == {"dagster_asset", "dagster_run", "mlflow_version",
                                        "mlflow_run"}  # fmt: skip
    instance: dg.DagsterInstance = home["instance"]  # type: ignore[assignment]
    assert set(failing_health(instance)) == {9}


def test_the_failing_check_retrains_and_the_gate_promotes_with_an_alert(
    home: dict[str, object], receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    instance: dg.DagsterInstance = home["instance"]  # type: ignore[assignment]
    context = dg.build_sensor_context(instance=instance, resources={"storage": home["storage"]})
    result = health_retrain_sensor(context)
    assert isinstance(result, dg.SensorResult)
    (request,) = result.run_requests or []
    assert request.partition_key == "9" and request.job_name == "training_job"
    assert "champion_health error" in request.tags["retrain_reason"]
    monkeypatch.setenv("ML_PLATFORM_ALERT_WEBHOOK_URL", receiver.url)  # promotion reads the env
    monkeypatch.setenv("ML_PLATFORM_ALERT_WEBHOOK_SECRET", receiver.secret)
    materialize(home, collection_classifier, "9")
    client = home["resources"]["mlflow"].client()  # type: ignore[index]
    champion = get_champion(client, 9)
    assert champion is not None and champion.version == "2"
    (change,) = receiver.of_kind("champion_changed")
    assert change.signature_valid and change.body["collection_id"] == 9
    assert change.body["versions"] == {"champion": "2", "previous_champion": "1",
                                       "action": "promote"}  # fmt: skip
    assert "cv_oof_average_precision" in change.body["figures"]
    assert change.body["links"]["dagster_run"].startswith("http://127.0.0.1:3000/runs/")
    after = health_retrain_sensor(context)
    assert isinstance(after, dg.SkipReason)  # the new decision saw these labels


def test_a_failed_run_is_an_alert(home: dict[str, object], receiver: Receiver) -> None:
    @dg.op
    def broken() -> None:
        raise RuntimeError("disk full")

    @dg.job
    def fragile() -> None:
        broken()

    instance: dg.DagsterInstance = home["instance"]  # type: ignore[assignment]
    result = fragile.execute_in_process(instance=instance, raise_on_error=False)
    context = dg.build_run_status_sensor_context(
        sensor_name="alert_on_run_failure", dagster_instance=instance,
        dagster_run=result.dagster_run, dagster_event=result.get_run_failure_event(),
        resources={"storage": home["storage"]},
    ).for_run_failure()  # fmt: skip
    alert_on_run_failure(context)
    (alert,) = receiver.of_kind("run_failed")
    assert alert.signature_valid and "fragile" in alert.body["summary"]
    assert alert.body["links"]["dagster_run"].endswith(result.dagster_run.run_id)


def test_a_partition_whose_collection_is_gone_is_not_evaluated(home: dict[str, object]) -> None:
    instance: dg.DagsterInstance = home["instance"]  # type: ignore[assignment]
    instance.add_dynamic_partitions("collections", ["11"])
    evaluation = only_check(materialize(home, champion_health, "11"), CHECK)
    assert evaluation.passed and evaluation.metadata["status"].value == "not_evaluated"
    assert "not in crawlr_collections" in (evaluation.description or "")
