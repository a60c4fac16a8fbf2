"""Fine-tune a dataset version, log it to MLflow, register `dataset-<name>` and run the gate.

What the `finetuned_classifier` asset does, as plain functions: load the version's images
from the image store, train (`learning.finetune`), score the test split, register, compare
with the champion on the same test images, promote when the gate passes.
"""

from __future__ import annotations

import json
import logging
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from mlflow import MlflowClient

from ml_platform.domain import IngestedImage
from ml_platform.learning.finetune import (
    BuiltModel,
    FinetuneConfig,
    FinetuneResult,
    LabelledImages,
    build_model,
    finetune,
    predict_proba,
)
from ml_platform.learning.finetune.onnx_export import export_variants
from ml_platform.learning.finetune.preprocessing import spec_to_json
from ml_platform.learning.finetune.train import EpochCallback, EpochMetrics
from ml_platform.model_registry.aliases import (
    PromotionDecision,
    gate_decision,
    mark_gated,
    promote_model,
)
from ml_platform.model_registry.collection.naming import config_digest
from ml_platform.model_registry.dataset.gate import accuracy, accuracy_decision, sanity_problems
from ml_platform.model_registry.dataset.lookup import (
    dataset_champion,
    dataset_version_trained_on,
    load_dataset_model,
)
from ml_platform.model_registry.dataset.naming import DatasetTag, dataset_model_name
from ml_platform.model_registry.dataset.pyfunc import FinetunedClassifierModel
from ml_platform.model_registry.dataset.register import DatasetInput, FinetuneRun, finetune_run
from ml_platform.model_registry.versions import (
    Alias,
    ModelSource,
    ModelVersionInfo,
    RegisteredVersion,
    registered_version,
)
from ml_platform.services.dataset_versions import DatasetVersion
from ml_platform.services.datasets import Split
from ml_platform.services.finetune_progress import notify_epoch, notify_started
from ml_platform.services.perception import stored_rgb
from ml_platform.store.image_store import ImageStore

log = logging.getLogger(__name__)
DRAFT_SIDE = 320  # JPEGs decode at a reduced scale; every architecture here takes <= 256 px


@dataclass(frozen=True)
class FinetuneOutcome:
    """One training decision. `result` is None when no training ran: the version with this
    dataset version and configuration existed (registered before a crash, or gated before)."""

    registered: RegisteredVersion
    result: FinetuneResult | None
    test_accuracy: float
    decision: PromotionDecision
    champion_before: str | None
    champion_accuracy: float | None
    base_weights: str


def load_split(
    version: DatasetVersion,
    catalog: Mapping[int, IngestedImage],
    split: Split,
    store: ImageStore,
) -> LabelledImages:
    """The split's images decoded from the image store, with their class indices."""
    items = version.split(split)
    missing = [
        i.image_id for i in items if i.image_id not in catalog or not catalog[i.image_id].path
    ]
    if missing:
        raise FileNotFoundError(
            f"dataset {version.dataset} version {version.version}: images {missing[:10]} are "
            "not in the image catalog; re-materialize `datasets` for this partition"
        )
    images = [stored_rgb(store, catalog[i.image_id], (DRAFT_SIDE, DRAFT_SIDE)) for i in items]
    labels = np.asarray([version.class_index(i.label) for i in items], np.int64)
    return LabelledImages(images, labels)


def dataset_input(version: DatasetVersion) -> DatasetInput:
    frame = pd.DataFrame(
        [(i.image_id, i.label, i.split.value, i.source.value) for i in version.items],
        columns=["image_id", "label", "split", "source"],
    )
    return DatasetInput(version.dataset, version.version, frame)


def version_tags(
    version: DatasetVersion, built: BuiltModel, config: FinetuneConfig, splits: dict[Split, int]
) -> dict[str, str]:
    w = built.weights
    tags: dict[DatasetTag, str] = {
        DatasetTag.DATASET: version.dataset, DatasetTag.DATASET_VERSION: version.version,
        DatasetTag.DATASET_DIGEST: version.digest,
        DatasetTag.CLASS_NAMES: json.dumps(list(version.classes)),
        DatasetTag.NUM_CLASSES: str(len(version.classes)),
        DatasetTag.MODEL_NAME: config.model_name.value,
        DatasetTag.ARCHITECTURE: built.architecture.to_json(),
        DatasetTag.PREPROCESSING: spec_to_json(built.preprocess),
        DatasetTag.BASE_WEIGHTS: w.identity, DatasetTag.BASE_WEIGHTS_SOURCE: w.source,
        DatasetTag.BASE_WEIGHTS_REVISION: w.revision, DatasetTag.WEIGHTS: w.status.value,
        DatasetTag.AUGMENTATION: config.augmentation.value, DatasetTag.SOURCE: ModelSource.FINETUNE,
        DatasetTag.N_TRAIN: str(splits[Split.TRAIN]), DatasetTag.N_VAL: str(splits[Split.VAL]),
        DatasetTag.N_TEST: str(splits[Split.TEST]),
    }  # fmt: skip
    return {**{key.value: value for key, value in tags.items()},
            **version.label_provenance().tags()}  # fmt: skip


