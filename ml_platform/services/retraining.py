"""Which collections need (re)training: no champion, a focus change, or new training data."""

from __future__ import annotations

from dataclasses import dataclass

from mlflow import MlflowClient

from ml_platform.defs.resources.storage import StorageResource
from ml_platform.domain import Collection, Focus
from ml_platform.model_registry.lookup import get_champion, show
from ml_platform.model_registry.naming import VersionTag
from ml_platform.services.training_data import (
    EmbeddedFocus,
    build_training_set,
    load_focus,
    load_images,
)


@dataclass(frozen=True)
class RetrainReason:
    collection_id: int
    reason: str


def retrain_reason(client: MlflowClient, collection: Collection, fingerprint: str) -> str | None:
    """Why `collection` must be retrained, or None when its champion is current."""
    assert collection.focus is not None
    champion = get_champion(client, collection.id)
    if champion is None:
        return "no champion yet"
    tags = champion.tags
    trained_focus = f"{tags.get(VersionTag.DERIVATIVE_TYPE)}__{tags.get(VersionTag.EMBEDDING_TYPE)}"
    if trained_focus != collection.focus.key:
        return f"focus changed: champion trained on {trained_focus}, now {collection.focus.key}"
    if tags.get(VersionTag.TRAINING_DATA_FINGERPRINT) != fingerprint:
        if already_trained_on(client, collection.id, fingerprint):
            return None  # a challenger saw this data and the gate kept the champion
        return "training data changed since the champion was trained"
    return None


def already_trained_on(client: MlflowClient, collection_id: int, fingerprint: str) -> bool:
    """Whether some version of the collection's model was trained on exactly this data."""
    details = show(client, collection_id)
    versions = details.versions if details else ()
    return any(v.tags.get(VersionTag.TRAINING_DATA_FINGERPRINT) == fingerprint for v in versions)


def collections_to_retrain(
    client: MlflowClient,
    storage: StorageResource,
    collections: list[Collection],
    *,
    negative_sample_size: int,
    seed: int,
    min_positives: int,
    min_negatives: int,
) -> list[RetrainReason]:
    """Usable collections with enough labelled, embedded images whose champion is not current."""
    images = load_images(storage)
    embedded: dict[Focus, EmbeddedFocus] = {}
    out = []
    for collection in collections:
        if not collection.usable or collection.focus is None:
            continue
        if collection.focus not in embedded:
            embedded[collection.focus] = load_focus(storage, collection.focus)
        training = build_training_set(
            collection, images, embedded[collection.focus],
            negative_sample_size=negative_sample_size, seed=seed,
        )  # fmt: skip
        if training.n_pos < min_positives or training.n_neg < min_negatives:
            continue  # the training asset would skip it; retried once more data lands
        reason = retrain_reason(client, collection, training.fingerprint)
        if reason is not None:
            out.append(RetrainReason(collection.id, reason))
    return out
