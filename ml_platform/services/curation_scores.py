"""Champion scores as a table: each (image, champion version) scored once.

`update_scores` scores the batches of a collection's focus that its champion version has not
scored yet and writes one `collection_scores` object per batch (store/curation_tables.py):
a new batch costs its images x the collections of its foci, a new champion the images of its
focus. `champion_view` is the loaded champion that every curation answer starts from.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from enum import StrEnum

import numpy as np
from mlflow import MlflowClient

from ml_platform.domain import Collection
from ml_platform.learning.training import TrainingResult
from ml_platform.model_registry.collection.lookup import get_champion, load_classifier
from ml_platform.model_registry.collection.pyfunc import CollectionClassifierModel
from ml_platform.model_registry.versions import ModelVersionInfo
from ml_platform.services.training_data import TrainingSet, catalogued_batches
from ml_platform.store.collections_file import has_collections, read_collections
from ml_platform.store.curation_tables import (
    OutOfFold,
    scored_batches,
    write_out_of_fold,
    write_scores,
)
from ml_platform.store.layout import Layout
from ml_platform.store.vectors import has_embeddings, read_table, vectors_of

log = logging.getLogger(__name__)


class CurationProblem(StrEnum):
    UNKNOWN_COLLECTION = "unknown_collection"
    NO_CHAMPION = "no_champion"
    NO_OUT_OF_FOLD = "no_out_of_fold"
    BAD_PARAMETER = "bad_parameter"


class CurationError(ValueError):
    """A curation question that cannot be answered; the message says why and what to do."""

    def __init__(self, problem: CurationProblem, message: str) -> None:
        super().__init__(message)
        self.problem = problem


@dataclass(frozen=True)
class ChampionView:
    collection: Collection
    info: ModelVersionInfo
    model: CollectionClassifierModel

    @property
    def version(self) -> str:
        return self.info.version


@dataclass(frozen=True)
class ScoresUpdate:
    collection_id: int
    version: str
    batches: tuple[str, ...]  # batches scored by this call
    images: int


def usable_collection(layout: Layout, collection_id: int) -> Collection:
    """The collection as `crawlr_collections` stored it; CurationError when unknown."""
    known = read_collections(layout) if has_collections(layout) else []
    found = next((c for c in known if c.id == collection_id), None)
    if found is None:
        raise CurationError(
            CurationProblem.UNKNOWN_COLLECTION,
            f"collection {collection_id} is not among the {len(known)} collections crawlr "
            "listed; check the id (or materialize crawlr_collections)",
        )
    if not found.usable or found.focus is None:
        raise CurationError(
            CurationProblem.NO_CHAMPION,
            f"collection {collection_id} has no usable focus ({found.unusable_reason}), so no "
            "classifier",
        )
    return found


def champion_view(
    layout: Layout, client: MlflowClient, collection_id: int, artifact_root: str | None = None
) -> ChampionView:
    """The collection and its loaded champion; CurationError when either is missing."""
    collection = usable_collection(layout, collection_id)
    info = get_champion(client, collection_id)
    if info is None:
        raise CurationError(
            CurationProblem.NO_CHAMPION,
            f"collection {collection_id} has no champion classifier yet; train it "
            "(collection_classifier) once it has enough members and rejections",
        )
    model = load_classifier(client, collection_id, artifact_root=artifact_root)
    return ChampionView(collection, info, model)


def update_scores(layout: Layout, view: ChampionView) -> ScoresUpdate:
    """Score and write each batch of the focus this champion version has not scored yet."""
    cid, focus = view.collection.id, view.collection.focus
    assert focus is not None  # usable_collection checked it
    done = scored_batches(layout, cid, view.version)
    todo = [
        b for b in catalogued_batches(layout) if b not in done and has_embeddings(layout, focus, b)
    ]
    images = 0
    for batch in todo:
        ids, vectors, _ = vectors_of([read_table(layout, focus, batch)])
        if len(ids) and vectors.shape[1] != view.model.dimensionality:
            width = view.model.dimensionality
            log.warning(
                "collection %s: batch %s has %s-d vectors, the champion takes %s-d; re-embed it",
                cid, batch, vectors.shape[1], width,
            )  # fmt: skip
            continue
        p = probabilities(view.model, vectors) if len(ids) else np.zeros(0)
        write_scores(layout, cid, view.version, batch, ids, p)
        images += len(ids)
    return ScoresUpdate(cid, view.version, tuple(todo), images)


def probabilities(model: CollectionClassifierModel, vectors: np.ndarray) -> np.ndarray:  # type: ignore[type-arg]
    features = model.as_features(vectors)
    return np.asarray(model.estimator.predict_proba(features), dtype=np.float64)[:, 1]


def keep_out_of_fold(
    layout: Layout, version: str, training: TrainingSet, result: TrainingResult
) -> None:
    """Store the winner's out-of-fold probabilities with the model version it became, so the
    audit reads those and never the refit's (which saw every image)."""
    unlabelled = (
        np.zeros(training.y.shape, dtype=bool)
        if training.unlabelled is None
        else np.asarray(training.unlabelled, dtype=bool)
    )
    oof = OutOfFold(training.image_ids, training.y, unlabelled, result.out_of_fold_probabilities)
    write_out_of_fold(layout, training.collection_id, version, oof)