def config_params(config: FinetuneConfig) -> dict[str, str]:
    return {key: str(value) for key, value in vars(config).items()}


def _on_epoch(run: FinetuneRun, dataset: str) -> EpochCallback:
    def report(metrics: EpochMetrics) -> None:
        figures = {
            "train_loss": metrics.train_loss,
            "val_loss": metrics.val_loss,
            "val_accuracy": metrics.val_accuracy,
            "epoch_seconds": metrics.seconds,
        }
        run.log_metrics(figures, step=metrics.epoch)
        log.info("%s epoch %d/%d: %s", dataset, metrics.epoch, metrics.epochs, figures)
        notify_epoch(dataset, metrics)

    return report


def final_tags(result: FinetuneResult, test_accuracy: float) -> dict[str, str]:
    return {
        DatasetTag.TRAIN_LOSS.value: f"{result.train_loss:.6f}",
        DatasetTag.VAL_ACCURACY.value: f"{result.val_accuracy:.6f}",
        DatasetTag.TEST_ACCURACY.value: f"{test_accuracy:.6f}",
        DatasetTag.BEST_EPOCH.value: str(result.best_epoch),
    }


@dataclass(frozen=True)
class _Trained:
    registered: RegisteredVersion
    result: FinetuneResult
    model: FinetunedClassifierModel
    test_accuracy: float


def _train_and_register(
    client: MlflowClient,
    version: DatasetVersion,
    data: dict[Split, LabelledImages],
    built: BuiltModel,
    config: FinetuneConfig,
    tags: dict[str, str],
    artifact_location: str | None,
) -> _Trained:
    params = config_params(config)
    with finetune_run(client, dataset_input(version), params, tags, artifact_location) as run:
        train, val, test = data[Split.TRAIN], data[Split.VAL], data[Split.TEST]
        result = finetune(built, train, val, config, on_epoch=_on_epoch(run, version.dataset))
        test_accuracy = accuracy(
            predict_proba(result.net, test.images, built.preprocess), test.labels
        )
        run.log_metrics(
            {**result.metrics(), "test_accuracy": test_accuracy,
             "seconds_per_epoch": result.seconds_per_epoch}
        )  # fmt: skip
        model = FinetunedClassifierModel(
            built.architecture.to_json(), spec_to_json(built.preprocess), version.classes
        )
        state = result.net.state_dict()
        with tempfile.TemporaryDirectory(prefix="ml-platform-onnx-") as tmp:
            variants = export_variants(result.net, built.preprocess, val, train.images, Path(tmp))
            run.log_metrics(variants.metrics())
            served = {DatasetTag.INFERENCE_VARIANT.value: variants.served.value}
            registered = run.register(model, state, {**tags, **final_tags(result, test_accuracy),
                                      **served}, variants.artifacts(Path(tmp)))  # fmt: skip
    return _Trained(registered, result, model, test_accuracy)


