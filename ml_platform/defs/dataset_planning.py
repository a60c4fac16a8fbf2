"""Dataset planning read from the Dagster instance: the dataset sensor, the nightly fine-tune
schedule and `ml-platform run` call these, so there is one planner with three callers."""

from __future__ import annotations

import dagster as dg
from dagster._core.definitions.data_version import DATA_VERSION_TAG
from dagster._core.events import DagsterEventType

from ml_platform.defs.partitions import dataset_partitions
from ml_platform.defs.resources import StorageResource
from ml_platform.services.dataset_planning import (
    DATASET_VERSION_TAG,
    MEMBERSHIP_TAG,
    DatasetRun,
    membership_token,
    plan_finetunes,
    plan_versions,
)
from ml_platform.services.datasets import DatasetSpec, datasets_file, read_dataset_specs
from ml_platform.store.accepted_labels import AcceptedLabels

DATASETS = dg.AssetKey("datasets")
FINETUNED = dg.AssetKey("finetuned_classifier")


def declared_datasets(storage: StorageResource) -> dict[str, DatasetSpec]:
    """The datasets file's datasets; none when the default file is absent, an error when the
    file `ML_PLATFORM_DATASETS_FILE` names is missing or malformed."""
    settings = storage.settings()
    path = datasets_file(settings)
    if settings.datasets_file is None and not path.is_file():
        return {}
    return read_dataset_specs(path)  # ConfigFileError names the file, line and column


def accepted_labels(storage: StorageResource) -> AcceptedLabels:
    """Accepted labels live in the platform's metadata database (table `accepted_labels`)."""
    return AcceptedLabels(storage.metadata())


def new_partitions(instance: dg.DagsterInstance, names: list[str]) -> list[str]:
    name = dataset_partitions.name
    assert name is not None
    existing = set(instance.get_dynamic_partitions(name))
    return [n for n in names if n not in existing]


def dataset_token(instance: dg.DagsterInstance, storage: StorageResource, spec: DatasetSpec) -> str:
    """What the dataset's next version is made of, as a token (see services/dataset_planning)."""
    db = storage.metadata()
    cids = [cid for _, cid in spec.classes]
    accepted = accepted_labels(storage).labels(spec.name)
    batches = set(db.batches_of_collections(cids))
    batches.update(b for b in map(db.batch_of, accepted) if b is not None)
    marks = instance.event_log_storage.get_latest_storage_id_by_partition(
        dg.AssetKey("image_catalog"), DagsterEventType.ASSET_MATERIALIZATION, batches
    )
    return membership_token(spec, db.label_fingerprints(cids), accepted, marks)


def _latest_tag(
    instance: dg.DagsterInstance, asset: dg.AssetKey, tag: str, names: list[str]
) -> dict[str, str]:
    """`tag` of the newest materialization of each partition in `names` (one small query per
    dataset: Dagster's by-partition tag query serves only its own tags)."""
    out = {}
    for name in names:
        records = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=asset, asset_partitions=[name]), limit=1
        ).records
        event = records[0].asset_materialization if records else None
        tags = (event.tags if event is not None else None) or {}
        if tag in tags:
            out[name] = tags[tag]
    return out


def version_runs(
    instance: dg.DagsterInstance, storage: StorageResource, specs: dict[str, DatasetSpec]
) -> list[DatasetRun]:
    """Datasets whose membership changed since their last version (or that have none)."""
    tokens = {name: dataset_token(instance, storage, spec) for name, spec in specs.items()}
    return plan_versions(tokens, _latest_tag(instance, DATASETS, MEMBERSHIP_TAG, sorted(specs)))


def finetune_runs(instance: dg.DagsterInstance, names: list[str]) -> list[DatasetRun]:
    """Declared datasets whose newest version no fine-tune has been trained on."""
    versions = _latest_tag(instance, DATASETS, DATA_VERSION_TAG, names)
    return plan_finetunes(versions, _latest_tag(instance, FINETUNED, DATASET_VERSION_TAG, names))
