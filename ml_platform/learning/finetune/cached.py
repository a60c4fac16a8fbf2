"""Fine-tuning the last blocks of an EfficientNet-Lite on cached activations of its trunk.

With `train_blocks` = k the stem and all blocks but the last k are frozen, so their output for
an image never changes: it is computed once (`cache_trunk`: the image, and with augmentation
`augmented_views` random views of the policy drawn once) and every epoch runs only the last k
blocks, the head convolution and the linear head (`LiteTail`) on one of the cached views.
`train.finetune` runs the platform's LP-FT recipe on these `CachedSteps`: a linear probe on
the tail's pooled features (epoch 0), then AdamW with warmup and cosine decay, an EMA of the
weights, selection and early stopping on validation loss. The returned network is the
whole `ClassifierNet`, registrable and served like any other.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray
from PIL import Image

from ml_platform.learning.finetune.architectures import BuiltModel
from ml_platform.learning.finetune.augment import (
    POLICIES,
    AugmentPolicy,
    augmented_pixels,
    evaluation_pixels,
)
from ml_platform.learning.finetune.config import Augmentation, FinetuneConfig
from ml_platform.learning.finetune.epochs import Stepper, finite_mean
from ml_platform.learning.finetune.evaluation import EVAL_BATCH, LabelledImages
from ml_platform.learning.finetune.net import ClassifierNet
from ml_platform.learning.finetune.probe import probe_on_features

log = logging.getLogger(__name__)


class LiteTail(torch.nn.Module):
    """The last blocks of an EfficientNet-Lite `body` from `first`, its head conv and head."""

    def __init__(self, body: torch.nn.Module, first: int) -> None:
        super().__init__()
        self.body = body
        self.first = first

    def pooled(self, x: torch.Tensor) -> torch.Tensor:
        body: Any = self.body  # an efficientnet_lite_pytorch EfficientNet (untyped)
        x = run_blocks(body, x, self.first, len(body._blocks))
        x = body._swish(body._bn1(body._conv_head(x)))
        return torch.nn.functional.adaptive_avg_pool2d(x, 1).flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        body: Any = self.body
        out: torch.Tensor = body._fc(body._dropout(self.pooled(x)))
        return out


def drop_rate(body: Any, idx: int, blocks: int) -> float:
    """The block's stochastic-depth rate, scaled by depth as efficientnet_lite_pytorch does."""
    rate = float(body._global_params.drop_connect_rate or 0.0)
    return rate * idx / blocks


def first_trained_block(net: ClassifierNet, train_blocks: int) -> int:
    return len(getattr(net.body, "_blocks")) - train_blocks  # noqa: B009


def run_blocks(body: Any, x: torch.Tensor, start: int, stop: int) -> torch.Tensor:
    """Blocks `start` .. `stop - 1` of an EfficientNet-Lite body on `x`."""
    blocks = list(body._blocks)
    for idx in range(start, stop):
        x = blocks[idx](x, drop_connect_rate=drop_rate(body, idx, len(blocks)))
    return x


def trunk(body: Any, first: int, pixels: torch.Tensor) -> torch.Tensor:
    """The frozen part: stem and blocks before `first` (eval mode, no gradient)."""
    x: torch.Tensor = body._swish(body._bn0(body._conv_stem(pixels)))
    return run_blocks(body, x, 0, first)


def cached_views(config: FinetuneConfig) -> int:
    """Views per image in the trunk cache: the image, plus the augmented ones."""
    return 1 if config.augmentation is Augmentation.NONE else 1 + config.augmented_views


def image_views(
    image: Image.Image,
    built: BuiltModel,
    policy: AugmentPolicy,
    views: int,
    rng: np.random.Generator,
) -> NDArray[np.float32]:
    """`[views, 3, H, W]`: the evaluation transform, then `views - 1` random views."""
    spec = built.preprocess
    extra = [augmented_pixels(image, spec, policy, rng) for _ in range(views - 1)]
    return np.stack([evaluation_pixels(image, spec), *extra])


def cache_trunk(
    net: ClassifierNet,
    first: int,
    data: LabelledImages,
    built: BuiltModel,
    views: int = 1,
    policy: AugmentPolicy = POLICIES[Augmentation.NONE],
    seed: int = 0,
) -> torch.Tensor:
    """Trunk activations `[n, views, C, H, W]`: view 0 the image (evaluation transform), the
    others random views of `policy` (drawn once, from `seed`)."""
    net.eval()
    rng = np.random.default_rng(seed)
    out: list[torch.Tensor] = []
    with torch.inference_mode():
        for start in range(0, len(data), EVAL_BATCH):
            chunk = data.images[start : start + EVAL_BATCH]
            pixels = np.stack([image_views(im, built, policy, views, rng) for im in chunk])
            flat = trunk(net.body, first, torch.from_numpy(pixels).flatten(0, 1))
            out.append(flat.reshape(len(chunk), views, *flat.shape[1:]))
    return torch.cat(out)


