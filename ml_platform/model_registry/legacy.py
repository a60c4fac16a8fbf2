"""Import the pre-MLflow classifiers listed in a legacy `best_models.json`.

The manifest formats are described in `legacy_manifest`. Every entry is checked before it
is registered: the file lies inside the directory, unpickles, has `predict_proba`, its
input width (n_features_in_ or coef_) equals the declared dimensionality, its parameters
are finite and it scores an example batch. Each entry imports or fails on its own; the
report says which and why. Loading a pickle runs code from it: import only directories you
trust.

Assumptions, recorded as tags: threshold 0.5 (scikit-learn's `predict` cut-off; legacy
files record none), weights=pretrained (legacy models were trained on production embeddings
of the real pretrained embedders), embedder_id from `embedder_ids`, revision/support/
fingerprint `unknown`. A re-import of the same file (same sha256) is reported, not repeated.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

import joblib
import numpy as np
from mlflow import MlflowClient

from ml_platform.domain import BuiltinEmbeddingType
from ml_platform.model_registry.collection.gate import parameter_problems
from ml_platform.model_registry.collection.lookup import get_champion
from ml_platform.model_registry.collection.naming import (
    DEFAULT_EXPERIMENT,
    UNKNOWN,
    VersionTag,
    model_name,
)
from ml_platform.model_registry.collection.pyfunc import input_example
from ml_platform.model_registry.collection.register import (
    ClassifierPayload,
    log_and_register,
    promote,
)
from ml_platform.model_registry.legacy_manifest import (
    LegacyEntry,
    LegacyEntryError,
    model_file_of,
    parse_entry,
    read_manifest,
    resolve_model_file,
)
from ml_platform.model_registry.versions import ModelSource
from ml_platform.vision.embedders.identity import EmbedderIdentity

log = logging.getLogger(__name__)
BUILTIN_EMBEDDING_TYPES = frozenset(t.value for t in BuiltinEmbeddingType)

LEGACY_THRESHOLD = 0.5
DEFAULT_LEGACY_EMBEDDERS: Mapping[str, str] = {
    BuiltinEmbeddingType.CLIP_VIT_B_32.value: "openai/clip-vit-base-patch32",
    BuiltinEmbeddingType.DINO_V2.value: "facebook/dinov2-small",
}


class LegacyStatus(StrEnum):
    IMPORTED = "imported"
    ALREADY_IMPORTED = "already_imported"
    FAILED = "failed"


@dataclass(frozen=True)
class LegacyImportOutcome:
    """What happened to one manifest entry (key = the manifest's collection id)."""

    key: str
    status: LegacyStatus
    model_file: str | None = None
    version: str | None = None
    champion: bool = False
    reason: str = ""


@dataclass(frozen=True)
class _Target:
    client: MlflowClient
    embedder_ids: Mapping[str, str]
    servable: frozenset[str]
    experiment_name: str
    artifact_location: str | None
    dagster_run_id: str | None


def import_legacy(
    directory: Path,
    client: MlflowClient,
    *,
    embedder_ids: Mapping[str, str] = DEFAULT_LEGACY_EMBEDDERS,
    experiment_name: str = DEFAULT_EXPERIMENT,
    artifact_location: str | None = None,
    dagster_run_id: str | None = None,
    servable_embedding_types: Collection[str] = BUILTIN_EMBEDDING_TYPES,
) -> list[LegacyImportOutcome]:
    """Register every model in `directory/best_models.json`; champion where there is none.
    An entry whose embedding type is not in `servable_embedding_types` (the built-in ones
    and the configured custom ones) is refused: no server could classify with it."""
    target = _Target(
        client, embedder_ids, frozenset(servable_embedding_types), experiment_name,
        artifact_location, dagster_run_id,
    )  # fmt: skip
    outcomes = []
    for key, raw in read_manifest(directory).items():
        outcomes.append(_import_or_report(directory, key, raw, target))
    return outcomes


def _import_or_report(
    directory: Path, key: str, raw: object, target: _Target
) -> LegacyImportOutcome:
    """One entry imported, or FAILED with the reason: no entry can stop the others."""
    shown = key if len(key) <= 40 else f"{key[:40]}... ({len(key)} characters)"
    try:
        return _import_entry(directory, parse_entry(key, raw), target)
    except LegacyEntryError as error:
        reason = str(error)
    except Exception as error:  # the registry or a file failed on this entry only
        log.exception("legacy entry %r failed unexpectedly", shown)
        reason = f"{type(error).__name__}: {error}"
    log.warning("legacy entry %r not imported: %s", shown, reason)
    return LegacyImportOutcome(shown, LegacyStatus.FAILED, _file_of(raw), reason=reason)


def _file_of(raw: object) -> str | None:
    name = model_file_of(raw)
    return None if name is None else repr(name)[1:-1][:200]  # NULs and controls made visible


def load_legacy_model(path: Path, entry: LegacyEntry) -> Any:
    """The unpickled estimator, checked to be a sane binary classifier of the right width."""
    try:
        estimator = joblib.load(path)
    except Exception as error:  # any unpickling failure makes this one entry unusable
        raise LegacyEntryError(
            f"cannot load {path.name}: {type(error).__name__}: {error}"
        ) from error
    if not callable(getattr(estimator, "predict_proba", None)):
        kind = type(estimator).__name__
        raise LegacyEntryError(f"{path.name} holds a {kind} without predict_proba")
    problems = parameter_problems(estimator, entry.dimensionality)
    if problems:
        raise LegacyEntryError(f"{path.name} (focus {entry.focus.key}): " + "; ".join(problems))
    try:
        probabilities = np.asarray(estimator.predict_proba(input_example(entry.dimensionality)))
    except Exception as error:  # a model that cannot score the example cannot be served
        raise LegacyEntryError(f"{path.name} fails to predict: {error}") from error
    if probabilities.ndim != 2 or probabilities.shape[1] != 2:
        raise LegacyEntryError(f"{path.name} is not a binary classifier: {probabilities.shape}")
    return estimator


def _import_entry(directory: Path, entry: LegacyEntry, target: _Target) -> LegacyImportOutcome:
    key, file = str(entry.collection_id), entry.model_file
    if entry.focus.embedding_type not in target.servable:
        raise LegacyEntryError(
            f"embedding_type {entry.focus.embedding_type!r} is not one this platform can serve "
            f"(known: {sorted(target.servable)}); declare it in the embedding-types file "
            "(ML_PLATFORM_EMBEDDING_TYPES_FILE) or fix the entry, then import again"
        )
    path = resolve_model_file(directory, file)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    existing = _version_with_digest(target.client, entry.collection_id, digest)
    if existing is not None:
        reason = f"already imported as version {existing}"
        return LegacyImportOutcome(
            key, LegacyStatus.ALREADY_IMPORTED, file, existing, reason=reason
        )
    payload = ClassifierPayload(
        estimator=load_legacy_model(path, entry),
        threshold=LEGACY_THRESHOLD,
        dimensionality=entry.dimensionality,
        collection_id=entry.collection_id,
        tags=_legacy_tags(entry, target, digest),
        metrics={},
        params={"legacy_file": file, "legacy_sha256": digest},
    )
    registered = log_and_register(
        target.client,
        payload,
        experiment_name=target.experiment_name,
        artifact_location=target.artifact_location,
        alias=None,
    )
    champion = get_champion(target.client, entry.collection_id) is None
    if champion:
        promote(target.client, entry.collection_id, registered.version, f"legacy import of {file}")
    return LegacyImportOutcome(key, LegacyStatus.IMPORTED, file, registered.version, champion)


def _legacy_embedder(entry: LegacyEntry, target: _Target) -> EmbedderIdentity:
    """A legacy file records no embedder: its id from `embedder_ids`, revision unknown."""
    embedding_type = entry.focus.embedding_type
    return EmbedderIdentity(
        embedding_type, target.embedder_ids.get(embedding_type, UNKNOWN), UNKNOWN
    )


def _legacy_tags(entry: LegacyEntry, target: _Target, digest: str) -> dict[str, str]:
    return {
        VersionTag.COLLECTION_ID: str(entry.collection_id),
        VersionTag.DERIVATIVE_TYPE: entry.focus.derivative_type.value,
        **_legacy_embedder(entry, target).to_tags(),
        VersionTag.DIMENSIONALITY: str(entry.dimensionality),
        VersionTag.THRESHOLD: repr(LEGACY_THRESHOLD),
        VersionTag.N_POSITIVES: UNKNOWN,
        VersionTag.N_NEGATIVES: UNKNOWN,
        VersionTag.TRAINING_DATA_FINGERPRINT: UNKNOWN,
        VersionTag.DAGSTER_RUN_ID: target.dagster_run_id or "",
        VersionTag.DAGSTER_PARTITION: "",
        VersionTag.SOURCE: ModelSource.LEGACY.value,
        VersionTag.LEGACY_FILE: entry.model_file,
        VersionTag.LEGACY_SHA256: digest,
    }


def _version_with_digest(client: MlflowClient, collection_id: int, digest: str) -> str | None:
    name = model_name(collection_id)
    query = f"name = '{name}' and tags.{VersionTag.LEGACY_SHA256.value} = '{digest}'"
    versions = client.search_model_versions(filter_string=query)
    return str(versions[0].version) if versions else None
