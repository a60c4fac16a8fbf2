"""The promotion gate: challenger versus champion on the same labelled images, then aliases.

The champion is scored on the current training set with its own threshold; the challenger by
its out-of-fold predictions on the same images. A champion trained for another focus cannot be
scored on these embeddings (a model is never used with another focus's vectors): the
challenger is then compared with no champion.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import mlflow
from mlflow import MlflowClient

from ml_platform.learning.evaluation import Evaluation, evaluate_on
from ml_platform.learning.training import TrainingResult
from ml_platform.model_registry.aliases import promote
from ml_platform.model_registry.decision import PromotionDecision, decide_promotion, sanity_check
from ml_platform.model_registry.lookup import ModelVersionInfo, get_champion
from ml_platform.model_registry.naming import VersionTag
from ml_platform.model_registry.pyfunc_model import CollectionClassifierModel
from ml_platform.model_registry.registry import fluent_tracking_uri
from ml_platform.training_data import TrainingSet

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class GateSettings:
    tolerance: float
    min_positives: int
    min_negatives: int


@dataclass(frozen=True)
class GateOutcome:
    decision: PromotionDecision
    champion_before: str | None
    champion_evaluation: Evaluation | None


def same_focus(champion: ModelVersionInfo, training: TrainingSet) -> bool:
    tags = champion.tags
    return (
        tags.get(VersionTag.DERIVATIVE_TYPE.value) == training.focus.derivative_type.value
        and tags.get(VersionTag.EMBEDDING_TYPE.value) == training.focus.embedding_type
    )


def evaluate_champion(
    client: MlflowClient, champion: ModelVersionInfo, training: TrainingSet
) -> Evaluation:
    with fluent_tracking_uri(client.tracking_uri):
        loaded = mlflow.pyfunc.load_model(champion.model_uri)
    model = loaded.unwrap_python_model()
    if not isinstance(model, CollectionClassifierModel):
        raise TypeError(f"{champion.model_uri} is not a CollectionClassifierModel")
    if model.dimensionality != training.X.shape[1]:
        raise ValueError(f"{champion.model_uri} expects width {model.dimensionality}")
    return evaluate_on(model.estimator, training.X, training.y, model.threshold)


def run_gate(
    client: MlflowClient,
    version: str,
    result: TrainingResult,
    training: TrainingSet,
    embedder_dim: int,
    settings: GateSettings,
) -> GateOutcome:
    """Decide, and move `champion` to `version` when the challenger passes."""
    sanity = sanity_check(
        result.estimator, result.dimensionality, embedder_dim, result.n_pos, result.n_neg,
        settings.min_positives, settings.min_negatives,
    )  # fmt: skip
    champion = get_champion(client, training.collection_id)
    comparable = champion is not None and same_focus(champion, training)
    if champion is not None and not comparable:
        log.warning("champion %s has another focus; not comparable", champion.model_uri)
    evaluation = evaluate_champion(client, champion, training) if comparable and champion else None
    decision = decide_promotion(evaluation, result.out_of_fold, settings.tolerance, sanity)
    if decision.promote:
        promote(client, training.collection_id, version, decision.reason)
    return GateOutcome(decision, champion.version if champion else None, evaluation)
