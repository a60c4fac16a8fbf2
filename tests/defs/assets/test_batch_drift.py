"""batch_drift, its check, its retrain request and its alert, on a temporary Dagster instance
with a real MLflow sqlite registry and a real webhook receiver on 127.0.0.1: a pets
collection is trained on b1; a clean batch of pets passes; a batch of faces fails the check
(WARN), alerts signed and makes `health_retrain_sensor` ask for one retrain."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import numpy as np
import pytest

from ml_platform.defs.assets.batch_drift import CHECK, batch_drift, drifted_since_training
from ml_platform.defs.assets.classifiers import collection_classifier
from ml_platform.defs.resources import StorageResource
from ml_platform.defs.resources.mlflow import MlflowResource
from ml_platform.defs.resources.vision_models import ModelsResource
from ml_platform.defs.sensors import health_retrain_sensor
from ml_platform.domain import Collection, DerivativeType, Focus
from ml_platform.store.drift_table import read_drift
from tests.alert_receiver import Receiver
from tests.defs.assets.conftest import materialize, only_check
from tests.synthetic_home import SyntheticImage, add_batch, set_collections

CLIP = Focus(DerivativeType.WHOLE_IMAGE, "embed_clip_vit_b_32")  # tiny checkpoint: 16-d
CATS, FACES = np.eye(16)[0] * 3.0, np.eye(16)[1] * 3.0  # where pets and faces lie


def pets(rng: np.random.Generator, first: int, n: int, members: bool) -> list[SyntheticImage]:
    """Pets: every third one a cat (positive; a member of 7 when `members`)."""
    out = []
    for i in range(first, first + n):
        cat = i % 3 == 0
        vector = rng.standard_normal(16) + (CATS if cat else -CATS)
        out.append(SyntheticImage(i, vector, members=(7,) if cat and members else ()))
    return out


def faces(rng: np.random.Generator, first: int, n: int) -> list[SyntheticImage]:
    return [SyntheticImage(i, rng.standard_normal(16) + FACES) for i in range(first, first + n)]


@pytest.fixture(scope="module")
def home(
    tmp_path_factory: pytest.TempPathFactory, tiny_model_dirs: dict[str, Path], receiver: Receiver
) -> dict[str, object]:
    """Collection 7 (cats) trained on b1's pets; b2 brings more pets, b3 faces."""
    root = tmp_path_factory.mktemp("drift_assets")
    overrides = {"clip_model": str(tiny_model_dirs["clip"]),
                 "dino_model": str(tiny_model_dirs["dino"])}  # fmt: skip
    alerts = {"alert_webhook_url": receiver.url, "alert_webhook_secret": receiver.secret}
    storage = StorageResource(home=str(root), overrides={**overrides, **alerts})
    rng = np.random.default_rng(3)
    add_batch(storage, "b1", pets(rng, 1, 60, members=True), [CLIP])
    set_collections(storage, [Collection(7, "cats", CLIP)])
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("collections", ["7"])
    instance.add_dynamic_partitions("ingestion_batches", ["b1", "b2", "b3"])
    resources = {"storage": storage, "mlflow": MlflowResource(home=str(root), overrides=overrides),
                 "models": ModelsResource(home=str(root), overrides=overrides)}  # fmt: skip
    home = {"storage": storage, "instance": instance, "resources": resources}
    materialize(home, collection_classifier, "7")
    add_batch(storage, "b2", pets(rng, 100, 30, members=False), [CLIP])
    add_batch(storage, "b3", faces(rng, 200, 30), [CLIP])
    return home


def test_a_clean_batch_of_pets_passes_and_is_recorded(home: dict[str, object],
                                                      receiver: Receiver) -> None:  # fmt: skip
    result = materialize(home, batch_drift, "b2")
    evaluation = only_check(result, CHECK)
    assert evaluation.passed and evaluation.partition == "b2"
    assert evaluation.metadata["status"].value == "ok"
    rows = read_drift(home["storage"].layout(), "b2")  # type: ignore[attr-defined]
    assert [(r.collection_id, r.n_batch, r.n_reference) for r in rows] == [(None, 30, 60),
                                                                         (7, 30, 60)]  # fmt: skip
    assert all(not r.drifted and r.p_value >= r.level for r in rows)
    (event,) = result.get_asset_materialization_events()
    assert "data:image/png;base64," in str(event.materialization.metadata["trend"].value)
    assert receiver.of_kind("drift_check_failed") == []
    assert evaluation.metadata["alert"].value == "none"
    assert drifted_since_training(home["instance"]) == {}  # type: ignore[arg-type]


def test_a_batch_of_faces_in_a_pets_focus_warns_and_alerts(home: dict[str, object],
                                                           receiver: Receiver) -> None:  # fmt: skip
    evaluation = only_check(materialize(home, batch_drift, "b3"), CHECK)
    assert not evaluation.passed and evaluation.severity is dg.AssetCheckSeverity.WARN
    assert evaluation.metadata["alert"].value == "sent"
    again = only_check(materialize(home, batch_drift, "b3"), CHECK)  # a re-run of the batch
    assert str(again.metadata["alert"].value).startswith("repeat suppressed (last sent ")
    assert evaluation.partition == "b3" and evaluation.metadata["status"].value == "drifted"
    assert "MMD" in (evaluation.description or "")
    (embedding, share) = read_drift(home["storage"].layout(), "b3")  # type: ignore[attr-defined]
    assert embedding.drifted and embedding.p_value < embedding.level
    assert share.collection_id == 7 and share.n_batch == 30 and 0 <= share.p_value <= 1
    (alert,) = receiver.of_kind("drift_check_failed")
    assert alert.signature_valid and alert.body["collection_id"] == 7
    assert alert.body["versions"]["batch"] == "b3" and alert.body["severity"] == "warn"
    assert alert.body["figures"][f"embeddings {CLIP.key} p_value"] < 0.01
    assert "dagster_asset" in alert.body["links"]
    assert drifted_since_training(home["instance"]) == {7: "b3"}  # type: ignore[arg-type]


def test_the_drifted_batch_asks_for_one_retrain(home: dict[str, object]) -> None:
    instance: dg.DagsterInstance = home["instance"]  # type: ignore[assignment]
    context = dg.build_sensor_context(instance=instance, resources={"storage": home["storage"]})
    result = health_retrain_sensor(context)
    assert isinstance(result, dg.SensorResult)
    (request,) = result.run_requests or []
    assert request.partition_key == "7" and request.job_name == "training_job"
    assert request.run_key == "drift:7:b3"
    assert "batch_drift on b3" in request.tags["retrain_reason"]
    materialize(home, collection_classifier, "7")  # the gate decides; the drift is now seen
    assert isinstance(health_retrain_sensor(context), dg.SkipReason)


def test_a_batch_without_a_champion_on_its_focus_is_not_evaluated(
    home: dict[str, object],
) -> None:
    storage: StorageResource = home["storage"]  # type: ignore[assignment]
    dino = Focus(DerivativeType.WHOLE_IMAGE, "embed_dinov2_small")
    set_collections(storage, [Collection(7, "cats", CLIP), Collection(8, "dogs", dino)])
    try:
        evaluation = only_check(materialize(home, batch_drift, "b2"), CHECK)
    finally:
        set_collections(storage, [Collection(7, "cats", CLIP)])
    assert evaluation.passed
    rows = read_drift(storage.layout(), "b2")
    dogs = [r for r in rows if r.focus == dino.key]
    assert len(dogs) == 1 and "no collection of this focus has a champion" in dogs[0].reason
