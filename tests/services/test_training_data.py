"""The training set marks sampled negatives as unlabelled; explicit rejections are not."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np

from ml_platform.domain import (
    Collection,
    DerivativeType,
    Focus,
    ImageRecord,
    IngestedImage,
    IngestStatus,
    WeightsStatus,
)
from ml_platform.services.training_data import EmbeddedFocus, build_training_set
from ml_platform.vision.embedders.identity import EmbedderIdentity

FOCUS = Focus(DerivativeType.WHOLE_IMAGE, "embed_clip_vit_b_32")
WHEN = datetime(2026, 1, 1, tzinfo=UTC)


def who(focus: Focus, weights: WeightsStatus = WeightsStatus.PRETRAINED) -> EmbedderIdentity:
    return EmbedderIdentity(focus.embedding_type, "e", "r", weights=weights)


def image(
    image_id: int, members: tuple[int, ...] = (), rejected: tuple[int, ...] = ()
) -> IngestedImage:
    record = ImageRecord(image_id, f"http://x/{image_id}", WHEN, None, members, rejected)
    return IngestedImage(record, IngestStatus.OK, sha256=f"sha{image_id}")


def test_rejections_are_labelled_and_sampled_negatives_unlabelled() -> None:
    images = [image(i, members=(7,)) for i in range(5)]
    images += [image(i, rejected=(7,)) for i in range(5, 9)]
    images += [image(i) for i in range(9, 30)]
    ids = np.arange(30, dtype=np.int64)
    vectors = np.random.default_rng(0).normal(size=(30, 4)).astype(np.float32)
    embedded = EmbeddedFocus(FOCUS, ids, vectors, who(FOCUS))
    training = build_training_set(
        Collection(7, "cats", FOCUS), images, embedded, negative_sample_size=10, seed=0
    )
    assert training.unlabelled is not None
    by_id = dict(zip(training.image_ids.tolist(), training.unlabelled.tolist(), strict=True))
    assert not any(by_id[i] for i in range(9))  # members and rejections are labels
    assert sum(by_id.values()) == training.n_unlabelled == 10
    assert training.n_neg == 14


def groups_of(weights: WeightsStatus) -> dict[int, int]:
    """Groups of a training set where image 1 is a near copy (a flip, say) of image 0."""
    images = [image(i, members=(7,)) for i in range(6)] + [image(i) for i in range(6, 14)]
    vectors = np.random.default_rng(1).normal(size=(14, 8)).astype(np.float32)
    vectors[1] = vectors[0] * 1.01 + 0.001
    embedded = EmbeddedFocus(FOCUS, np.arange(14, dtype=np.int64), vectors, who(FOCUS, weights))
    training = build_training_set(
        Collection(7, "cats", FOCUS), images, embedded, negative_sample_size=8, seed=0
    )
    return dict(zip(training.image_ids.tolist(), training.groups.tolist(), strict=True))


def test_near_copies_share_a_group_with_pretrained_weights() -> None:
    groups = groups_of(WeightsStatus.PRETRAINED)
    assert groups[0] == groups[1]
    assert len(set(groups.values())) == 13


def test_random_weight_vectors_are_not_merged() -> None:
    groups = groups_of(WeightsStatus.RANDOM)
    assert groups[0] != groups[1]


def test_face_embeddings_are_not_merged() -> None:
    """A face embedder puts every photo of one person close together: not duplicates."""
    face = Focus(DerivativeType.PROMINENT_FACE, "embed_face_dlib_resnet_v1")
    images = [image(i, members=(7,)) for i in range(6)] + [image(i) for i in range(6, 14)]
    vectors = np.random.default_rng(1).normal(size=(14, 8)).astype(np.float32)
    vectors[1] = vectors[0]
    embedded = EmbeddedFocus(face, np.arange(14, dtype=np.int64), vectors, who(face))
    training = build_training_set(
        Collection(7, "person", face), images, embedded, negative_sample_size=8, seed=0
    )
    assert len(set(training.groups.tolist())) == 14


def test_vectors_that_all_look_alike_keep_their_photo_groups() -> None:
    """An embedder that maps every photo to about the same vector would join all rows."""
    images = [image(i, members=(7,)) for i in range(6)] + [image(i) for i in range(6, 14)]
    vectors = 1.0 + np.random.default_rng(2).normal(size=(14, 8)).astype(np.float32) * 1e-3
    embedded = EmbeddedFocus(FOCUS, np.arange(14, dtype=np.int64), vectors, who(FOCUS))
    training = build_training_set(
        Collection(7, "cats", FOCUS), images, embedded, negative_sample_size=8, seed=0
    )
    assert len(set(training.groups.tolist())) == 14
