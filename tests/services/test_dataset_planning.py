"""The dataset planner's comparisons: a token that moves with membership, and only then."""

from __future__ import annotations

from ml_platform.services.dataset_planning import membership_token, plan_finetunes, plan_versions
from ml_platform.services.datasets import DatasetSpec

SPEC = DatasetSpec("pets", (("cat", 1), ("dog", 2)))
LABELS = {1: (5, 0, 123), 2: (4, 1, 456), 3: (9, 0, 789)}


def test_token_moves_with_class_labels_accepted_labels_and_catalogs_only() -> None:
    base = membership_token(SPEC, LABELS, {}, {"b1": 10})
    assert base == membership_token(SPEC, dict(LABELS), {}, {"b1": 10})
    assert base == membership_token(SPEC, {**LABELS, 3: (10, 0, 1)}, {}, {"b1": 10})  # not a class
    assert base != membership_token(SPEC, {**LABELS, 2: (5, 1, 999)}, {}, {"b1": 10})
    assert base != membership_token(SPEC, LABELS, {7: "cat"}, {"b1": 10})
    assert membership_token(SPEC, LABELS, {7: "cat"}, {}) != membership_token(
        SPEC, LABELS, {7: "dog"}, {}
    )
    assert base != membership_token(SPEC, LABELS, {}, {"b1": 11})  # a download retry landed
    renamed = DatasetSpec("pets", (("kitten", 1), ("dog", 2)))
    assert base != membership_token(renamed, LABELS, {}, {"b1": 10})


def test_versions_planned_for_new_and_changed_datasets_only() -> None:
    runs = plan_versions({"a": "t1", "b": "t2", "c": "t3"}, {"a": "t1", "b": "old"})
    assert [(r.dataset, r.reason) for r in runs] == [
        ("b", "membership changed since the last version"),
        ("c", "no version yet"),
    ]
    assert runs[0].run_key == "dataset_version:b:t2"  # a retried tick asks for the same run


def test_finetunes_planned_where_the_newest_version_is_untrained() -> None:
    runs = plan_finetunes({"a": "v1", "b": "v2", "c": "v3"}, {"a": "v1", "b": "v1"})
    assert [(r.dataset, r.run_key) for r in runs] == [
        ("b", "finetune:b:v2"),
        ("c", "finetune:c:v3"),
    ]
    assert "new version v2 (last v1)" in runs[0].reason and runs[1].reason == "never fine-tuned"
