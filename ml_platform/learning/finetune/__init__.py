"""Fine-tuning image classifiers end to end (pure ML code: models, augmentation, training).

`config` (what to train), `models` (EfficientNet-Lite0 and transformers architectures with
their base weights), `net` (the trained module), `preprocessing`, `augment`, `train`.
"""

from ml_platform.learning.finetune.architectures import (
    Architecture,
    BaseWeights,
    BuiltModel,
    WeightsUnavailableError,
    build_model,
    rebuild,
)
from ml_platform.learning.finetune.config import Augmentation, FinetuneConfig, ModelName
from ml_platform.learning.finetune.train import (
    EpochMetrics,
    FinetuneResult,
    LabelledImages,
    evaluate,
    finetune,
    predict_proba,
)

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
