"""`collection_classifier`'s launchpad config: the training knobs and the promotion gate's."""

import dagster as dg

from ml_platform.defs.knobs import knobs_of
from ml_platform.learning.training import TrainingConfig


class TrainingKnobs(knobs_of(TrainingConfig)):  # type: ignore[misc]
    """`learning.training.TrainingConfig` in the launchpad: candidates, folds, minimums, seed
    and the treatment of sampled unlabelled negatives."""


class ClassifierConfig(dg.Config):  # type: ignore[misc]
    """Shown in the launchpad: the training knobs (nested, from TrainingConfig), the negative
    sample and the promotion tolerance."""

    training: TrainingKnobs = TrainingKnobs()
    negative_sample_size: int = 20
    promotion_tolerance: float = 0.02

    def training_config(self) -> TrainingConfig:
        config: TrainingConfig = self.training.build(TrainingConfig)
        return config
