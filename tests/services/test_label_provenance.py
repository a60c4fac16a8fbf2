"""services.label_provenance: a version counts the labels random-weight suggestions made, and
whatever shows its model says so from the model's tags."""

from __future__ import annotations

from pathlib import Path

import pytest

from ml_platform.domain import WeightsStatus
from ml_platform.services.dataset_versions import make_version, read_version, write_version
from ml_platform.services.datasets import LabelSource, SplitFractions, parse_dataset_specs
from ml_platform.services.label_provenance import (
    LabelProvenance,
    LabelWeights,
    label_weights,
    labels_notice,
)
from ml_platform.settings import Settings
from ml_platform.store.layout import Layout
from tests.finetune_home import BLUE, RED, coloured_images

SPEC = parse_dataset_specs({"datasets": {"colours": {"classes": {"red": RED, "blue": BLUE}}}})[
    "colours"
]
ACCEPTED = {25: "blue", 26: "red", 27: "red"}  # the three images in no collection
RANDOM, PRETRAINED = WeightsStatus.RANDOM, WeightsStatus.PRETRAINED


@pytest.mark.parametrize(
    ("accepted", "weights", "expected"),
    [
        ({}, {}, LabelProvenance(24, 0, 0, 0)),
        (ACCEPTED, {25: RANDOM, 26: PRETRAINED}, LabelProvenance(27, 1, 1, 1)),
        (ACCEPTED, {25: PRETRAINED, 26: PRETRAINED, 27: PRETRAINED}, LabelProvenance(27, 0, 0, 3)),
        (ACCEPTED, {25: PRETRAINED, 26: PRETRAINED}, LabelProvenance(27, 0, 1, 2)),
    ],
)
def test_a_version_counts_its_labels_by_the_weights_that_suggested_them(
    tmp_path: Path,
    accepted: dict[int, str],
    weights: dict[int, WeightsStatus],
    expected: LabelProvenance,
) -> None:
    version = make_version(SPEC, coloured_images(tmp_path), accepted, SplitFractions(), weights)
    assert version.label_provenance() == expected
    suggested = [i for i in version.items if i.source is LabelSource.ACCEPTED_SUGGESTION]
    assert {i.image_id: i.suggested_with for i in suggested} == {
        i: weights.get(i) for i in accepted
    }
    assert all(i.suggested_with is None for i in version.items if i not in suggested)


@pytest.mark.parametrize(
    ("provenance", "weights"),
    [
        (LabelProvenance(27, 1, 1, 1), LabelWeights.RANDOM),
        (LabelProvenance(27, 0, 1, 2), LabelWeights.UNKNOWN),
        (LabelProvenance(27, 0, 0, 3), LabelWeights.PRETRAINED),
        (LabelProvenance(24, 0, 0, 0), LabelWeights.NONE),
    ],
)
def test_the_worst_weights_behind_any_label_name_the_version(
    provenance: LabelProvenance, weights: LabelWeights
) -> None:
    assert provenance.weights is weights
    assert label_weights(provenance.tags()) is weights


def test_the_version_records_its_provenance_and_keeps_its_digest(tmp_path: Path) -> None:
    images = coloured_images(tmp_path)
    plain = make_version(SPEC, images, ACCEPTED, SplitFractions())
    version = make_version(SPEC, images, ACCEPTED, SplitFractions(), {25: RANDOM, 26: RANDOM})
    assert version.digest == plain.digest  # the labels make the version, not who suggested them
    layout = Layout.for_settings(Settings(home=tmp_path))
    write_version(layout, version)
    assert read_version(layout, "colours").items == version.items
    stored = layout.store.read_json(layout.dataset_latest("colours"))
    assert stored["label_weights"] == "random"
    assert stored["labels_from_random_suggestions"] == "2 of 27"
    assert stored["labels_from_unrecorded_suggestions"] == "1 of 27"
    by_id = {i["image_id"]: i for i in stored["items"]}
    assert by_id[25]["suggested_with"] == "random" and by_id[27]["suggested_with"] is None
    assert "suggested_with" not in by_id[1]  # crawlr membership: no suggestion


def test_a_model_says_when_its_labels_came_from_random_weights() -> None:
    random = labels_notice(LabelProvenance(25, 1, 0, 0).tags())
    assert random is not None
    assert random.startswith("from random-weight suggestions (1 of 25 labels)")
    unrecorded = labels_notice(LabelProvenance(25, 0, 1, 0).tags())
    assert unrecorded is not None and "weights were not recorded (1 of 25 labels)" in unrecorded
    assert labels_notice(LabelProvenance(25, 0, 0, 1).tags()) is None
    assert labels_notice(LabelProvenance(24, 0, 0, 0).tags()) is None


def test_a_model_tagged_before_label_provenance_says_it_is_not_recorded() -> None:
    assert label_weights({}) is LabelWeights.UNKNOWN
    assert "registered before label provenance was tagged" in (labels_notice({}) or "")
