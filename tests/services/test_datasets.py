"""services.datasets and dataset_versions: the YAML, labels, the grouped split, the digest."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from ml_platform.domain import WeightsStatus
from ml_platform.services.dataset_versions import make_version, read_version, write_version
from ml_platform.services.datasets import (
    LabelSource,
    Split,
    SplitFractions,
    parse_dataset_specs,
    split_counts,
    unlabelled_images,
)
from ml_platform.services.label_suggestions import Suggestion, SuggestionSet, to_accept
from ml_platform.settings import Settings
from ml_platform.store.accepted_labels import AcceptedLabels
from ml_platform.store.blobs import MissingInputError
from ml_platform.store.layout import Layout
from ml_platform.store.metadata import MetadataDB
from tests.finetune_home import BLUE, RED, coloured_images

SPEC = parse_dataset_specs({"datasets": {"colours": {"classes": {"red": RED, "blue": BLUE}}}})[
    "colours"
]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({}, "top-level `datasets:`"),
        ({"datasets": {"Bad Name": {"classes": {"a": 1, "b": 2}}}}, "must be lower-case"),
        ({"datasets": {"d": {"classes": {"a": 1}}}}, "at least 2 labels"),
        ({"datasets": {"d": {"classes": {"a": 1, "b": "x"}}}}, "need a crawlr collection id"),
        ({"datasets": {"d": {"classes": {"a": 1, "b": 1}}}}, "for two classes"),
    ],
)
def test_bad_dataset_declarations_say_what_is_wrong(data: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_dataset_specs(data)


@pytest.mark.parametrize(("n", "expected"), [(1, (0, 0)), (3, (1, 1)), (10, (2, 2)), (20, (3, 3))])
def test_every_split_gets_a_group_from_three_groups(n: int, expected: tuple[int, int]) -> None:
    assert split_counts(n, SplitFractions()) == expected


def test_split_is_grouped_by_pet_stratified_and_deterministic(tmp_path: Path) -> None:
    images = coloured_images(tmp_path)
    first = make_version(SPEC, images, {}, SplitFractions())
    again = make_version(SPEC, list(reversed(images)), {}, SplitFractions())
    assert first.digest == again.digest and first.items == again.items
    splits_of_pet: dict[str, set[Split]] = {}
    for item in first.items:
        splits_of_pet.setdefault(item.group, set()).add(item.split)
    assert all(len(s) == 1 for s in splits_of_pet.values())
    assert all(min(c.values()) >= 1 for c in first.counts().values())
    assert first.source_totals() == {"crawlr": 24, "accepted_suggestion": 0}


def test_membership_change_and_accepted_label_make_new_versions(tmp_path: Path) -> None:
    images = coloured_images(tmp_path)
    base = make_version(SPEC, images, {}, SplitFractions())
    moved = [replace(e, image=replace(e.image, collection_ids=(BLUE,))) if e.image.id == 1 else e
             for e in images]  # fmt: skip
    assert make_version(SPEC, moved, {}, SplitFractions()).digest != base.digest
    accepted = make_version(SPEC, images, {25: "blue", 1: "blue"}, SplitFractions())
    items = {i.image_id: i for i in accepted.items}
    assert items[25].source is LabelSource.ACCEPTED_SUGGESTION and items[25].label == "blue"
    assert items[1].label == "red" and items[1].source is LabelSource.CRAWLR  # crawlr wins
    assert accepted.digest != base.digest


def test_an_image_in_two_classes_is_a_conflict_not_a_label(tmp_path: Path) -> None:
    images = coloured_images(tmp_path)
    both = [replace(e, image=replace(e.image, collection_ids=(RED, BLUE))) if e.image.id == 2
            else e for e in images]  # fmt: skip
    version = make_version(SPEC, both, {}, SplitFractions())
    assert version.conflicts == (2,) and 2 not in {i.image_id for i in version.items}
    assert [e.image.id for e in unlabelled_images(SPEC, both, {})] == [25, 26, 27]


def test_versions_are_written_once_and_read_back(tmp_path: Path) -> None:
    version = make_version(SPEC, coloured_images(tmp_path), {}, SplitFractions())
    layout = Layout.for_settings(Settings(home=tmp_path))
    assert write_version(layout, version) is True
    assert write_version(layout, version) is False
    assert read_version(layout, "colours").items == version.items
    with pytest.raises(MissingInputError, match="the `datasets` asset") as caught:
        read_version(layout, "other")
    assert caught.value.url.endswith("data/datasets/other/latest.json")


def test_accepting_suggestions_keeps_them_marked_in_the_store(tmp_path: Path) -> None:
    found = SuggestionSet("colours", "clip:tiny", "random", 0.3, (
        Suggestion(25, (("red", 0.9), ("blue", 0.1))), Suggestion(26, (("blue", 0.4),)),
        Suggestion(27, ()),
    ))  # fmt: skip
    chosen = to_accept(found, None, min_confidence=0.5)
    assert [(a.image_id, a.label) for a in chosen] == [(25, "red")]
    store = AcceptedLabels(MetadataDB(f"sqlite:///{tmp_path / 'metadata.sqlite'}"))
    store.accept(chosen + to_accept(found, [26], 0.0))
    rows = store.for_dataset("colours")
    assert store.labels("colours") == {25: "red", 26: "blue"}
    assert {r.source for r in rows} == {"label_suggestion"} and rows[0].model == "clip:tiny"
    # the suggestions came from random weights: every accepted label keeps that
    assert store.suggested_with("colours") == {25: WeightsStatus.RANDOM, 26: WeightsStatus.RANDOM}


def test_a_class_with_too_few_pets_is_split_by_image_and_says_so(tmp_path: Path) -> None:
    """Two pets a class cannot give a val and a test pet: the class is split by image."""
    version = make_version(SPEC, coloured_images(tmp_path, per_class=4), {}, SplitFractions())
    assert version.regrouped == ("blue", "red")
    assert all(c == {"train": 2, "val": 1, "test": 1} for c in version.counts().values())
    assert version.short_classes() == {}
    layout = Layout.for_settings(Settings(home=tmp_path))
    write_version(layout, version)
    assert read_version(layout, "colours").regrouped == ("blue", "red")


def test_a_class_too_small_even_by_image_is_named_with_its_counts(tmp_path: Path) -> None:
    version = make_version(SPEC, coloured_images(tmp_path, per_class=2), {}, SplitFractions())
    assert version.short_classes() == {
        "red": {"train": 2, "val": 0, "test": 0},
        "blue": {"train": 2, "val": 0, "test": 0},
    }
    assert version.groups() == {"red": 2, "blue": 2}


def test_a_class_with_enough_pets_keeps_its_pet_groups(tmp_path: Path) -> None:
    version = make_version(SPEC, coloured_images(tmp_path), {}, SplitFractions())
    assert version.regrouped == () and version.groups() == {"red": 6, "blue": 6}
