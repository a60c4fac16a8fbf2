"""What `collection_classifier` returns: its metadata, its gate check, a skipped result."""

import dagster as dg

from ml_platform.defs.assets.registry_links import gate_check, mlflow_links, registration
from ml_platform.learning.training import TrainingResult
from ml_platform.model_registry.versions import RegisteredVersion
from ml_platform.services.promotion import GateOutcome
from ml_platform.services.training_data import TrainingSet


def skipped(
    check: str, reason: str, data_version: dg.DataVersion | None = None
) -> dg.MaterializeResult:  # type: ignore[type-arg]
    """A collection that cannot be trained: the reason in metadata, never a failed run."""
    return dg.MaterializeResult(
        metadata={"skipped": True, "reason": reason},
        data_version=data_version,
        check_results=[
            dg.AssetCheckResult(
                check_name=check,
                passed=False,
                severity=dg.AssetCheckSeverity.WARN,
                description=f"no challenger: {reason}",
                metadata={"promoted": False, "decision": f"not trained: {reason}"},
            )
        ],
    )


def classifier_metadata(
    check: str,
    registered: RegisteredVersion,
    result: TrainingResult,
    training: TrainingSet,
    outcome: GateOutcome,
    tracking_uri: str,
    ui_url: str,
    data_version: dg.DataVersion | None = None,
) -> dg.MaterializeResult:  # type: ignore[type-arg]
    candidates = {m.name.value: round(m.average_precision_mean, 4) for m in result.candidates}
    decision = outcome.decision
    return dg.MaterializeResult(
        data_version=data_version,
        metadata={
            **registration(registered, decision, outcome.champion_before),
            "focus": training.focus.key,
            "weights": training.embedded.weights.value,
            "dimensionality": result.dimensionality,
            "n_positives": result.n_pos,
            "n_negatives": result.n_neg,
            "n_unlabelled_negatives": training.n_unlabelled,
            "unlabelled_negatives": result.config.unlabelled.value,
            "winner": result.winner.value,
            # the same two AP figures, under the same names, as the MLflow version's tags
            "cv_oof_average_precision": round(result.out_of_fold.average_precision, 4),
            "cv_average_precision_mean": round(result.winner_metrics.average_precision_mean, 4),
            "threshold": result.threshold,
            "candidates_cv_average_precision_mean": dg.MetadataValue.json(candidates),
            "training_data_fingerprint": training.fingerprint,
            "skipped_low_quality_faces": len(training.skipped_low_quality),
            **mlflow_links(registered, ui_url, tracking_uri),
        },
        check_results=[
            gate_check(
                check, decision.promote, decision.reason, gate_metadata(registered, result, outcome)
            )
        ],
    )


def gate_metadata(
    registered: RegisteredVersion, result: TrainingResult, outcome: GateOutcome
) -> dict[str, dg.MetadataValue]:  # type: ignore[type-arg]
    """The gate's decision and the two APs it compared on the same images: the challenger's
    out-of-fold AP (its `cv_oof_average_precision`) and the champion's AP."""
    champion = outcome.champion_evaluation
    return {
        "promoted": dg.MetadataValue.bool(outcome.decision.promote),
        "decision": dg.MetadataValue.text(outcome.decision.reason),
        "challenger_version": dg.MetadataValue.text(registered.version),
        "challenger_oof_ap": dg.MetadataValue.float(round(result.out_of_fold.average_precision, 4)),
        "champion_version": dg.MetadataValue.text(outcome.champion_before or "none"),
        "champion_ap": dg.MetadataValue.float(round(champion.average_precision, 4))
        if champion is not None
        else dg.MetadataValue.text("not comparable" if outcome.champion_before else "none"),
    }
