"""Champion health against a real MLflow sqlite registry and metadata database: the fresh
evaluation set, the figures, the logged run and its history."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import numpy as np
import pytest
from mlflow import MlflowClient

from ml_platform.defs.assets.classifiers import collection_classifier
from ml_platform.defs.resources import StorageResource
from ml_platform.defs.resources.mlflow import MlflowResource
from ml_platform.defs.resources.vision_models import ModelsResource
from ml_platform.domain import Collection, DerivativeType, Focus, ImageLabels, LabelSource
from ml_platform.learning.health_metrics import HealthLimits, HealthStatus
from ml_platform.model_registry.collection.lookup import get_champion
from ml_platform.services.champion_health import HealthConfig, HealthReport, evaluate_health
from ml_platform.services.health_history import (
    HEALTH_EXPERIMENT,
    evaluation_times,
    health_history,
)
from ml_platform.services.label_shift import arrival_order
from ml_platform.store.curation_tables import out_of_fold_key
from ml_platform.store.fresh_labels import fresh_labels
from ml_platform.store.label_index import apply_labels
from tests.synthetic_home import SyntheticImage, add_batch, set_collections

CLIP = Focus(DerivativeType.WHOLE_IMAGE, "embed_clip_vit_b_32")  # tiny checkpoint: 16-d
KEPT, TURNED = Collection(7, "cats", CLIP), Collection(9, "dogs", CLIP)
CONFIG = HealthConfig(min_fresh_labels=20, limits=HealthLimits(max_ap_drop=0.05, ap_floor=0.5))


def image(
    image_id: int,
    rng: np.random.Generator,
    positive: bool,
    members: tuple[int, ...] = (),
    rejected: tuple[int, ...] = (),
) -> SyntheticImage:
    vector = rng.standard_normal(16) + (2.5 if positive else -2.5) * np.ones(16) / 4.0
    return SyntheticImage(image_id, vector, members=members, rejected=rejected)


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory, tiny_model_dirs: dict[str, Path]) -> (
    dict[str, object]
):  # fmt: skip
    """Both collections trained on b1 (the same members); then b2 arrives, whose labels
    agree with collection 7's champion and contradict collection 9's."""
    root = tmp_path_factory.mktemp("health_home")
    overrides = {"clip_model": str(tiny_model_dirs["clip"]),
                 "dino_model": str(tiny_model_dirs["dino"])}  # fmt: skip
    storage = StorageResource(home=str(root), overrides=overrides)
    rng = np.random.default_rng(1)
    trained = [image(i, rng, i % 3 == 0, members=(7, 9) if i % 3 == 0 else ()) for i in
               range(1, 37)]  # fmt: skip
    add_batch(storage, "b1", trained, [CLIP])
    set_collections(storage, [KEPT, TURNED])
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("collections", ["7", "9"])
    resources = {"storage": storage, "mlflow": MlflowResource(home=str(root), overrides=overrides),
                 "models": ModelsResource(home=str(root), overrides=overrides)}  # fmt: skip
    for partition in ("7", "9"):
        result = dg.materialize([collection_classifier], partition_key=partition,
                                instance=instance, resources=resources)  # fmt: skip
        assert result.success
    return {"storage": storage, "mlflow": resources["mlflow"], "rng": rng}


def client(home: dict[str, object]) -> MlflowClient:
    return home["mlflow"].client()  # type: ignore[attr-defined, no-any-return]


def evaluate(home: dict[str, object], collection: Collection, now: datetime) -> HealthReport:
    storage: StorageResource = home["storage"]  # type: ignore[assignment]
    return evaluate_health(client(home), storage.layout(), collection, CONFIG, now)


def test_a_champion_with_no_fresh_labels_is_not_evaluated(home: dict[str, object]) -> None:
    report = evaluate(home, KEPT, datetime.now(UTC))
    assert report.status is HealthStatus.NOT_EVALUATED
    assert "0 fresh labels" in report.reason and report.run_id is None
    assert client(home).get_experiment_by_name(HEALTH_EXPERIMENT) is None


def test_new_labels_that_agree_keep_it_ok_and_contradicting_ones_are_an_error(
    home: dict[str, object],
) -> None:
    rng: np.random.Generator = home["rng"]  # type: ignore[assignment]
    arrived = [
        image(i, rng, i % 2 == 0, members=(7,) if i % 2 == 0 else (9,),
              rejected=(9,) if i % 2 == 0 else (7,))
        for i in range(100, 130)
    ]  # fmt: skip
    add_batch(home["storage"], "b2", arrived, [CLIP])  # type: ignore[arg-type]
    now = datetime.now(UTC)
    kept, turned = evaluate(home, KEPT, now), evaluate(home, TURNED, now)
    assert kept.status is HealthStatus.OK, kept.reason
    assert kept.figures is not None and kept.n_fresh == 30
    assert kept.figures.average_precision > 0.9
    assert turned.status is HealthStatus.ERROR, turned.reason
    assert turned.figures is not None and turned.figures.ap_high < 0.5
    assert "below the floor" in turned.reason
    assert kept.label_shift is not None and kept.label_shift.p_value >= CONFIG.alpha
    assert turned.label_shift is not None and turned.label_shift.p_value < CONFIG.alpha
    # the newest 20 of the 30 fresh labels; training had no explicit rejections (sampled
    # unlabelled negatives only), the 10 older fresh labels give the rejections a reference
    assert (turned.label_shift.n_members, turned.label_shift.n_rejections) == (10, 10)
    assert "labels shifted" in turned.reason and "labels shifted" not in kept.reason
    assert turned.run_id is not None
    run = client(home).get_run(turned.run_id)
    assert run.data.metrics["label_shift_level"] == CONFIG.alpha
    assert run.data.metrics["label_shift_p_value"] == turned.label_shift.p_value
    assert run.data.tags["model_name"] == "crawlr-collection-9"
    assert run.data.tags["model_version"] == "1" and run.data.tags["health_status"] == "error"
    (point,) = client(home).get_metric_history(run.info.run_id, "fresh_average_precision")
    assert point.step == int(now.timestamp())
    champion = get_champion(client(home), 9)
    assert champion is not None and champion.tags["health_status"] == "error"
    assert champion.tags["health_run_id"] == run.info.run_id


def test_every_evaluation_is_a_point_of_the_history(home: dict[str, object]) -> None:
    later = datetime.now(UTC) + timedelta(hours=24)
    evaluate(home, TURNED, later)
    points = health_history(client(home), 9)
    assert len(points) == 2 and points[0].evaluated_at < points[1].evaluated_at
    assert points[1].evaluated_at == datetime.fromtimestamp(int(later.timestamp() * 1000) / 1000,
                                                            tz=UTC)  # fmt: skip
    assert all(p.version == "1" and p.average_precision < 0.5 for p in points)
    assert health_history(client(home), 7)[0].average_precision > 0.9


def test_a_relabelled_image_is_fresh_and_one_changed_back_is_not(home: dict[str, object]) -> None:
    storage: StorageResource = home["storage"]  # type: ignore[assignment]
    db = storage.metadata()
    champion = get_champion(client(home), 7)
    assert champion is not None
    before = fresh_labels(db, 7, champion.created_at)
    assert set(before) == set(range(100, 130))  # b2 arrived after training; b1 did not
    apply_labels(db, [ImageLabels(3, (9,), (7,))], LabelSource.LABELS_JSON, "a")  # member -> no
    apply_labels(db, [ImageLabels(6, (9,), ())], LabelSource.LABELS_JSON, "b")  # removed...
    apply_labels(db, [ImageLabels(6, (7, 9), ())], LabelSource.LABELS_JSON, "c")  # ...and back
    after = fresh_labels(db, 7, champion.created_at)
    assert set(after) - set(before) == {3} and after[3] is False
    order = arrival_order(storage.layout(), 7, np.asarray([3, 101, 100], np.int64))
    assert order.tolist() == [2, 1, 0]  # b2's by image id (one batch), then the relabel


def test_a_version_without_out_of_fold_predictions_is_judged_by_the_ap_rule_alone(
    home: dict[str, object],
) -> None:
    storage: StorageResource = home["storage"]  # type: ignore[assignment]
    assert storage.layout().store.delete(out_of_fold_key(9, "1"))
    report = evaluate(home, TURNED, datetime.now(UTC) + timedelta(hours=48))
    assert report.label_shift is None and report.status is HealthStatus.ERROR
    assert "label_shift_p_value" not in report.metrics() and "newest" not in report.reason


def test_the_window_is_the_newest_two_rounds_of_labels_between_evaluations(
    home: dict[str, object],
) -> None:
    """Rounds of labels between collection 7's evaluations: b3's 8, then b4's 6, each
    evaluated twice (as a daily run between two labelling sessions does)."""
    rng: np.random.Generator = home["rng"]  # type: ignore[assignment]

    def agreeing(ids: range) -> list[SyntheticImage]:
        return [image(i, rng, i % 2 == 0, members=(7,) if i % 2 == 0 else (),
                      rejected=() if i % 2 == 0 else (7,)) for i in ids]  # fmt: skip

    evaluate(home, KEPT, datetime.now(UTC))  # ends the rounds of the earlier tests
    add_batch(home["storage"], "b3", agreeing(range(200, 208)), [CLIP])  # type: ignore[arg-type]
    evaluate(home, KEPT, datetime.now(UTC))
    evaluate(home, KEPT, datetime.now(UTC))  # no new label since the one before
    add_batch(home["storage"], "b4", agreeing(range(210, 216)), [CLIP])  # type: ignore[arg-type]
    reports = [evaluate(home, KEPT, datetime.now(UTC)) for _ in range(2)]
    # b3 and b4 both times: the evaluation with no new label is not "the one before last"
    # (counting it, the second would take b4's 6 alone)
    sizes = [r.label_shift.n_members + r.label_shift.n_rejections for r in reports
             if r.label_shift is not None]  # fmt: skip
    assert sizes == [14, 14]
    champion = get_champion(client(home), 7)
    assert champion is not None
    times = evaluation_times(client(home), champion)
    assert len(times) == len(health_history(client(home), 7)) and times == sorted(times)
