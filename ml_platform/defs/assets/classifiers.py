"""`collection_classifier`: one classifier per collection, registered in MLflow, gated."""

import dagster as dg

from ml_platform.defs.assets.classifier_launchpad import ClassifierConfig
from ml_platform.defs.assets.classifier_results import classifier_metadata, skipped
from ml_platform.defs.partitions import (
    collection_partitions,
    every_batch_of,
    partitioned_check_spec,
)
from ml_platform.defs.resources import StorageResource
from ml_platform.defs.resources.mlflow import MlflowResource
from ml_platform.defs.resources.vision_models import ModelsResource
from ml_platform.domain import Stage
from ml_platform.learning.training import InsufficientTrainingDataError, train_classifier
from ml_platform.model_registry.collection.naming import (
    ClassifierProvenance,
    config_digest,
    config_params,
)
from ml_platform.services.curation_scores import keep_out_of_fold
from ml_platform.services.promotion import register_and_gate
from ml_platform.services.retraining import label_token
from ml_platform.services.training_data import build_training_set, load_focus, load_images
from ml_platform.store.collections_file import read_collections

GATE = "promotion_gate"
GATE_DESCRIPTION = (
    "Blocks promotion of the challenger to champion. Passes when the challenger is sane (its "
    "dimensionality matches the embedder, enough positives and negatives) and its out-of-fold "
    "average precision is at most `promotion_tolerance` below the champion's, both scored on "
    "the same grouped folds of the current labels. Metadata: the decision and both APs."
)

GATE_SPEC = partitioned_check_spec(
    GATE, "collection_classifier", GATE_DESCRIPTION, collection_partitions, blocking=True
)


@dg.asset(
    group_name="classifiers",
    partitions_def=collection_partitions,
    deps=["crawlr_collections", every_batch_of(Stage.EMBEDDINGS.value)],
    check_specs=[GATE_SPEC],
    kinds={"scikitlearn", "mlflow"},
)
def collection_classifier(
    context: dg.AssetExecutionContext,
    config: ClassifierConfig,
    storage: StorageResource,
    mlflow: MlflowResource,
    models: ModelsResource,
) -> dg.MaterializeResult:  # type: ignore[type-arg]
    """Train candidates on the collection's focus embeddings, register the winner as
    `crawlr-collection-<id>` (alias challenger) and promote it to champion when the blocking
    `promotion_gate` passes. Unusable or under-labelled collections are skipped with the reason."""
    cid, layout = int(context.partition_key), storage.layout()
    collection = next((c for c in read_collections(layout) if c.id == cid), None)
    if collection is None or not collection.usable or collection.focus is None:
        reason = collection.unusable_reason if collection else "not in crawlr_collections"
        return skipped(GATE, f"collection {cid}: {reason}")
    counts = storage.metadata().label_fingerprints([cid]).get(cid, (0, 0, 0))
    version = dg.DataVersion(label_token(collection.focus.key, counts))  # what planning compares
    knobs = config.training_config()
    threshold = storage.settings().face_quality_threshold
    embedded = load_focus(layout, collection.focus, face_quality_threshold=threshold)
    training = build_training_set(
        collection, load_images(layout), embedded,
        negative_sample_size=config.negative_sample_size, seed=knobs.seed,
        near_duplicate_cosine=knobs.near_duplicate_cosine,
    )  # fmt: skip
    if training.n_pos < knobs.min_positives or training.n_neg < knobs.min_negatives:
        return skipped(
            GATE,
            f"collection {cid}: {training.n_pos} positives and {training.n_neg} negatives have "
            f"{collection.focus.key} embeddings; need {knobs.min_positives} and "
            f"{knobs.min_negatives}",
            version,
        )
    try:
        result = train_classifier(
            training.X, training.y, knobs, training.groups, training.unlabelled
        )
    except InsufficientTrainingDataError as exc:
        return skipped(GATE, f"collection {cid}: {exc}", version)
    provenance = ClassifierProvenance(
        cid, collection.focus, training.embedded.embedder, training.fingerprint, context.run_id,
        context.partition_key, config_digest(config_params(knobs)),
    )  # fmt: skip
    decision = register_and_gate(
        mlflow.client(), result, training, provenance,
        models.embedder(collection.focus.embedding_type).dim, config.promotion_tolerance,
        artifact_location=mlflow.artifact_location(), artifact_root=mlflow.artifact_root(),
    )  # fmt: skip
    registered, outcome = decision.registered, decision.outcome
    keep_out_of_fold(layout, registered.version, training, result)  # the label audit's input
    if outcome is None:  # e.g. two planners ran this partition: no second model version
        why = (f"collection {cid}: version {registered.version} has this exact data and "
               f"configuration and was gated ({decision.already})")  # fmt: skip
        return skipped(GATE, why, version)
    context.log.info("collection %s: %s", cid, outcome.decision.reason)
    return classifier_metadata(
        GATE, registered, result, training, outcome, mlflow.resolved_uri,
        mlflow.settings().mlflow_ui_url, version,
    )  # fmt: skip
