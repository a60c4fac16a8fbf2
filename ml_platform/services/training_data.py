"""Assemble a collection's training set from the catalogs and its focus's embeddings.

Positives are the collection's member images; negatives are its explicit rejections plus a
seeded sample of other images (`negative_sample_size`), marked in `TrainingSet.unlabelled`
so training can weigh or filter them (`TrainingConfig.unlabelled`; rejections weigh 1).
Only images with an embedding of the collection's own focus take part, so a model never
sees another focus's vectors. Every row has a group for the CV and gate folds
(`row_groups`): its pet when both classes span at least 3 pets, else its source photo's
sha256, so crops and copies of one photo (or one pet) never sit in both a training and a
test fold; groups holding near-identical embeddings (a flip or crop of one photo) are joined
(`near_duplicate_cosine`; pretrained, non-face embedders only). For a `prominent_face`
focus, faces whose stored quality is below `face_quality_threshold` are left out too, and
listed in `TrainingSet.skipped_low_quality`. Labels and groups per row: `training_rows`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np
from numpy.typing import NDArray

from ml_platform.domain import (
    Collection,
    DerivativeType,
    Focus,
    IngestedImage,
    IngestStatus,
    WeightsStatus,
)
from ml_platform.learning.folds import NEAR_DUPLICATE_COSINE
from ml_platform.model_registry.collection.naming import training_data_fingerprint
from ml_platform.services.training_rows import (
    is_rejected,
    joined_groups,
    labels_for,
    merges_near_duplicates,
    row_groups,
)
from ml_platform.store.detections_table import read_detections
from ml_platform.store.layout import Layout
from ml_platform.store.tables import read_catalog
from ml_platform.store.vectors import has_embeddings, read_table, vectors_of
from ml_platform.vision.embedders.identity import EmbedderIdentity

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EmbeddedFocus:
    """Every `ok` vector of one focus across batches, with the embedder that made them."""

    focus: Focus
    ids: NDArray[np.int64]
    vectors: NDArray[np.float32]
    embedder: EmbedderIdentity
    low_quality_ids: frozenset[int] = frozenset()  # faces below the quality threshold

    @property
    def weights(self) -> WeightsStatus:
        return self.embedder.weights

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1]) if self.vectors.size else 0


@dataclass(frozen=True)
class TrainingSet:
    collection_id: int
    focus: Focus
    image_ids: NDArray[np.int64]
    X: NDArray[np.float32]
    y: NDArray[np.int64]
    fingerprint: str
    embedded: EmbeddedFocus
    groups: NDArray[np.int64]
    skipped_low_quality: tuple[int, ...] = ()  # labelled images left out for face quality
    unlabelled: NDArray[np.bool_] | None = None  # sampled negatives (not explicit rejections)

    @property
    def n_pos(self) -> int:
        return int(self.y.sum())

    @property
    def n_neg(self) -> int:
        return int(self.y.size - self.y.sum())

    @property
    def n_unlabelled(self) -> int:
        return 0 if self.unlabelled is None else int(self.unlabelled.sum())


def images_by_batch(
    layout: Layout, batches: Sequence[str] | None = None
) -> dict[str, list[IngestedImage]]:
    """Successfully ingested images of the catalogued batches (all, or only `batches`: what
    the metadata index says holds the pets or collections at hand), with their *current*
    labels: the label index's, which label changes in crawlr keep up to date after ingestion
    (services.label_changes), not the ones the catalog recorded at ingestion."""
    found = {
        key: [e for e in read_catalog(layout, key) if e.status is IngestStatus.OK]
        for key in catalogued_batches(layout, batches)
    }
    ids = [e.image.id for batch in found.values() for e in batch]
    current = layout.metadata().current_labels(ids) if ids else {}
    return {key: [with_labels(e, current) for e in batch] for key, batch in found.items()}


def with_labels(
    entry: IngestedImage, current: Mapping[int, tuple[list[int], list[int]]]
) -> IngestedImage:
    """`entry` with the index's labels where the index holds the image."""
    labels = current.get(entry.image.id)
    if labels is None:
        return entry
    image = replace(
        entry.image,
        collection_ids=tuple(sorted(labels[0])),
        rejected_collection_ids=tuple(sorted(labels[1])),
    )
    return replace(entry, image=image)


def catalogued_batches(layout: Layout, batches: Sequence[str] | None = None) -> list[str]:
    """Registered batches whose catalog has been written (a batch mid-ingest has none yet)."""
    keys = layout.metadata().batch_keys() if batches is None else list(batches)
    return [k for k in keys if layout.store.exists(layout.catalog(k))]


def load_images(layout: Layout, batches: Sequence[str] | None = None) -> list[IngestedImage]:
    """Every successfully ingested image across the catalogued batches (or `batches`)."""
    return [e for batch in images_by_batch(layout, batches).values() for e in batch]


