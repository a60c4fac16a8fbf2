"""Which weights suggested a dataset version's labels: the one owner of that provenance.

crawlr membership is people's labelling; an accepted suggestion is a zero-shot model's guess
that a person accepted, and a model with random weights (the offline demo) guesses at random.
A version counts its items by that (`LabelProvenance.of`) and records the counts under the
names below; the fine-tune tags its `dataset-<name>` model version with them, and whatever
shows that model or its answers reads them back (`label_weights`, `labels_notice`), so a
model trained on random-weight suggestions is labelled as such wherever its output is shown.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum

from ml_platform.domain import WeightsStatus
from ml_platform.model_registry.dataset.naming import DatasetTag
from ml_platform.services.datasets import DatasetItem, LabelSource

# The same names in a version, its asset metadata, the run and the model version's tags;
# "N of M" counts every split's labels.
LABEL_WEIGHTS = DatasetTag.LABEL_WEIGHTS.value
FROM_RANDOM = DatasetTag.LABELS_FROM_RANDOM_SUGGESTIONS.value
FROM_UNRECORDED = DatasetTag.LABELS_FROM_UNRECORDED_SUGGESTIONS.value  # accepted before kept


class LabelWeights(StrEnum):
    """The weights behind a version's labels, the worst that applies (tag `label_weights`)."""

    RANDOM = "random"  # some labels came from random-weight suggestions: they carry no meaning
    UNKNOWN = "unknown"  # some from suggestions whose weights were not recorded
    PRETRAINED = "pretrained"  # some from suggestions, all made with pretrained weights
    NONE = "none"  # no label came from a suggestion: all are crawlr membership


@dataclass(frozen=True)
class LabelProvenance:
    """How many of a version's `total` labels came from which suggestions."""

    total: int
    random: int
    unrecorded: int
    pretrained: int

    @classmethod
    def of(cls, items: Iterable[DatasetItem]) -> LabelProvenance:
        listed = list(items)
        weights = [i.suggested_with for i in listed if i.source is LabelSource.ACCEPTED_SUGGESTION]
        return cls(len(listed), weights.count(WeightsStatus.RANDOM), weights.count(None),
                   weights.count(WeightsStatus.PRETRAINED))  # fmt: skip

    @property
    def weights(self) -> LabelWeights:
        if self.random:
            return LabelWeights.RANDOM
        if self.unrecorded:
            return LabelWeights.UNKNOWN
        return LabelWeights.PRETRAINED if self.pretrained else LabelWeights.NONE

    def tags(self) -> dict[str, str]:
        """The version's, its fine-tune run's and its model version's record of it."""
        return {
            LABEL_WEIGHTS: self.weights.value,
            FROM_RANDOM: f"{self.random} of {self.total}",
            FROM_UNRECORDED: f"{self.unrecorded} of {self.total}",
        }


def label_weights(tags: Mapping[str, str]) -> LabelWeights:
    """A model version's label weights; `unknown` when it was tagged before they were."""
    return LabelWeights(tags.get(LABEL_WEIGHTS, LabelWeights.UNKNOWN.value))


def labels_notice(tags: Mapping[str, str]) -> str | None:
    """One sentence for whoever reads the model's output when its labels are not people's or a
    pretrained model's; None when they are."""
    weights = label_weights(tags)
    if weights is LabelWeights.RANDOM:
        return (f"from random-weight suggestions ({tags[FROM_RANDOM]} labels): they carry no "
                "meaning; accept suggestions made with pretrained weights, or label the images "
                "in crawlr, and fine-tune again")  # fmt: skip
    if weights is LabelWeights.UNKNOWN and FROM_UNRECORDED in tags:
        return (f"from suggestions whose weights were not recorded ({tags[FROM_UNRECORDED]} "
                "labels); accept them again and fine-tune to record them")  # fmt: skip
    if weights is LabelWeights.UNKNOWN:
        return "not recorded: the model was registered before label provenance was tagged"
    return None
