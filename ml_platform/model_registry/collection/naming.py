"""Collection classifiers' names and what a version records: the registered-model name
`crawlr-collection-<id>`, tag keys, provenance, and the tags, metrics and params of a
training result.

Serving and the CLI read these tags, so they are StrEnums, never string literals elsewhere.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import Enum, StrEnum
from typing import TYPE_CHECKING

from ml_platform.domain import Focus
from ml_platform.model_registry.versions import (
    GATE_TAG,
    HISTORY_TAG,
    PICKLE_DIGEST_TAG,
    SOURCE_TAG,
)
from ml_platform.vision.embedders.identity import EmbedderIdentity, IdentityField

if TYPE_CHECKING:  # training pulls in scikit-learn; naming is read by alerts and serving
    from ml_platform.learning.training import TrainingConfig, TrainingResult

MODEL_NAME_PREFIX = "crawlr-collection-"
DEFAULT_EXPERIMENT = "crawlr-collection-classifiers"


class VersionTag(StrEnum):
    """Tags on every model version: everything needed to use it correctly."""

    COLLECTION_ID = "collection_id"
    DERIVATIVE_TYPE = "derivative_type"
    EMBEDDING_TYPE = IdentityField.EMBEDDING_TYPE.value  # the embedder: EmbedderIdentity.to_tags
    EMBEDDER_ID = IdentityField.EMBEDDER_ID.value
    EMBEDDER_REVISION = IdentityField.EMBEDDER_REVISION.value
    WEIGHTS = IdentityField.WEIGHTS.value
    DIMENSIONALITY = "dimensionality"
    THRESHOLD = "threshold"
    N_POSITIVES = "n_positives"
    N_NEGATIVES = "n_negatives"
    CV_FOLDS = "cv_folds"
    CV_AVERAGE_PRECISION_MEAN = "cv_average_precision_mean"
    CV_AVERAGE_PRECISION_STD = "cv_average_precision_std"
    CV_OOF_AVERAGE_PRECISION = "cv_oof_average_precision"
    CV_ROC_AUC = "cv_roc_auc"
    CV_F1 = "cv_f1_at_threshold"
    WINNER_CANDIDATE = "winner_candidate"
    DAGSTER_RUN_ID = "dagster_run_id"
    DAGSTER_PARTITION = "dagster_partition"
    TRAINING_DATA_FINGERPRINT = "training_data_fingerprint"
    TRAINING_CONFIG_DIGEST = "training_config_digest"
    SOURCE = SOURCE_TAG  # ModelSource
    LEGACY_FILE = "legacy_file"
    LEGACY_SHA256 = "legacy_sha256"
    PYTHON_MODEL_SHA256 = PICKLE_DIGEST_TAG  # the pickle a fast load reads (`loading.load_head`)
    GATE_DECISION = GATE_TAG  # set last, after the aliases moved: the gate is complete


class ModelTag(StrEnum):
    """Tags on the registered model itself."""

    COLLECTION_ID = "collection_id"
    PROMOTION_HISTORY = HISTORY_TAG


UNKNOWN = "unknown"  # tag value where a legacy model cannot know a figure


def model_name(collection_id: int) -> str:
    """The registered-model name of a collection's classifier: `crawlr-collection-<id>`."""
    if collection_id < 0:
        raise ValueError(f"collection id must be non-negative, got {collection_id}")
    return f"{MODEL_NAME_PREFIX}{collection_id}"


def collection_id_of(name: str) -> int | None:
    """The collection id in a registered-model name, or None for a name that is not ours."""
    suffix = name.removeprefix(MODEL_NAME_PREFIX)
    return int(suffix) if suffix != name and suffix.isdigit() else None


@dataclass(frozen=True)
class ClassifierProvenance:
    """Who and what produced a classifier; recorded as model-version tags."""

    collection_id: int
    focus: Focus
    embedder: EmbedderIdentity
    training_data_fingerprint: str
    dagster_run_id: str | None = None
    dagster_partition: str | None = None
    training_config_digest: str = ""

    def __post_init__(self) -> None:
        if self.embedder.embedding_type != self.focus.embedding_type:
            raise ValueError(
                f"collection {self.collection_id}: vectors of {self.embedder.embedding_type!r} "
                f"cannot train a classifier of focus {self.focus.key!r}"
            )

    def tags(self) -> dict[str, str]:
        return {
            **self.embedder.to_tags(),  # embedding_type, embedder_id, embedder_revision, weights
            VersionTag.COLLECTION_ID: str(self.collection_id),
            VersionTag.DERIVATIVE_TYPE: self.focus.derivative_type.value,
            VersionTag.TRAINING_DATA_FINGERPRINT: self.training_data_fingerprint,
            VersionTag.TRAINING_CONFIG_DIGEST: self.training_config_digest,
            VersionTag.DAGSTER_RUN_ID: self.dagster_run_id or "",
            VersionTag.DAGSTER_PARTITION: self.dagster_partition or "",
        }