def _embedded_batches(layout: Layout, focus: Focus, batches: Sequence[str] | None) -> list[str]:
    """Catalogued batches with embeddings of `focus`; the others (not embedded for this focus
    yet, e.g. it just came into use) are named in a warning and left out."""
    keys = catalogued_batches(layout, batches)
    present = [b for b in keys if has_embeddings(layout, focus, b)]
    if len(present) < len(keys):
        absent = sorted(set(keys) - set(present))
        log.warning("%s: batches %s have no embeddings yet; left out", focus.key, absent[:10])
    return present


def load_focus(
    layout: Layout,
    focus: Focus,
    batches: Sequence[str] | None = None,
    *,
    face_quality_threshold: float | None = None,
) -> EmbeddedFocus:
    """The focus's vectors made by the newest batch's embedder. Batches embedded by another
    embedder (the setting changed; re-run `embeddings_job` on them) are left out, so vectors
    of two models are never mixed. `batches` restricts the read to those batches. With a
    `face_quality_threshold` (training: the setting), faces measured below it are marked."""
    keys = _embedded_batches(layout, focus, batches)
    files = [vectors_of([read_table(layout, focus, b)]) for b in keys]
    files = [f for f in files if f[2]]
    who = files[-1][2][0] if files else EmbedderIdentity(focus.embedding_type, "", "")
    same = [f for f in files if f[2][0] == who]
    if len(same) < len(files):
        log.warning(
            "%s: %d batch files from another embedder left out", focus.key, len(files) - len(same)
        )
    ids = np.concatenate([f[0] for f in same]) if same else np.zeros(0, np.int64)
    vectors = (
        np.concatenate([f[1] for f in same if f[1].size])
        if any(f[1].size for f in same)
        else np.zeros((0, 0), np.float32)
    )
    return EmbeddedFocus(
        focus=focus,
        ids=ids,
        vectors=vectors,
        embedder=who,
        low_quality_ids=low_quality_faces(layout, focus, keys, face_quality_threshold),
    )


def low_quality_faces(
    layout: Layout, focus: Focus, batches: Sequence[str], threshold: float | None
) -> frozenset[int]:
    """Images of `batches` whose measured face quality is below `threshold` (prominent_face
    foci only; faces without a measured quality are kept)."""
    if threshold is None or focus.derivative_type is not DerivativeType.PROMINENT_FACE:
        return frozenset()
    return frozenset(
        image_id
        for key in batches
        for image_id, row in read_detections(layout, key).items()
        if row.face_quality is not None and row.face_quality < threshold
    )


def build_training_set(
    collection: Collection,
    images: list[IngestedImage],
    embedded: EmbeddedFocus,
    *,
    negative_sample_size: int,
    seed: int,
    near_duplicate_cosine: float = NEAR_DUPLICATE_COSINE,
) -> TrainingSet:
    if collection.focus is None or collection.focus != embedded.focus:
        raise ValueError(f"collection {collection.id} focus {collection.focus} != {embedded.focus}")
    embedded_ids = set(embedded.ids.tolist()) - embedded.low_quality_ids
    usable = [e for e in images if e.image.id in embedded_ids]  # negatives are sampled here
    labels = labels_for(collection.id, usable, negative_sample_size, seed)
    skipped = skipped_for_quality(collection.id, images, embedded)
    rows = [
        (i, labels[int(image_id)])
        for i, image_id in enumerate(embedded.ids)
        if int(image_id) in labels
    ]
    index = np.asarray([r[0] for r in rows], np.int64)
    ids = embedded.ids[index] if rows else np.zeros(0, np.int64)
    y = np.asarray([r[1] for r in rows], np.int64)
    X = embedded.vectors[index] if rows else np.zeros((0, embedded.dim), np.float32)
    pairs = [(int(i), bool(label)) for i, label in zip(ids, y, strict=True)]
    by_id = {e.image.id: e for e in usable}
    groups = row_groups([by_id[int(i)] for i in ids], y)
    if merges_near_duplicates(embedded.weights, embedded.focus):
        groups = joined_groups(collection.id, X, y, groups, near_duplicate_cosine)
    rejected = {i for i, label in pairs if not label and is_rejected(collection.id, by_id[i])}
    unlabelled = np.asarray([not label and i not in rejected for i, label in pairs], dtype=bool)
    return TrainingSet(
        collection_id=collection.id,
        focus=collection.focus,
        image_ids=ids,
        X=X,
        y=y,
        fingerprint=training_data_fingerprint(pairs, collection.focus, rejected),
        embedded=embedded,
        groups=groups,
        skipped_low_quality=skipped,
        unlabelled=unlabelled,
    )


def skipped_for_quality(
    collection_id: int, images: list[IngestedImage], embedded: EmbeddedFocus
) -> tuple[int, ...]:
    """Members and rejections of the collection left out for low face quality (logged)."""
    skipped = tuple(
        sorted(
            e.image.id
            for e in images
            if e.image.id in embedded.low_quality_ids
            and collection_id in (*e.image.collection_ids, *e.image.rejected_collection_ids)
        )
    )
    if skipped:
        log.info(
            "collection %s: %d labelled faces below the quality threshold left out: %s",
            collection_id, len(skipped), list(skipped[:20]),
        )  # fmt: skip
    return skipped
