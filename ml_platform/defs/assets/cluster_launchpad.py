"""The cluster assets' launchpad configs: clustering limits, hero weights and quality floor."""

import dagster as dg

from ml_platform.defs.knobs import knobs_of
from ml_platform.learning.clustering import ClusterConfig
from ml_platform.learning.hero import HeroFloor, HeroWeights


class ClusterAssetConfig(knobs_of(ClusterConfig)):  # type: ignore[misc]
    """`learning.clustering.ClusterConfig` in the launchpad: method, limits, thresholds."""

    def cluster_config(self) -> ClusterConfig:
        config: ClusterConfig = self.build(ClusterConfig)
        return config


class HeroWeightsKnobs(knobs_of(HeroWeights)):  # type: ignore[misc]
    """`learning.hero.HeroWeights`: the weight of each score part and the recency half-life."""


class HeroFloorKnobs(knobs_of(HeroFloor)):  # type: ignore[misc]
    """`learning.hero.HeroFloor`: the least pixel quality of a hero; 0 admits everything."""


class HeroConfig(dg.Config):  # type: ignore[misc]
    """Shown in the launchpad: heroes per cluster, the near-duplicate cosine, and the nested
    score weights and quality floor (from learning.hero)."""

    top_n: int = 3
    duplicate_threshold: float = 0.97
    weights: HeroWeightsKnobs = HeroWeightsKnobs()
    floor: HeroFloorKnobs = HeroFloorKnobs()

    def score_weights(self) -> HeroWeights:
        weights: HeroWeights = self.weights.build(HeroWeights)
        return weights

    def quality_floor(self) -> HeroFloor:
        floor: HeroFloor = self.floor.build(HeroFloor)
        return floor
