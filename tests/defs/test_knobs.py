"""The launchpad configs nest the pure configs: same fields, same defaults, one source."""

from __future__ import annotations

import dataclasses

import dagster as dg
import pytest

from ml_platform.defs.assets.classifier_launchpad import ClassifierConfig, TrainingKnobs
from ml_platform.defs.assets.classifiers import collection_classifier
from ml_platform.defs.assets.cluster_launchpad import ClusterAssetConfig, HeroConfig
from ml_platform.defs.assets.clusters import pet_clusters, pet_heroes
from ml_platform.defs.schedules import RETRAIN_POLICY
from ml_platform.learning.candidates import CandidateName
from ml_platform.learning.clustering import ClusterConfig
from ml_platform.learning.hero import HeroFloor, HeroWeights
from ml_platform.learning.training import TrainingConfig


def schema_fields(asset: dg.AssetsDefinition) -> dict[str, object]:
    """The launchpad's config fields of an asset, nested fields as dicts of theirs."""
    return _fields(asset.op.config_schema.config_type)


def _fields(config_type: object) -> dict[str, object]:
    fields = getattr(config_type, "fields", None) or {}
    return {name: _fields(f.config_type) or None for name, f in fields.items()}


def names(pure: type) -> set[str]:
    return {f.name for f in dataclasses.fields(pure)}


def test_collection_classifier_launchpad_shows_the_training_config_fields_once() -> None:
    fields = schema_fields(collection_classifier)
    assert set(fields["training"]) == names(TrainingConfig)  # type: ignore[arg-type]
    assert not names(TrainingConfig) & set(fields)  # not copied beside the nested form
    assert set(fields) == {"training", "negative_sample_size", "promotion_tolerance"}


def test_cluster_and_hero_launchpads_show_the_pure_fields() -> None:
    assert set(schema_fields(pet_clusters)) == names(ClusterConfig)
    hero = schema_fields(pet_heroes)
    assert set(hero["weights"]) == names(HeroWeights)  # type: ignore[arg-type]
    assert set(hero["floor"]) == names(HeroFloor)  # type: ignore[arg-type]


def test_launchpad_defaults_are_the_pure_defaults() -> None:
    assert ClassifierConfig().training_config() == TrainingConfig()
    assert ClusterAssetConfig().cluster_config() == ClusterConfig()
    assert HeroConfig().score_weights() == HeroWeights()
    assert HeroConfig().quality_floor() == HeroFloor()
    assert RETRAIN_POLICY.min_positives == TrainingConfig().min_positives


def test_a_launchpad_override_reaches_the_pure_config_and_its_checks() -> None:
    config = ClassifierConfig(training=TrainingKnobs(candidates=["mlp"], cv_folds=3))
    assert config.training_config().candidates == (CandidateName.MLP,)
    assert config.training_config().cv_folds == 3
    with pytest.raises(ValueError, match="cv_folds must be >= 2"):
        TrainingKnobs(cv_folds=1).build(TrainingConfig)
    with pytest.raises(ValueError, match="not a valid CandidateName"):
        TrainingKnobs(candidates=["svm-typo"]).build(TrainingConfig)
