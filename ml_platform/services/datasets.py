"""Labelled datasets: classes declared in YAML, images from crawlr collections, versioned splits.

The datasets file (`ML_PLATFORM_DATASETS_FILE`, default `<home>/datasets.yaml`) reads

    datasets:
      pets:
        classes: {beagle: 12, boxer: 13}   # label -> crawlr collection id

A class's images are its collection's members in the image catalog. Images in no class can
get a label by accepting a zero-shot suggestion (`store.accepted_labels`); those items are
marked `accepted_suggestion`, and crawlr membership wins whenever both exist. An image in two
classes is ambiguous and left out (listed as a conflict).

A version is a deterministic train/val/test split grouped by pet (one pet's photos never
straddle splits; an image without a pet is its own group), stratified by class, and a digest
over the classes and every (image, label, split, source): a changed membership or an accepted
label makes a new version. A class with too few groups for a validation and a test group (3)
is split by image instead (its pets may then straddle splits: the version lists it under
`regrouped`); a class with too few images even then has no validation image, which the
`datasets` asset's blocking check reports (`short_classes`).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from ml_platform.config_files import ConfigFileError, read_yaml, unknown_keys
from ml_platform.domain import IngestedImage, WeightsStatus
from ml_platform.settings import Settings

NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")


class Split(StrEnum):
    TRAIN = "train"
    VAL = "val"
    TEST = "test"


class LabelSource(StrEnum):
    """Where an item's label comes from: crawlr membership, or an accepted AI suggestion."""

    CRAWLR = "crawlr"
    ACCEPTED_SUGGESTION = "accepted_suggestion"


@dataclass(frozen=True)
class SplitFractions:
    val: float = 0.15
    test: float = 0.15

    def __post_init__(self) -> None:
        if self.val < 0 or self.test < 0 or self.val + self.test >= 1:
            raise ValueError(
                f"split fractions val={self.val}, test={self.test} must be >= 0 and leave room "
                "for training (val + test < 1)"
            )


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    classes: tuple[tuple[str, int], ...]  # (label, collection id) in file order

    @property
    def labels(self) -> list[str]:
        return [label for label, _ in self.classes]

    @property
    def collections(self) -> dict[str, int]:
        return dict(self.classes)


@dataclass(frozen=True)
class DatasetItem:
    image_id: int
    label: str
    split: Split
    group: str
    source: LabelSource
    suggested_with: WeightsStatus | None = None  # an accepted suggestion's model's weights


def datasets_file(settings: Settings) -> Path:
    configured = settings.datasets_file
    return configured.expanduser() if configured else settings.resolved_home / "datasets.yaml"


def read_dataset_specs(path: Path) -> dict[str, DatasetSpec]:
    if not path.is_file():
        raise FileNotFoundError(
            f"datasets file {path} not found; write one (datasets: {{<name>: {{classes: "
            "{<label>: <collection id>}}}}) or set ML_PLATFORM_DATASETS_FILE"
        )
    return parse_dataset_specs(read_yaml(path, "datasets file"), f"datasets file {path}")


def parse_dataset_specs(data: Any, where: str = "datasets file") -> dict[str, DatasetSpec]:
    datasets = data.get("datasets") if isinstance(data, dict) else None
    if not isinstance(datasets, dict):
        raise ConfigFileError(f"{where}: expected a top-level `datasets:` mapping")
    unknown_keys(data, {"datasets"}, where)
    return {str(name): _parse_spec(name, body, where) for name, body in datasets.items()}


def _parse_spec(name: Any, body: Any, where: str) -> DatasetSpec:
    if not isinstance(name, str) or not NAME_PATTERN.match(name):
        raise ConfigFileError(
            f"{where}: dataset name {name!r} must be lower-case letters, digits, '-' or '_' "
            "(it names a Dagster partition and the `dataset-<name>` model)"
        )
    classes = body.get("classes") if isinstance(body, dict) else None
    if not isinstance(classes, dict) or len(classes) < 2:
        raise ConfigFileError(f"{where}: dataset {name!r} needs `classes:` with at least 2 labels")
    unknown_keys(body, {"classes"}, f"{where}: dataset {name!r}")
    labels = [label for label in classes if not isinstance(label, str) or not label.strip()]
    if labels:
        raise ConfigFileError(
            f'{where}: dataset {name!r} labels {labels} must be text (quote them: "1")'
        )
    pairs = tuple(classes.items())
    bad = [label for label, cid in pairs if type(cid) is not int or cid < 0]  # not `true`
    if bad:
        raise ConfigFileError(
            f"{where}: dataset {name!r} classes {bad} need a crawlr collection id (a number "
            f">= 0), got {[classes[b] for b in bad]}"
        )
    repeated = [cid for cid, n in Counter(cid for _, cid in pairs).items() if n > 1]
    if repeated:
        raise ConfigFileError(
            f"{where}: dataset {name!r} uses collections {repeated} for two classes"
        )
    return DatasetSpec(name, pairs)


def require_spec(specs: Mapping[str, DatasetSpec], name: str) -> DatasetSpec:
    if name not in specs:
        raise KeyError(f"dataset {name!r} is not declared; known: {sorted(specs)}")
    return specs[name]


