"""Dataset versions: the labelled, split items of one dataset at one moment, with their digest.

Written by the `datasets` asset under `<data>/datasets/<name>/` as `versions/<version>.json`
plus `latest.json`; read by `finetuned_classifier` and the CLI. `version` is the digest's
first 12 hex characters. Each accepted suggestion keeps the weights that suggested it
(`suggested_with`), and the version counts them (`services.label_provenance`); they are not
part of the digest (the labels are).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from ml_platform.domain import IngestedImage, WeightsStatus
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
from ml_platform.services.label_provenance import LabelProvenance
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

    def label_provenance(self) -> LabelProvenance:
        return LabelProvenance.of(self.items)


def make_version(
    spec: DatasetSpec,
    images: list[IngestedImage],
    accepted: dict[int, str],
    fractions: SplitFractions,
    suggested_with: Mapping[int, WeightsStatus | None] | None = None,
) -> DatasetVersion:
    """`suggested_with`: the weights that suggested each accepted label (absent: unknown)."""
    labels, conflicts = label_images(spec, images, accepted)
    items, regrouped = build_items(spec, images, labels, fractions)
    items = _with_weights(items, suggested_with or {})
    return DatasetVersion(
        dataset=spec.name, digest=dataset_digest(spec, items), classes=tuple(spec.labels),
        collections=spec.collections, items=tuple(items), conflicts=tuple(conflicts),
        created_at=datetime.now(UTC).isoformat(timespec="seconds"), regrouped=tuple(regrouped),
    )  # fmt: skip


def _with_weights(
    items: list[DatasetItem], weights: Mapping[int, WeightsStatus | None]
) -> list[DatasetItem]:
    return [
        replace(i, suggested_with=weights.get(i.image_id))
        if i.source is LabelSource.ACCEPTED_SUGGESTION else i
        for i in items
    ]  # fmt: skip


def _item(item: DatasetItem) -> dict[str, Any]:
    out = {"image_id": item.image_id, "label": item.label, "split": item.split.value,
           "group": item.group, "source": item.source.value}  # fmt: skip
    if item.source is LabelSource.ACCEPTED_SUGGESTION:
        out["suggested_with"] = item.suggested_with.value if item.suggested_with else None
    return out


def _payload(version: DatasetVersion) -> dict[str, Any]:
    return {
        "dataset": version.dataset, "digest": version.digest, "version": version.version,
        "classes": list(version.classes), "collections": version.collections,
        "conflicts": list(version.conflicts), "created_at": version.created_at,
        "counts": version.counts(), "split_totals": version.split_totals(),
        "source_totals": version.source_totals(), "regrouped": list(version.regrouped),
        **version.label_provenance().tags(),
        "items": [_item(i) for i in version.items],
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
                    LabelSource(i["source"]), _weights(i.get("suggested_with")))
        for i in data["items"]
    )  # fmt: skip
    return DatasetVersion(
        dataset=data["dataset"], digest=data["digest"], classes=tuple(data["classes"]),
        collections={str(k): int(v) for k, v in data["collections"].items()}, items=items,
        conflicts=tuple(data["conflicts"]), created_at=data["created_at"],
        regrouped=tuple(data.get("regrouped", ())),
    )  # fmt: skip


def _weights(value: str | None) -> WeightsStatus | None:
    return WeightsStatus(value) if value else None