def advance(net: ClassifierNet, cached: torch.Tensor, start: int, stop: int) -> torch.Tensor:
    """Cached trunk outputs at block `start` `[n, views, ...]` carried on to block `stop`."""
    net.eval()
    with torch.inference_mode():
        parts = [run_blocks(net.body, c.flatten(0, 1), start, stop)
                 for c in torch.split(cached, EVAL_BATCH)]  # fmt: skip
    return torch.cat(parts).reshape(*cached.shape[:2], *parts[0].shape[1:])


@dataclass(frozen=True)
class CachedSteps:
    """The recipe on cached trunk outputs: (activations, labels) of the training split
    (`cached_views` views an image) and of validation (one view)."""

    first: int
    train: tuple[torch.Tensor, torch.Tensor]
    val: tuple[torch.Tensor, torch.Tensor]
    config: FinetuneConfig

    def probe(self, net: ClassifierNet) -> float:
        (x_train, y_train), (x_val, y_val) = self.train, self.val
        fit = probe_on_features(
            net.head, (pooled_features(net, self.first, x_train[:, 0]), y_train),
            (pooled_features(net, self.first, x_val), y_val), self.config.label_smoothing,
        )  # fmt: skip
        log.info("linear probe on cached trunk: L2 %s, val loss %.3f", fit.l2, fit.val_loss)
        return fit.train_loss

    def epoch(self, net: ClassifierNet, stepper: Stepper, rng: np.random.Generator) -> float:
        return _epoch(net, self.first, self.train, self.config, stepper, rng)

    def scores(self, net: ClassifierNet) -> tuple[float, float]:
        return tail_scores(net, self.first, *self.val)


def cached_steps(
    built: BuiltModel,
    train: LabelledImages,
    val: LabelledImages,
    config: FinetuneConfig,
    cached: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> CachedSteps:
    """Freeze all but the last `config.train_blocks` and cache the trunk's outputs.

    `cached`: the trunk outputs of `train` (`cache_trunk`, `cached_views(config)` views) and
    of `val` (one view) when the caller has them (the trunk of the same base
    weights is the same for every split of a benchmark); otherwise they are computed here."""
    assert config.train_blocks is not None, "FinetuneConfig checks cache_trunk"
    net = built.net
    net.freeze_all_but_last_blocks(config.train_blocks)
    first = first_trained_block(net, config.train_blocks)
    if cached is None:
        views, policy = cached_views(config), POLICIES[config.augmentation]
        x_val = cache_trunk(net, first, val, built)[:, 0]
        cached = cache_trunk(net, first, train, built, views, policy, config.seed), x_val
    x_train, x_val = cached
    labels = torch.from_numpy(train.labels), torch.from_numpy(val.labels)
    return CachedSteps(first, (x_train, labels[0]), (x_val, labels[1]), config)


def pooled_features(net: ClassifierNet, first: int, cached: torch.Tensor) -> torch.Tensor:
    net.eval()
    tail = LiteTail(net.body, first)
    with torch.no_grad():
        return torch.cat([tail.pooled(c) for c in torch.split(cached, 64)])


def _epoch(
    net: ClassifierNet,
    first: int,
    data: tuple[torch.Tensor, torch.Tensor],
    config: FinetuneConfig,
    stepper: Stepper,
    rng: np.random.Generator,
) -> float:
    net.train()
    tail = LiteTail(net.body, first)
    cached, labels = data
    order = rng.permutation(len(labels))
    view = rng.integers(0, cached.shape[1], len(labels))
    total = 0.0
    for start in range(0, len(order), config.batch_size):
        rows = torch.from_numpy(order[start : start + config.batch_size])
        batch = cached[rows, torch.from_numpy(view[rows.numpy()])]
        loss = torch.nn.functional.cross_entropy(
            tail(batch), labels[rows], label_smoothing=config.label_smoothing
        )
        total += stepper.step(net, loss) * len(rows)
    return finite_mean(total, len(order))


def tail_scores(
    net: ClassifierNet, first: int, cached: torch.Tensor, labels: torch.Tensor
) -> tuple[float, float]:
    """(cross-entropy, accuracy) of `net` on cached trunk outputs (one view) and labels."""
    net.eval()
    with torch.no_grad():
        logits = torch.cat([LiteTail(net.body, first)(c) for c in torch.split(cached, 64)])
    loss = float(torch.nn.functional.cross_entropy(logits, labels))
    return loss, float((logits.argmax(1) == labels).float().mean())
