"""Dataset versions: the labelled, split items of one dataset at one moment, with their digest.

Written by the `datasets` asset under `<data>/datasets/<name>/` as `versions/<version>.json`
plus `latest.json`; read by `finetuned_classifier` and the CLI. `version` is the digest's
first 12 hex characters.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ml_platform.domain import IngestedImage
from ml_platform.services.datasets import (
    DatasetItem,
    DatasetSpec,
    LabelSource,
    Split,
    SplitFractions,
    build_items,
    dataset_digest,
    label_images,
)
from ml_platform.store.layout import Layout

VERSION_CHARS = 12


@dataclass(frozen=True)
class DatasetVersion:
    dataset: str
    digest: str
    classes: tuple[str, ...]
    collections: dict[str, int]
    items: tuple[DatasetItem, ...]
    conflicts: tuple[int, ...] = ()
    created_at: str = ""
    regrouped: tuple[str, ...] = ()  # classes split by image: too few pets (build_items)

    @property
    def version(self) -> str:
        return self.digest[:VERSION_CHARS]

    def split(self, split: Split) -> list[DatasetItem]:
        return [item for item in self.items if item.split is split]

    def class_index(self, label: str) -> int:
        return self.classes.index(label)

    def counts(self) -> dict[str, dict[str, int]]:
        """label -> split -> images (every split present, zeros included)."""
        found = Counter((item.label, item.split) for item in self.items)
        return {c: {s.value: found[(c, s)] for s in Split} for c in self.classes}

    def groups(self) -> dict[str, int]:
        """label -> how many groups (pets, or images without one) its items form."""
        return {c: len({i.group for i in self.items if i.label == c}) for c in self.classes}

    def short_classes(self) -> dict[str, dict[str, int]]:
        """Classes with no training or no validation image: label -> their split counts."""
        return {
            c: split for c, split in self.counts().items()
            if not split[Split.TRAIN.value] or not split[Split.VAL.value]
        }  # fmt: skip

    def split_totals(self) -> dict[str, int]:
        found = Counter(item.split for item in self.items)
        return {s.value: found[s] for s in Split}

    def source_totals(self) -> dict[str, int]:
        found = Counter(item.source for item in self.items)
        return {s.value: found[s] for s in LabelSource}


def make_version(
    spec: DatasetSpec,
    images: list[IngestedImage],
    accepted: dict[int, str],
    fractions: SplitFractions,
) -> DatasetVersion:
    labels, conflicts = label_images(spec, images, accepted)
    items, regrouped = build_items(spec, images, labels, fractions)
    return DatasetVersion(
        dataset=spec.name, digest=dataset_digest(spec, items), classes=tuple(spec.labels),
        collections=spec.collections, items=tuple(items), conflicts=tuple(conflicts),
        created_at=datetime.now(UTC).isoformat(timespec="seconds"), regrouped=tuple(regrouped),
    )  # fmt: skip


def _payload(version: DatasetVersion) -> dict[str, Any]:
    return {
        "dataset": version.dataset, "digest": version.digest, "version": version.version,
        "classes": list(version.classes), "collections": version.collections,
        "conflicts": list(version.conflicts), "created_at": version.created_at,
        "counts": version.counts(), "split_totals": version.split_totals(),
        "source_totals": version.source_totals(), "regrouped": list(version.regrouped),
        "items": [
            {"image_id": i.image_id, "label": i.label, "split": i.split.value, "group": i.group,
             "source": i.source.value}
            for i in version.items
        ],
    }  # fmt: skip


def write_version(layout: Layout, version: DatasetVersion) -> bool:
    """Write the version (once) and make it `latest`; False when that version existed."""
    key = layout.dataset_version(version.dataset, version.version)
    new = not layout.store.exists(key)
    payload = _payload(version)
    if new:
        layout.store.write_json(key, payload)
    layout.store.write_json(layout.dataset_latest(version.dataset), payload)
    return new


def read_version(layout: Layout, name: str, version: str | None = None) -> DatasetVersion:
    """A version of dataset `name` (the latest by default); MissingInputError names it."""
    key = layout.dataset_latest(name) if version is None else layout.dataset_version(name, version)
    data = layout.store.read_json(key)
    items = tuple(
        DatasetItem(int(i["image_id"]), str(i["label"]), Split(i["split"]), str(i["group"]),
                    LabelSource(i["source"]))
        for i in data["items"]
    )  # fmt: skip
    return DatasetVersion(
        dataset=data["dataset"], digest=data["digest"], classes=tuple(data["classes"]),
        collections={str(k): int(v) for k, v in data["collections"].items()}, items=items,
        conflicts=tuple(data["conflicts"]), created_at=data["created_at"],
        regrouped=tuple(data.get("regrouped", ())),
    )  # fmt: skip
