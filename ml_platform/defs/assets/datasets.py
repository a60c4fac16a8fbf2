"""Labelled datasets: `datasets` (a version per dataset), `label_suggestions`, and
`finetuned_classifier` (a fine-tuned `dataset-<name>` model, gated), partitioned by dataset."""

import dagster as dg

from ml_platform.defs.assets.dataset_launchpad import FinetuneAssetConfig, LabelSuggestionConfig
from ml_platform.defs.assets.dataset_results import finetune_result, version_metadata
from ml_platform.defs.dataset_planning import accepted_labels, dataset_token, new_partitions
from ml_platform.defs.partitions import dataset_partitions
from ml_platform.defs.resources import StorageResource
from ml_platform.defs.resources.mlflow import MlflowResource
from ml_platform.defs.resources.vision_models import ModelsResource
from ml_platform.model_registry.dataset.naming import DatasetTag
from ml_platform.model_registry.dataset.register import log_dataset_version
from ml_platform.services.dataset_planning import DATASET_VERSION_TAG, MEMBERSHIP_TAG
from ml_platform.services.dataset_versions import (
    DatasetVersion,
    make_version,
    read_version,
    write_version,
)
from ml_platform.services.datasets import (
    SplitFractions,
    datasets_file,
    read_dataset_specs,
    require_spec,
    unlabelled_images,
)
from ml_platform.services.finetuning import dataset_input, finetune_version
from ml_platform.services.label_provenance import labels_notice
from ml_platform.services.label_suggestions import suggest, write_suggestions, zero_shot_model
from ml_platform.services.perception import stored_rgb
from ml_platform.services.training_data import load_images

GATE = "promotion_gate"
SPLIT_CHECK = "every_class_has_validation_images"
SPLIT_CHECK_SPEC = dg.AssetCheckSpec(SPLIT_CHECK, asset="datasets", blocking=True)
CATALOG = dg.AssetDep("image_catalog", partition_mapping=dg.AllPartitionMapping())


def register_dataset_partitions(instance: dg.DagsterInstance, names: list[str]) -> None:
    """One `datasets` partition per declared dataset (the CLI calls this before a run)."""
    name = dataset_partitions.name
    assert name is not None
    new = new_partitions(instance, names)
    if new:
        instance.add_dynamic_partitions(name, new)


@dg.asset(group_name="datasets", partitions_def=dataset_partitions, deps=[CATALOG],
          kinds={"python", "json", "mlflow"},
          check_specs=[SPLIT_CHECK_SPEC])  # fmt: skip
def datasets(
    context: dg.AssetExecutionContext, storage: StorageResource, mlflow: MlflowResource
) -> dg.MaterializeResult:  # type: ignore[type-arg]
    """The dataset's current version: its classes' collection members plus accepted labels,
    split train/val/test by pet, with per-class counts and a digest; a new version is logged
    to MLflow as a dataset input (experiment `datasets`)."""
    name = context.partition_key
    spec = require_spec(read_dataset_specs(datasets_file(storage.settings())), name)
    token = dataset_token(context.instance, storage, spec)  # first: a later change re-plans
    accepted, layout = accepted_labels(storage), storage.layout()
    version = make_version(spec, load_images(layout), accepted.labels(name), SplitFractions(),
                           accepted.suggested_with(name))  # fmt: skip
    new = write_version(layout, version)
    metadata = version_metadata(version, new)
    if new:
        totals = {f"images_{k}": float(v) for k, v in version.split_totals().items()}
        tags = {DatasetTag.DATASET.value: name, "dagster_run_id": context.run_id,
                **version.label_provenance().tags()}  # fmt: skip
        _, run_id = log_dataset_version(mlflow.client(), dataset_input(version), totals, tags,
                                        mlflow.artifact_location())  # fmt: skip
        metadata["mlflow_run_id"] = run_id
    context.log.info("dataset %s version %s (%s)", name, version.version,
                     "new" if new else "unchanged")  # fmt: skip
    return dg.MaterializeResult(
        metadata=metadata,
        data_version=dg.DataVersion(version.version),
        tags={MEMBERSHIP_TAG: token},
        check_results=[split_check(version)],
    )


