"""Fine-tuning the last blocks of an EfficientNet-Lite on cached activations of its trunk.

With `train_blocks` = k the stem and all blocks but the last k are frozen, so their output for
an image never changes: it is computed once (`TrunkCache`, the image and its horizontal flip
when augmentation is on) and every epoch runs only the last k blocks, the head convolution and
the linear head (`LiteTail`). The recipe is the platform's LP-FT (`train.finetune`): a linear
probe on the tail's pooled features (epoch 0), then AdamW with warmup and cosine decay, an EMA
of the weights, selection and early stopping on validation loss. The returned network is the
whole `ClassifierNet`, registrable and served like any other.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import torch

from ml_platform.learning.finetune.architectures import BuiltModel
from ml_platform.learning.finetune.config import Augmentation, FinetuneConfig
from ml_platform.learning.finetune.evaluation import LabelledImages, pixel_batches
from ml_platform.learning.finetune.net import ClassifierNet
from ml_platform.learning.finetune.probe import probe_on_features
from ml_platform.learning.finetune.recipe import evaluated_net
from ml_platform.learning.finetune.train import (
    EpochCallback,
    FinetuneResult,
    NetworkCallback,
    Stepper,
    candidate,
    clock,
    finish,
    finite_mean,
    make_stepper,
    measure,
    score,
)

log = logging.getLogger(__name__)


class LiteTail(torch.nn.Module):
    """The last blocks of an EfficientNet-Lite `body` from `first`, its head conv and head."""

    def __init__(self, body: torch.nn.Module, first: int) -> None:
        super().__init__()
        self.body = body
        self.first = first

    def pooled(self, x: torch.Tensor) -> torch.Tensor:
        body: Any = self.body  # an efficientnet_lite_pytorch EfficientNet (untyped)
        blocks = list(body._blocks)
        for idx in range(self.first, len(blocks)):
            x = blocks[idx](x, drop_connect_rate=drop_rate(body, idx, len(blocks)))
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


def trunk(body: Any, first: int, pixels: torch.Tensor) -> torch.Tensor:
    """The frozen part: stem and blocks before `first` (eval mode, no gradient)."""
    x: torch.Tensor = body._swish(body._bn0(body._conv_stem(pixels)))
    blocks = list(body._blocks)
    for idx in range(first):
        x = blocks[idx](x, drop_connect_rate=drop_rate(body, idx, len(blocks)))
    return x


def cache_trunk(
    net: ClassifierNet, first: int, data: LabelledImages, built: BuiltModel, flip: bool
) -> torch.Tensor:
    """Trunk activations `[n, views, C, H, W]`: view 0 the image, view 1 its mirror image."""
    net.eval()
    views: list[torch.Tensor] = []
    with torch.inference_mode():
        for pixels in pixel_batches(data.images, built.preprocess):
            batch = [trunk(net.body, first, pixels)]
            if flip:
                batch.append(trunk(net.body, first, pixels.flip(-1)))
            views.append(torch.stack(batch, dim=1))
    return torch.cat(views)


def finetune_cached(
    built: BuiltModel,
    train: LabelledImages,
    val: LabelledImages,
    config: FinetuneConfig,
    on_epoch: EpochCallback | None = None,
    inspect: NetworkCallback | None = None,
    cached: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> FinetuneResult:
    """`train.finetune` for `config.cache_trunk`: the same recipe on cached trunk outputs.

    `cached`: the trunk outputs of `train` (`cache_trunk`, flipped view included when
    augmenting) and of `val` (one view) when the caller has them (the trunk of the same base
    weights is the same for every split of a benchmark); otherwise they are computed here."""
    assert config.train_blocks is not None, "FinetuneConfig checks cache_trunk"
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    net = built.net
    net.freeze_all_but_last_blocks(config.train_blocks)
    first = first_trained_block(net, config.train_blocks)
    flip = config.augmentation is not Augmentation.NONE
    if cached is None:
        views = cache_trunk(net, first, val, built, False)[:, 0]
        cached = cache_trunk(net, first, train, built, flip), views
    x_train, x_val = cached
    y_train, y_val = torch.from_numpy(train.labels), torch.from_numpy(val.labels)

    def scores(scored: ClassifierNet) -> tuple[float, float]:
        return tail_scores(scored, first, x_val, y_val)

    started = clock()
    fit = probe_on_features(
        net.head, (pooled_features(net, first, x_train[:, 0]), y_train),
        (pooled_features(net, first, x_val), y_val), config.label_smoothing,
    )  # fmt: skip
    log.info("linear probe on cached trunk: L2 %s, val loss %.3f", fit.l2, fit.val_loss)
    history = [measure(net, scores, 0, config, fit.train_loss, started, len(train))]
    if inspect is not None:
        inspect(history[0], net)
    stepper = make_stepper(net, config, len(train))
    best = candidate(net, history[0])
    for epoch in range(1, config.epochs + 1):
        started = clock()
        loss = _epoch(net, first, (x_train, y_train), config, stepper, rng)
        scored = evaluated_net(net, stepper.average)
        history.append(measure(scored, scores, epoch, config, loss, started, len(train)))
        if on_epoch is not None:
            on_epoch(history[-1])
        if inspect is not None:
            inspect(history[-1], scored)
        if score(history[-1]) > score(best[0]):
            best = candidate(scored, history[-1])
        elif epoch - best[0].epoch >= config.patience:
            log.info("early stop at epoch %d: best was epoch %d", epoch, best[0].epoch)
            break
    return finish(net, best, history, config)


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