def finetune_version(
    client: MlflowClient,
    version: DatasetVersion,
    catalog: Mapping[int, IngestedImage],
    config: FinetuneConfig,
    *,
    store: ImageStore,
    tolerance: float,
    provenance: Mapping[str, str],
    artifact_location: str | None = None,
) -> FinetuneOutcome:
    """Train, register (alias challenger) and gate one fine-tuning of `version`, exactly once
    per (dataset version, configuration): a model version registered for them by a run that
    died before its gate is gated now instead of being trained again."""
    config.require_classes(len(version.classes))
    digest = config_digest(config_params(config))
    existing = dataset_version_trained_on(client, version.dataset, version.version, digest)
    data = {s: load_split(version, catalog, s, store) for s in Split}
    if existing is not None:
        return _existing_decision(
            client, version, existing, data[Split.TEST], tolerance, artifact_location
        )
    built = build_model(config, len(version.classes))
    counts = {s: len(d) for s, d in data.items()}
    tags = {**version_tags(version, built, config, counts), **provenance,
            DatasetTag.TRAINING_CONFIG_DIGEST.value: digest}  # fmt: skip
    notify_started(version.dataset, config.epochs)
    champion = dataset_champion(client, version.dataset)
    trained = _train_and_register(client, version, data, built, config, tags, artifact_location)
    decision, champion_accuracy = _gate(
        client, version, trained.registered, trained.model, trained.result.net.state_dict(),
        trained.test_accuracy, data[Split.TEST], tolerance, artifact_location,
    )  # fmt: skip
    return FinetuneOutcome(
        trained.registered, trained.result, trained.test_accuracy, decision,
        champion.version if champion else None, champion_accuracy, built.weights.identity,
    )  # fmt: skip


def _gate(
    client: MlflowClient,
    version: DatasetVersion,
    registered: RegisteredVersion,
    model: FinetunedClassifierModel,
    state: dict[str, torch.Tensor],
    test_accuracy: float,
    test: LabelledImages,
    tolerance: float,
    artifact_root: str | None,
) -> tuple[PromotionDecision, float | None]:
    """Decide, promote when it passes, and record the decision on the version (last step)."""
    champion = dataset_champion(client, version.dataset)
    if champion is not None and champion.version == registered.version:
        champion = None  # promoted before a crash: compare as the first time
    champion_accuracy = _champion_accuracy(client, champion, version, test, artifact_root)
    sanity = sanity_problems(state, model.class_names, version.classes, len(test), test_accuracy)
    decision = accuracy_decision(champion_accuracy, test_accuracy, len(test), tolerance, sanity)
    if decision.promote:
        promote_model(client, registered.name, registered.version, decision.reason)
    mark_gated(client, registered.name, registered.version, decision.reason)
    return decision, champion_accuracy


def _existing_decision(
    client: MlflowClient,
    version: DatasetVersion,
    existing: str,
    test: LabelledImages,
    tolerance: float,
    artifact_root: str | None,
) -> FinetuneOutcome:
    """The decision about a version already registered for this dataset version and config:
    the recorded one, or (registered before a crash) the gate run now on the stored model."""
    name = dataset_model_name(version.dataset)
    registered = registered_version(client, name, existing)
    found = client.get_model_version(name, existing)
    base = found.tags.get(DatasetTag.BASE_WEIGHTS.value, "")
    champion = dataset_champion(client, version.dataset)
    before = champion.version if champion else None
    decided = gate_decision(client, name, existing)
    if decided is not None:
        accuracy_tag = float(found.tags.get(DatasetTag.TEST_ACCURACY.value, "nan"))
        why = (f"version {existing} has this dataset version and configuration and was "
               f"gated: {decided}")  # fmt: skip
        decision = PromotionDecision(before == existing, why)
        return FinetuneOutcome(registered, None, accuracy_tag, decision, before, None, base)
    log.warning("%s version %s was registered but never gated; gating it now", name, existing)
    if before != existing:
        client.set_registered_model_alias(name, Alias.CHALLENGER.value, existing)
    model = load_dataset_model(client, name, existing, artifact_root)
    test_accuracy = accuracy(model.predict_images(test.images), test.labels)
    decision, champion_accuracy = _gate(
        client, version, registered, model, model.state_dict(), test_accuracy, test, tolerance,
        artifact_root,
    )  # fmt: skip
    return FinetuneOutcome(
        registered, None, test_accuracy, decision, before, champion_accuracy, base
    )


def _champion_accuracy(
    client: MlflowClient,
    champion: ModelVersionInfo | None,
    version: DatasetVersion,
    test: LabelledImages,
    artifact_root: str | None = None,
) -> float | None:
    """The champion's accuracy on this test split; None when it has other classes."""
    if champion is None:
        return None
    classes = json.loads(champion.tags.get(DatasetTag.CLASS_NAMES.value, "[]"))
    if classes != list(version.classes):
        log.warning(
            "%s champion v%s has classes %s; not comparable", champion.name, champion.version,
            classes,
        )  # fmt: skip
        return None
    model = load_dataset_model(client, champion.name, champion.version, artifact_root)
    return accuracy(model.predict_images(test.images), test.labels)
