"""The label-shift test of a champion's newest fresh labels (`learning.label_shift`), with its
inputs from the store: the fresh labels in the order they were made
(`store.fresh_labels.label_times`); the reference is the older fresh labels and the
out-of-fold predictions training kept for the version (`store.curation_tables.read_out_of_fold`;
sampled unlabelled negatives are left out, the fresh set has explicit labels only). A version
trained before OOF predictions were kept has no test: `champion_fresh_ap` then decides on the
AP rule alone.

The window is the labels of the newest 2 rounds between the version's logged evaluations
(`services.health_history.evaluation_times`; a round with no label, as between a daily
evaluation and the one before it, does not count), the newest `min_fresh_labels` until 2
rounds follow evaluations (`learning.label_shift.since_evaluation_before_last_with_new_labels`,
chosen by `benchmarks/champion_health.py` on seeds no choice was made on).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime

import numpy as np
from numpy.typing import NDArray

from ml_platform.learning.label_shift import (
    LabelShiftTest,
    label_shift_test,
    since_evaluation_before_last_with_new_labels,
    split_newest,
)
from ml_platform.model_registry.versions import ModelVersionInfo
from ml_platform.store.blobs import MissingInputError
from ml_platform.store.curation_tables import read_out_of_fold
from ml_platform.store.fresh_labels import label_times
from ml_platform.store.layout import Layout

log = logging.getLogger(__name__)


def arrival_order(layout: Layout, collection_id: int, image_ids: NDArray[np.int64]) -> (
    NDArray[np.int64]
):  # fmt: skip
    """Indices that sort `image_ids` by when their labels were made, oldest first (ties by
    image id)."""
    return by_arrival(image_ids, arrival_times(layout, collection_id, image_ids))


def by_arrival(image_ids: NDArray[np.int64], times: NDArray[np.float64]) -> NDArray[np.int64]:
    """Indices that sort `image_ids` by their label `times`, oldest first (ties by image id)."""
    return np.lexsort((np.asarray(image_ids, np.int64), times)).astype(np.int64)


def arrival_times(layout: Layout, collection_id: int, image_ids: NDArray[np.int64]) -> (
    NDArray[np.float64]
):  # fmt: skip
    """When each image's label was made, in seconds since the epoch (0: not known)."""
    times = label_times(layout.metadata(), collection_id, [int(i) for i in image_ids])
    return np.asarray([times[int(i)].timestamp() if int(i) in times else 0.0 for i in image_ids],
                      np.float64)  # fmt: skip


def fresh_label_shift(
    layout: Layout,
    collection_id: int,
    champion: ModelVersionInfo,
    fresh: tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.float64]],
    window: int,
    evaluations: Sequence[datetime] = (),
) -> LabelShiftTest | None:
    """The test of the fresh (image ids, labels, probabilities) of the newest 2 rounds between
    the version's earlier `evaluations` (the newest `window` until there are 2) against the
    version's OOF predictions and the older fresh labels, or None when the version has no
    OOF predictions kept."""
    try:
        oof = read_out_of_fold(layout, collection_id, champion.version)
    except MissingInputError:
        log.info("collection %s v%s: no out-of-fold predictions kept; no label-shift test",
                 collection_id, champion.version)  # fmt: skip
        return None
    ids, y, p = fresh
    times = arrival_times(layout, collection_id, ids)
    order = by_arrival(ids, times)
    seconds = [e.timestamp() for e in evaluations]
    size = since_evaluation_before_last_with_new_labels(times[order], seconds, 1, window)
    (wy, wp), (older_y, older_p) = split_newest(y[order], p[order], size)
    explicit = ~oof.unlabelled
    ref_y = np.concatenate([oof.labels[explicit], older_y])
    ref_p = np.concatenate([oof.probabilities[explicit], older_p])
    if not np.isin(wy, ref_y).any():
        return None
    return label_shift_test(wy, wp, ref_y, ref_p)
