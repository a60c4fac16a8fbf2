"""The fine-tuning launchpad config (nested FinetuneConfig knobs) and the shared gate check."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest

from ml_platform.defs.assets.dataset_launchpad import FinetuneAssetConfig, FinetuneKnobs
from ml_platform.defs.assets.registry_links import gate_check
from ml_platform.learning.finetune import Augmentation, FinetuneConfig, ModelName


def test_launchpad_defaults_are_the_pure_configs_and_every_knob_is_shown() -> None:
    assert FinetuneAssetConfig().finetune() == FinetuneConfig()
    shown = set(FinetuneKnobs.model_fields)
    assert {"ema_decay", "warmup_epochs", "label_smoothing", "probe_head"} <= shown


def test_launchpad_values_become_enums_and_are_validated() -> None:
    training = FinetuneKnobs(model_name="convnext_tiny", augmentation="medium", epochs=3)
    config = FinetuneAssetConfig(training=training).finetune()
    assert config.model_name is ModelName.CONVNEXT_TINY
    assert config.augmentation is Augmentation.MEDIUM and config.epochs == 3
    with pytest.raises(ValueError, match="ema_decay must be in"):
        FinetuneAssetConfig(training=FinetuneKnobs(ema_decay=2.0)).finetune()


@pytest.mark.parametrize(
    ("reason", "severity"),
    [("challenger 0.90 < champion 0.95 - 0.02", dg.AssetCheckSeverity.WARN),
     ("failed the sanity check: accuracy 0.1", dg.AssetCheckSeverity.ERROR)],
)  # fmt: skip
def test_a_failed_sanity_check_is_an_error_and_a_kept_champion_a_warning(
    reason: str, severity: dg.AssetCheckSeverity
) -> None:
    result = gate_check("promotion_gate", False, reason, {"model_version": "3"})
    assert result.severity == severity and result.description == reason
    assert result.check_name == "promotion_gate" and not result.passed


def test_a_class_without_a_validation_image_fails_the_blocking_split_check(
    tmp_path: Path,
) -> None:
    from ml_platform.defs.assets.datasets import SPLIT_CHECK, datasets, split_check
    from ml_platform.services.dataset_versions import make_version
    from ml_platform.services.datasets import SplitFractions, parse_dataset_specs
    from tests.finetune_home import BLUE, RED, coloured_images

    spec = parse_dataset_specs({"datasets": {"c": {"classes": {"red": RED, "blue": BLUE}}}})["c"]
    (check,) = [c for c in datasets.check_specs if c.name == SPLIT_CHECK]
    assert check.blocking
    small = split_check(
        make_version(spec, coloured_images(tmp_path / "a", 2), {}, SplitFractions())
    )
    assert not small.passed
    assert "red: 2 train, 0 val from 2 groups" in (small.description or "")
    enough = split_check(
        make_version(spec, coloured_images(tmp_path / "b", 4), {}, SplitFractions())
    )
    assert enough.passed


def test_a_decision_recorded_before_reports_no_training_figures() -> None:
    from ml_platform.defs.assets.dataset_results import finetune_result
    from ml_platform.model_registry.aliases import PromotionDecision
    from ml_platform.model_registry.versions import RegisteredVersion
    from ml_platform.services.finetuning import FinetuneOutcome

    registered = RegisteredVersion("dataset-breeds", "3", "r1", "1", "models:/m-1", "sqlite://")
    why = "version 3 has this dataset version and configuration and was gated: not worse"
    outcome = FinetuneOutcome(
        registered, None, 0.9, PromotionDecision(True, why), "3", None, "base@r"
    )
    result = finetune_result("promotion_gate", outcome, "http://ui", "sqlite://")
    metadata = result.metadata or {}
    assert metadata["trained"] is False and "train_loss" not in metadata
    assert metadata["test_accuracy"] == 0.9
    (check,) = result.check_results or []
    assert check.passed and check.description == why
