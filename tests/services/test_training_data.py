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

FOCUS = Focus(DerivativeType.WHOLE_IMAGE, "embed_clip_vit_b_32")
WHEN = datetime(2026, 1, 1, tzinfo=UTC)


def image(image_id: int, members: tuple[int, ...] = (), rejected: tuple[int, ...] = ()):  # type: ignore[no-untyped-def]
    record = ImageRecord(image_id, f"http://x/{image_id}", WHEN, None, members, rejected)
    return IngestedImage(record, IngestStatus.OK, sha256=f"sha{image_id}")


def test_rejections_are_labelled_and_sampled_negatives_unlabelled() -> None:
    images = [image(i, members=(7,)) for i in range(5)]
    images += [image(i, rejected=(7,)) for i in range(5, 9)]
    images += [image(i) for i in range(9, 30)]
    ids = np.arange(30, dtype=np.int64)
    vectors = np.random.default_rng(0).normal(size=(30, 4)).astype(np.float32)
    embedded = EmbeddedFocus(FOCUS, ids, vectors, "e", "r", WeightsStatus.PRETRAINED)
    training = build_training_set(
        Collection(7, "cats", FOCUS), images, embedded, negative_sample_size=10, seed=0
    )
    assert training.unlabelled is not None
    by_id = dict(zip(training.image_ids.tolist(), training.unlabelled.tolist(), strict=True))
    assert not any(by_id[i] for i in range(9))  # members and rejections are labels
    assert sum(by_id.values()) == training.n_unlabelled == 10
    assert training.n_neg == 14
