"""The photos of a fine-tuning benchmark and their per-seed splits, and its baseline.

A folder per class (`../shared/data/clothing`, `../shared/data/pets`); the split is the
platform's own (`services.datasets`: grouped, stratified, deterministic; a new one per seed);
the baseline is logistic regression on the network's frozen pooled features, C chosen on the
validation split.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from PIL import Image
from sklearn.linear_model import LogisticRegression

from ml_platform.domain import ImageRecord, IngestedImage, IngestStatus
from ml_platform.services.dataset_versions import DatasetVersion, make_version
from ml_platform.services.datasets import DatasetSpec, Split, SplitFractions
from ml_platform.vision.decode import load_rgb

C_GRID = (0.1, 0.3, 1.0, 3.0, 10.0, 30.0)


@dataclass(frozen=True)
class Run:
    """What every seed shares: the photos in id order, their row in the trunk cache."""

    images: list[IngestedImage]
    spec: DatasetSpec
    row: dict[int, int]  # image id -> row of the trunk cache

    def version(self, seed: int) -> DatasetVersion:
        named = replace(self.spec, name=f"{self.spec.name}-{seed}")
        return make_version(named, self.images, {}, SplitFractions())


def load_run(root: Path, name: str, per_class: int | None) -> tuple[Run, list[Image.Image]]:
    """The photos under `root` (one folder a class) and the `Run` over them."""
    images, spec, paths = folder_images(root, name, per_class)
    ids = sorted(paths)
    photos = [load_rgb(paths[i], draft_size=(320, 320)) for i in ids]
    return Run(images, spec, {i: row for row, i in enumerate(ids)}), photos


def folder_images(
    root: Path, name: str, per_class: int | None
) -> tuple[list[IngestedImage], DatasetSpec, dict[int, Path]]:
    """One image per photo, labelled by its folder (a collection per class)."""
    classes = sorted(d for d in root.iterdir() if d.is_dir())
    images: list[IngestedImage] = []
    paths: dict[int, Path] = {}
    now = datetime(2025, 1, 1, tzinfo=UTC)
    for cid, folder in enumerate(classes, start=1):
        for photo in sorted(folder.glob("*.jpg"))[:per_class]:
            image_id = len(paths) + 1
            paths[image_id] = photo
            record = ImageRecord(image_id, photo.name, now, None, (cid,))
            images.append(IngestedImage(record, IngestStatus.OK, path=str(photo)))
    spec = DatasetSpec(name, tuple((c.name, cid) for cid, c in enumerate(classes, start=1)))
    return images, spec, paths


def split(version: DatasetVersion, run: Run, s: Split) -> tuple[list[int], NDArray[np.int64]]:
    items = version.split(s)
    rows = [run.row[item.image_id] for item in items]
    return rows, np.asarray([version.class_index(item.label) for item in items], np.int64)


def baseline(
    features: NDArray[np.float32], version: DatasetVersion, run: Run
) -> tuple[float, float]:
    """(test accuracy, chosen C) of logistic regression on L2-normalised frozen features."""
    rows = {s: split(version, run, s) for s in Split}
    X = {s: features[rows[s][0]] for s in Split}
    X = {s: x / np.linalg.norm(x, axis=1, keepdims=True) for s, x in X.items()}
    scores = {}
    for c in C_GRID:
        model = LogisticRegression(C=c, max_iter=2000).fit(X[Split.TRAIN], rows[Split.TRAIN][1])
        scores[c] = float((model.predict(X[Split.VAL]) == rows[Split.VAL][1]).mean())
    best = max(C_GRID, key=lambda c: (scores[c], -abs(np.log(c))))
    model = LogisticRegression(C=best, max_iter=2000).fit(X[Split.TRAIN], rows[Split.TRAIN][1])
    return float((model.predict(X[Split.TEST]) == rows[Split.TEST][1]).mean()), best