def group_of(image: IngestedImage) -> str:
    pet = image.image.pet_id
    return f"pet:{pet}" if pet is not None else f"image:{image.image.id}"


def label_images(
    spec: DatasetSpec, images: Sequence[IngestedImage], accepted: Mapping[int, str]
) -> tuple[dict[int, tuple[str, LabelSource]], list[int]]:
    """image id -> (label, source), and the ids that crawlr puts in two classes."""
    by_collection = {cid: label for label, cid in spec.classes}
    labels: dict[int, tuple[str, LabelSource]] = {}
    conflicts: list[int] = []
    for entry in images:
        found = {by_collection[c] for c in entry.image.collection_ids if c in by_collection}
        if len(found) > 1:
            conflicts.append(entry.image.id)
        elif found:
            labels[entry.image.id] = (found.pop(), LabelSource.CRAWLR)
        elif accepted.get(entry.image.id) in spec.labels:
            labels[entry.image.id] = (accepted[entry.image.id], LabelSource.ACCEPTED_SUGGESTION)
    return labels, sorted(conflicts)


def unlabelled_images(
    spec: DatasetSpec, images: Sequence[IngestedImage], accepted: Mapping[int, str]
) -> list[IngestedImage]:
    """Images in no class of the dataset and without an accepted label."""
    labels, conflicts = label_images(spec, images, accepted)
    return [e for e in images if e.image.id not in labels and e.image.id not in conflicts]


def _hash_order(dataset: str, group: str) -> str:
    return hashlib.sha256(f"{dataset}/{group}".encode()).hexdigest()


def split_counts(n: int, fractions: SplitFractions) -> tuple[int, int]:
    """(test, val) group counts for a class of `n` groups: each split gets one from 3 groups."""
    test, val = round(n * fractions.test), round(n * fractions.val)
    if n >= 3:
        test, val = max(test, 1 if fractions.test else 0), max(val, 1 if fractions.val else 0)
    test = min(test, max(n - 1, 0))
    return test, min(val, max(n - test - 1, 0))


def assign_splits(
    dataset: str, groups: Mapping[str, str], fractions: SplitFractions
) -> dict[str, Split]:
    """group -> split: per class (the group's label), groups in hash order; test, val, train."""
    by_label: dict[str, list[str]] = defaultdict(list)
    for group, label in groups.items():
        by_label[label].append(group)
    out: dict[str, Split] = {}
    for members in by_label.values():
        ordered = sorted(members, key=lambda g: _hash_order(dataset, g))
        test, val = split_counts(len(ordered), fractions)
        for index, group in enumerate(ordered):
            out[group] = Split.TEST if index < test else Split.VAL if index < test + val else (
                Split.TRAIN)  # fmt: skip
    return out


def build_items(
    spec: DatasetSpec,
    images: Sequence[IngestedImage],
    labels: Mapping[int, tuple[str, LabelSource]],
    fractions: SplitFractions,
) -> tuple[list[DatasetItem], list[str]]:
    """Every labelled image with its split (a pet's group takes its most common label), and
    the classes grouped by image because their groups were too few to split."""
    groups = {e.image.id: group_of(e) for e in images if e.image.id in labels}
    short = short_classes(_group_labels(groups, labels), fractions)
    groups = {i: f"image:{i}" if labels[i][0] in short else g for i, g in groups.items()}
    splits = assign_splits(spec.name, _group_labels(groups, labels), fractions)
    items = sorted(
        (DatasetItem(i, labels[i][0], splits[g], g, labels[i][1]) for i, g in groups.items()),
        key=lambda item: item.image_id,
    )
    return items, sorted(short)


def _group_labels(
    groups: Mapping[int, str], labels: Mapping[int, tuple[str, LabelSource]]
) -> dict[str, str]:
    votes: dict[str, Counter[str]] = defaultdict(Counter)
    for image_id, group in groups.items():
        votes[group][labels[image_id][0]] += 1
    return {g: min(c.items(), key=lambda kv: (-kv[1], kv[0]))[0] for g, c in votes.items()}


def short_classes(group_label: Mapping[str, str], fractions: SplitFractions) -> set[str]:
    """Classes whose groups cannot fill a validation and a test split (`split_counts`);
    a class already one group per image gains nothing by regrouping and is left out."""
    per_class = Counter(group_label.values())
    with_pets = {c for g, c in group_label.items() if not g.startswith("image:")}
    return {c for c, n in per_class.items() if not _fills_splits(n, fractions) and c in with_pets}


def _fills_splits(groups: int, fractions: SplitFractions) -> bool:
    test, val = split_counts(groups, fractions)
    return (val > 0 or not fractions.val) and (test > 0 or not fractions.test)


def dataset_digest(spec: DatasetSpec, items: Sequence[DatasetItem]) -> str:
    payload = {
        "classes": [list(pair) for pair in spec.classes],
        "items": [[i.image_id, i.label, i.split.value, i.source.value] for i in items],
    }
    return hashlib.sha256(json.dumps(payload, separators=(",", ":")).encode()).hexdigest()