def training_data_fingerprint(
    labelled: Iterable[tuple[int, bool]], focus: Focus, rejected: Iterable[int] = ()
) -> str:
    """sha256 over the sorted (image id, label) pairs, which negatives are explicit rejections
    (they are trained differently from sampled ones) and the focus key.

    Two trainings with the same fingerprint saw exactly the same labelled images.
    """
    pairs = sorted({(int(image_id), bool(label)) for image_id, label in labelled})
    body: dict[str, object] = {"focus": focus.key, "labelled": pairs}
    refused = sorted({int(i) for i in rejected})
    if refused:
        body["rejected"] = refused
    payload = json.dumps(body, separators=(",", ":"))
    return hashlib.sha256(payload.encode()).hexdigest()


def config_digest(params: Mapping[str, str]) -> str:
    """A short digest of a training configuration's parameters (a launchpad change makes a
    new one, so the same data trained another way is a new model version)."""
    payload = json.dumps(dict(sorted(params.items())), separators=(",", ":"))
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def training_tags(result: TrainingResult) -> dict[str, str]:
    """Version tags describing a training result (threshold, support, CV figures)."""
    best = result.winner_metrics
    return {
        VersionTag.DIMENSIONALITY: str(result.dimensionality),
        VersionTag.THRESHOLD: repr(result.threshold),
        VersionTag.N_POSITIVES: str(result.n_pos),
        VersionTag.N_NEGATIVES: str(result.n_neg),
        VersionTag.CV_FOLDS: str(result.folds),
        VersionTag.WINNER_CANDIDATE: result.winner.value,
        VersionTag.CV_AVERAGE_PRECISION_MEAN: f"{best.average_precision_mean:.6f}",
        VersionTag.CV_AVERAGE_PRECISION_STD: f"{best.average_precision_std:.6f}",
        VersionTag.CV_OOF_AVERAGE_PRECISION: f"{best.out_of_fold.average_precision:.6f}",
        VersionTag.CV_ROC_AUC: f"{best.roc_auc:.6f}",
        VersionTag.CV_F1: f"{best.f1_at_threshold:.6f}",
    }


def training_metrics(result: TrainingResult) -> dict[str, float]:
    """The winner's CV figures unprefixed, and every candidate's as `<candidate>/<figure>`."""
    metrics = dict(result.winner_metrics.as_metrics())
    for candidate in result.candidates:
        for key, value in candidate.as_metrics().items():
            metrics[f"{candidate.name.value}/{key}"] = value
    return metrics


def config_params(config: TrainingConfig) -> dict[str, str]:
    """Every knob of the training configuration as a plain string (MLflow params)."""

    def plain(value: object) -> str:
        if isinstance(value, tuple):
            return ",".join(plain(v) for v in value)
        return str(value.value if isinstance(value, Enum) else value)

    return {f.name: plain(getattr(config, f.name)) for f in dataclasses.fields(config)}


def training_params(result: TrainingResult) -> dict[str, str]:
    config = result.config
    return {
        **config_params(config),
        "winner_candidate": result.winner.value,
        "cv_folds_requested": str(config.cv_folds),
        "cv_folds_used": str(result.folds),
        "threshold_rule": "max F1 on out-of-fold probabilities",
    }


def version_description(tags: Mapping[str, str]) -> str:
    """The first line MLflow shows on a version's page: the weights its embeddings came from
    (a tag MLflow lists far down) and, for random weights, what that means."""
    weights = tags.get(VersionTag.WEIGHTS, "unknown")
    if weights == "random":
        return (
            "weights=random: trained on embeddings from randomly initialised weights; "
            "shows the plumbing, not quality."
        )
    return f"weights={weights}: trained on {tags.get(VersionTag.EMBEDDER_ID, 'its')} embeddings."
