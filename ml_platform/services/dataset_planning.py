"""Which datasets need a new version, and which a new fine-tune: cheap comparisons only.

A dataset's *membership token* changes whenever what its next version would contain can
change: its classes' collection labels (one grouped query over the label index), its
accepted labels, or the catalog of a batch holding its images (a download retry landing).
Every `datasets` materialization carries the token it was made on, and every
`finetuned_classifier` materialization the dataset version it trained on. So the sensor
compares tokens and the nightly schedule compares versions; neither reads a table.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass

from ml_platform.services.datasets import DatasetSpec
from ml_platform.services.retraining import LabelCounts

MEMBERSHIP_TAG = "ml_platform/membership"
DATASET_VERSION_TAG = "ml_platform/dataset_version"


@dataclass(frozen=True)
class DatasetRun:
    dataset: str
    reason: str
    run_key: str


def membership_token(
    spec: DatasetSpec,
    fingerprints: Mapping[int, LabelCounts],
    accepted: Mapping[int, str],
    catalog_marks: Mapping[str, int],
) -> str:
    """A short digest of everything the dataset's next version is made from."""
    parts = [spec.name]
    parts += [f"{label}={cid}:{fingerprints.get(cid, (0, 0, 0))}" for label, cid in spec.classes]
    parts += [f"a{image_id}={label}" for image_id, label in sorted(accepted.items())]
    parts += [f"b{batch}@{mark}" for batch, mark in sorted(catalog_marks.items())]
    return hashlib.sha1("\n".join(parts).encode()).hexdigest()[:16]


def plan_versions(tokens: Mapping[str, str], versioned: Mapping[str, str]) -> list[DatasetRun]:
    """Datasets whose membership changed since their last `datasets` materialization."""
    return [
        DatasetRun(
            name,
            "no version yet" if before is None else "membership changed since the last version",
            f"dataset_version:{name}:{token}",
        )
        for name, token, before in _changed(tokens, versioned)
    ]


def plan_finetunes(versions: Mapping[str, str], trained: Mapping[str, str]) -> list[DatasetRun]:
    """Datasets whose newest version has not been fine-tuned on yet."""
    return [
        DatasetRun(
            name,
            "never fine-tuned" if before is None else f"new version {version} (last {before})",
            f"finetune:{name}:{version}",
        )
        for name, version, before in _changed(versions, trained)
    ]


def _changed(now: Mapping[str, str], done: Mapping[str, str]) -> list[tuple[str, str, str | None]]:
    """(dataset, its mark now, the mark last acted on or None) where the two differ, by name."""
    return [
        (name, mark, done.get(name)) for name, mark in sorted(now.items()) if done.get(name) != mark
    ]
