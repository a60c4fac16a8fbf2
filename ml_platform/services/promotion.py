"""The promotion gate: challenger versus champion on the same protocol, then aliases.

Both sides are scored out of fold on the current training set with the same grouped,
stratified folds (a pet or a source photo never straddles train and test):
the challenger by its winner's out-of-fold predictions, the champion by clones of its fitted
estimator (same recipe and hyper-parameters) refitted fold by fold. Scoring the champion's
fitted model on images it trained on would flatter it. A champion trained for another focus
cannot be scored on these embeddings (a model is never used with another focus's vectors):
the challenger is then compared with no champion.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from mlflow import MlflowClient
from sklearn.base import BaseEstimator

from ml_platform.learning.evaluation import Evaluation
from ml_platform.learning.training import TrainingResult, cross_validate_estimator
from ml_platform.model_registry.aliases import PromotionDecision, gate_decision, mark_gated
from ml_platform.model_registry.collection.gate import decide_promotion, sanity_check
from ml_platform.model_registry.collection.lookup import (
    get_champion,
    load_classifier,
    version_trained_on,
)
from ml_platform.model_registry.collection.naming import (
    ClassifierProvenance,
    VersionTag,
    model_name,
)
from ml_platform.model_registry.collection.register import promote, register_classifier
from ml_platform.model_registry.versions import (
    Alias,
    ModelVersionInfo,
    RegisteredVersion,
    registered_version,
)
from ml_platform.services.training_data import TrainingSet

log = logging.getLogger(__name__)


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
    client: MlflowClient,
    collection_id: int,
    training: TrainingSet,
    result: TrainingResult,
    artifact_root: str | None = None,
) -> Evaluation:
    model = load_classifier(client, collection_id, artifact_root=artifact_root)
    if not isinstance(model.estimator, BaseEstimator):
        raise TypeError(f"collection {collection_id}: champion is not a scikit-learn estimator")
    return cross_validate_estimator(
        model.estimator,
        training.X,
        training.y,
        folds=result.folds,
        seed=result.config.seed,
        groups=training.groups,
        unlabelled=training.unlabelled,
        treatment=result.config.negatives(),
    )


def run_gate(
    client: MlflowClient,
    version: str,
    result: TrainingResult,
    training: TrainingSet,
    embedder_dim: int,
    tolerance: float,
    artifact_root: str | None = None,
) -> GateOutcome:
    """Decide, and move `champion` to `version` when the challenger passes (its out-of-fold
    AP within `tolerance` of the champion's, and the minimums it was trained with met).
    `artifact_root` finds the champion's files after the home moved (`model_download_uri`)."""
    config = result.config
    sanity = sanity_check(
        result.estimator, result.dimensionality, embedder_dim, result.n_pos, result.n_neg,
        config.min_positives, config.min_negatives,
    )  # fmt: skip
    champion = get_champion(client, training.collection_id)
    comparable = champion is not None and same_focus(champion, training)
    if champion is not None and not comparable:
        log.warning("champion %s has another focus; not comparable", champion.model_uri)
    evaluation = None
    if comparable:
        try:
            evaluation = evaluate_champion(
                client, training.collection_id, training, result, artifact_root
            )
        except (TypeError, ValueError) as exc:  # e.g. a legacy model that cannot be refitted
            log.warning("collection %s: champion not comparable: %s", training.collection_id, exc)
    decision = decide_promotion(evaluation, result.out_of_fold, tolerance, sanity)
    if decision.promote:
        promote(client, training.collection_id, version, decision.reason)
    return GateOutcome(decision, champion.version if champion else None, evaluation)


@dataclass(frozen=True)
class TrainingDecision:
    """One training decision: the version it concerns and the gate's outcome (None: the
    version was gated before, by an earlier run; `already` says what that gate decided)."""

    registered: RegisteredVersion
    outcome: GateOutcome | None
    recovered: bool = False  # the version was registered by a run that died before its gate
    already: str = ""


def register_and_gate(
    client: MlflowClient,
    result: TrainingResult,
    training: TrainingSet,
    provenance: ClassifierProvenance,
    embedder_dim: int,
    tolerance: float,
    *,
    artifact_location: str | None = None,
    artifact_root: str | None = None,
) -> TrainingDecision:
    """Register `result` and gate it, exactly once per (data, configuration).

    A version with this exact data and configuration is reused, not registered again; when
    its gate never completed (a crash between registration and the last alias move), the
    gate runs now. The gate's decision is recorded on the version as the very last step.
    """
    cid, name = provenance.collection_id, model_name(provenance.collection_id)
    fingerprint, digest = provenance.training_data_fingerprint, provenance.training_config_digest
    existing = version_trained_on(client, cid, fingerprint, digest)
    if existing is not None:
        registered = registered_version(client, name, existing)
        decided = gate_decision(client, name, existing)
        if decided is not None:
            return TrainingDecision(registered, None, already=decided)
        log.warning("%s version %s was registered but never gated; gating it now", name, existing)
        champion = get_champion(client, cid)
        if champion is None or champion.version != existing:
            client.set_registered_model_alias(name, Alias.CHALLENGER.value, existing)
    else:
        registered = register_classifier(
            client, result, provenance, artifact_location=artifact_location
        )
    outcome = run_gate(
        client, registered.version, result, training, embedder_dim, tolerance, artifact_root
    )
    mark_gated(client, name, registered.version, outcome.decision.reason)
    return TrainingDecision(registered, outcome, recovered=existing is not None)
