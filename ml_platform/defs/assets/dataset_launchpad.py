"""The dataset assets' launchpad configs.

The configs take their defaults from the pure configuration objects (`FinetuneConfig`,
`SuggestionSettings`) and convert back to them, so the CLI, the launchpad and tests share
one set of defaults and one validation.
"""

from __future__ import annotations

from typing import Any

import dagster as dg

from ml_platform.defs.knobs import knobs_of
from ml_platform.learning.finetune import FinetuneConfig
from ml_platform.services.label_suggestions import DEFAULT_THRESHOLDS, SuggestionSettings
from ml_platform.vision.zero_shot import ZeroShotKind

_S = SuggestionSettings()


def _choice(kind: type[Any], value: str, field: str) -> Any:
    try:
        return kind(value)
    except ValueError:
        raise ValueError(f"{field}={value!r}; choose one of {[k.value for k in kind]}") from None


class FinetuneKnobs(knobs_of(FinetuneConfig)):  # type: ignore[misc]
    """`learning.finetune.FinetuneConfig` in the launchpad: architecture and training recipe."""


class FinetuneAssetConfig(dg.Config):  # type: ignore[misc]
    """Shown in the launchpad: the fine-tuning knobs (nested, from FinetuneConfig) and the
    promotion gate's tolerance."""

    training: FinetuneKnobs = FinetuneKnobs()
    promotion_tolerance: float = 0.02

    def finetune(self) -> FinetuneConfig:
        config: FinetuneConfig = self.training.build(FinetuneConfig)
        return config


class LabelSuggestionConfig(dg.Config):  # type: ignore[misc]
    """Shown in the launchpad: zero-shot model, top-k and the threshold of each model."""

    model: str = _S.model.value
    model_id: str | None = None  # None: the clip_model / siglip_model setting
    top_k: int = _S.top_k
    thresholds: dict[str, float] = dict(DEFAULT_THRESHOLDS)
    max_images: int = _S.max_images

    def suggestions(self) -> SuggestionSettings:
        return SuggestionSettings(
            model=_choice(ZeroShotKind, self.model, "model"), top_k=self.top_k,
            thresholds=dict(self.thresholds), max_images=self.max_images,
        )  # fmt: skip
