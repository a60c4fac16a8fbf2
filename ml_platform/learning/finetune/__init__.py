"""Fine-tuning image classifiers end to end (pure ML code: models, augmentation, training).

`config` (what to train), `models` (EfficientNet-Lite0 and transformers architectures with
their base weights), `net` (the trained module), `preprocessing`, `augment`, `train`.
"""

from importlib import import_module
from typing import TYPE_CHECKING, Any

from ml_platform.learning.finetune.config import Augmentation, FinetuneConfig, ModelName

if TYPE_CHECKING:
    from ml_platform.learning.finetune.architectures import (
        Architecture,
        BaseWeights,
        BuiltModel,
        WeightsUnavailableError,
        build_model,
        rebuild,
    )
    from ml_platform.learning.finetune.train import (
        EpochMetrics,
        FinetuneResult,
        LabelledImages,
        evaluate,
        finetune,
        predict_proba,
    )

# What imports torch is read on first use, so that `config` (what the CLI and the Definitions
# read) costs no torch import: `ml-platform serve` and the Dagster code server stay light.
_TORCH_MODULES = {
    **dict.fromkeys(
        ("Architecture", "BaseWeights", "BuiltModel", "WeightsUnavailableError", "build_model",
         "rebuild"), "architectures",
    ),
    **dict.fromkeys(
        ("EpochMetrics", "FinetuneResult", "LabelledImages", "evaluate", "finetune",
         "predict_proba"), "train",
    ),
}  # fmt: skip


def __getattr__(name: str) -> Any:
    module = _TORCH_MODULES.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f"{__name__}.{module}"), name)


__all__ = [
    "Architecture",
    "Augmentation",
    "BaseWeights",
    "BuiltModel",
    "EpochMetrics",
    "FinetuneConfig",
    "FinetuneResult",
    "LabelledImages",
    "ModelName",
    "WeightsUnavailableError",
    "build_model",
    "evaluate",
    "finetune",
    "predict_proba",
    "rebuild",
]