def split_check(version: DatasetVersion) -> dg.AssetCheckResult:
    """Blocking: fine-tuning needs a training and a validation image of every class."""
    short, groups = version.short_classes(), version.groups()
    described = {c: {**split, "groups": groups[c]} for c, split in short.items()}
    text = "; ".join(f"{c}: {s['train']} train, {s['val']} val from {groups[c]} groups"
                     for c, s in short.items())  # fmt: skip
    return dg.AssetCheckResult(
        check_name=SPLIT_CHECK,
        passed=not short,
        severity=dg.AssetCheckSeverity.ERROR,
        description=(f"classes without a training or validation image: {text}; label more "
                     "images of them") if short else "every class has train and val images",
        metadata={"short_classes": dg.MetadataValue.json(described),
                  "regrouped_by_image": dg.MetadataValue.json(list(version.regrouped))},
    )  # fmt: skip


@dg.asset(group_name="datasets", partitions_def=dataset_partitions, deps=[CATALOG],
          kinds={"pytorch", "json"})  # fmt: skip
def label_suggestions(
    context: dg.AssetExecutionContext,
    config: LabelSuggestionConfig,
    storage: StorageResource,
    models: ModelsResource,
) -> dg.MaterializeResult:  # type: ignore[type-arg]
    """Zero-shot top-k classes (CLIP or SigLIP prompts from the class labels) for the images in
    no class of the dataset; review and accept them with `ml-platform labels`."""
    name = context.partition_key
    spec = require_spec(read_dataset_specs(datasets_file(storage.settings())), name)
    layout = storage.layout()
    todo = unlabelled_images(spec, load_images(layout), accepted_labels(storage).labels(name))
    settings = config.suggestions()
    model = zero_shot_model(models.effective_settings(), settings.model, config.model_id)
    store = layout.images()
    found = suggest(name, spec.labels, todo, model, settings,
                    lambda e: stored_rgb(store, e, (320, 320)))  # fmt: skip
    write_suggestions(layout, found)
    with_label = sum(1 for s in found.suggestions if s.labels)
    return dg.MaterializeResult(
        metadata={
            "unlabelled_images": len(todo),
            "considered": len(found.suggestions),
            "with_suggestion": with_label,
            "model": found.model,
            "weights": found.weights,
            "threshold": found.threshold,
            "top_k": settings.top_k,
        }
    )


@dg.asset(
    group_name="datasets", partitions_def=dataset_partitions, deps=["datasets"],
    check_specs=[dg.AssetCheckSpec(GATE, asset="finetuned_classifier", blocking=True)],
    kinds={"pytorch", "mlflow"},
)  # fmt: skip
def finetuned_classifier(
    context: dg.AssetExecutionContext,
    config: FinetuneAssetConfig,
    storage: StorageResource,
    mlflow: MlflowResource,
) -> dg.MaterializeResult:  # type: ignore[type-arg]
    """Fine-tune an image classifier on the dataset's latest version, register it as
    `dataset-<name>` (alias challenger) and promote it to champion when the blocking
    `promotion_gate` passes (test accuracy not worse than the champion's, same images)."""
    layout = storage.layout()
    version = read_version(layout, context.partition_key)
    catalog = {e.image.id: e for e in load_images(layout)}
    provenance = {DatasetTag.DAGSTER_RUN_ID.value: context.run_id,
                  DatasetTag.DAGSTER_PARTITION.value: context.partition_key}  # fmt: skip
    outcome = finetune_version(
        mlflow.client(), version, catalog, config.finetune(), store=layout.images(),
        tolerance=config.promotion_tolerance, provenance=provenance,
        artifact_location=mlflow.artifact_location(),
    )  # fmt: skip
    context.log.info("dataset %s: %s", context.partition_key, outcome.decision.reason)
    notice = labels_notice(version.label_provenance().tags())
    if notice:
        context.log.warning("dataset %s: training labels %s", context.partition_key, notice)
    return finetune_result(GATE, outcome, mlflow.settings().mlflow_ui_url, mlflow.resolved_uri,
                           tags={DATASET_VERSION_TAG: version.version},
                           labels=version.label_provenance())  # fmt: skip
