"""The fine-tuning loop (LP-FT): linear probe, then AdamW over the network with warmup and
cosine decay, an EMA of the weights, early stopping and selection on validation loss.

Pure computation on images already in memory; no file I/O, no MLflow. `on_epoch` receives
each epoch's figures (the caller logs them, draws a progress bar, ...).
"""

from __future__ import annotations

import copy
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.optim.swa_utils import AveragedModel

from ml_platform.learning.finetune.architectures import BuiltModel
from ml_platform.learning.finetune.augment import POLICIES, augmented_pixels
from ml_platform.learning.finetune.config import FinetuneConfig
from ml_platform.learning.finetune.evaluation import (
    LabelledImages,
    evaluate,
    pixel_batches,
    predict_proba,
)
from ml_platform.learning.finetune.net import ClassifierNet
from ml_platform.learning.finetune.probe import probe_head
from ml_platform.learning.finetune.recipe import (
    evaluated_net,
    mix_batch,
    warmup_cosine,
    weight_average,
)
from ml_platform.vision.preprocess import PreprocessSpec

__all__ = ["EpochMetrics", "FinetuneResult", "LabelledImages", "evaluate", "finetune",
           "pixel_batches", "predict_proba"]  # fmt: skip

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EpochMetrics:
    epoch: int
    epochs: int
    train_loss: float
    val_loss: float
    val_accuracy: float
    seconds: float
    images: int
    cpu_seconds: float = 0.0  # process CPU time; on an idle machine wall ~ this / threads


@dataclass(frozen=True)
class FinetuneResult:
    """The best epoch's figures and network (its weights are restored into `net`)."""

    train_loss: float
    val_accuracy: float
    best_epoch: int
    history: tuple[EpochMetrics, ...]
    stopped_early: bool
    net: ClassifierNet
    val_loss: float

    def metrics(self) -> dict[str, float]:
        return {
            "train_loss": self.train_loss,
            "val_loss": self.val_loss,
            "val_accuracy": self.val_accuracy,
            "best_epoch": float(self.best_epoch),
        }

    @property
    def seconds_per_epoch(self) -> float:
        """Mean training time of the fine-tuning epochs (epoch 0, the probe, left out)."""
        trained = [m.seconds for m in self.history if m.epoch > 0]
        return float(np.mean(trained)) if trained else 0.0


EpochCallback = Callable[[EpochMetrics], None]
NetworkCallback = Callable[[EpochMetrics, ClassifierNet], None]
Candidate = tuple[EpochMetrics, dict[str, Any]]


@dataclass(frozen=True)
class Stepper:
    """What one optimisation step touches besides the network."""

    optimizer: torch.optim.Optimizer
    schedule: torch.optim.lr_scheduler.LRScheduler
    average: AveragedModel | None

    def step(self, net: ClassifierNet, loss: torch.Tensor) -> float:
        """Back-propagate `loss`, step the optimiser, the schedule and the average; the loss."""
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()  # type: ignore[no-untyped-call]
        self.optimizer.step()
        self.schedule.step()
        if self.average is not None:
            self.average.update_parameters(net)
        return float(loss.detach())


def finite_mean(total: float, count: int) -> float:
    """The epoch's mean training loss; FloatingPointError when it diverged."""
    mean = total / count
    if not math.isfinite(mean):
        raise FloatingPointError(f"training loss became {mean}; lower the learning rate")
    return mean


def finetune(
    built: BuiltModel,
    train: LabelledImages,
    val: LabelledImages,
    config: FinetuneConfig,
    on_epoch: EpochCallback | None = None,
    inspect: NetworkCallback | None = None,
) -> FinetuneResult:
    """Fine-tune `built.net` on `train`; keep the epoch with the lowest `val` loss.

    `inspect`, for diagnostics, sees every epoch's evaluated network (epoch 0: the probe)
    read-only, e.g. a benchmark scoring a held-out set per epoch; it never steers selection.
    """
    if len(train) == 0 or len(val) == 0:
        raise ValueError(
            f"fine-tuning needs training and validation images; got {len(train)} and {len(val)}"
        )
    if config.cache_trunk:
        from ml_platform.learning.finetune.cached import finetune_cached

        return finetune_cached(built, train, val, config, on_epoch, inspect)
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    net, spec = built.net, built.preprocess

    def scores(scored: ClassifierNet) -> tuple[float, float]:
        return evaluate(scored, val, spec)

    if config.train_blocks is not None:
        net.freeze_all_but_last_blocks(config.train_blocks)
    history: list[EpochMetrics] = []
    if config.probe_head:  # epoch 0: the pretrained features with a fitted head
        started = clock()
        fit = probe_head(net, train, val, spec, config.label_smoothing)
        log.info("linear probe: L2 %s, val loss %.3f", fit.l2, fit.val_loss)
        history.append(measure(net, scores, 0, config, fit.train_loss, started, len(train)))
        if inspect is not None:
            inspect(history[-1], net)
    stepper = make_stepper(net, config, len(train))
    best = candidate(net, history[0]) if history else None
    for epoch in range(1, config.epochs + 1):
        started = clock()
        loss = _train_epoch(net, train, spec, config, stepper, rng)
        scored = evaluated_net(net, stepper.average)
        history.append(measure(scored, scores, epoch, config, loss, started, len(train)))
        if on_epoch is not None:
            on_epoch(history[-1])
        if inspect is not None:
            inspect(history[-1], scored)
        if best is None or score(history[-1]) > score(best[0]):
            best = candidate(scored, history[-1])
        elif epoch - best[0].epoch >= config.patience:
            log.info("early stop at epoch %d: best was epoch %d", epoch, best[0].epoch)
            break
    return finish(net, best, history, config)


def finish(
    net: ClassifierNet, best: Candidate | None, history: list[EpochMetrics], config: FinetuneConfig
) -> FinetuneResult:
    assert best is not None
    net.load_state_dict(best[1])
    net.eval()
    chosen = best[0]
    stopped = len([m for m in history if m.epoch > 0]) < config.epochs
    return FinetuneResult(chosen.train_loss, chosen.val_accuracy, chosen.epoch, tuple(history),
                          stopped, net, chosen.val_loss)  # fmt: skip


def score(metrics: EpochMetrics) -> tuple[float, float]:
    """Lower validation loss first (a steadier signal than accuracy on a small split)."""
    return -round(metrics.val_loss, 4), metrics.val_accuracy


def candidate(net: ClassifierNet, metrics: EpochMetrics) -> Candidate:
    return metrics, copy.deepcopy(net.state_dict())


def clock() -> tuple[float, float]:
    return time.perf_counter(), time.process_time()


def measure(
    net: ClassifierNet,
    scores: Callable[[ClassifierNet], tuple[float, float]],
    epoch: int,
    config: FinetuneConfig,
    train_loss: float,
    started: tuple[float, float],
    images: int,
) -> EpochMetrics:
    """The epoch's metrics: time since `started` (not counting validation), then `scores`
    (validation loss and accuracy) of `net`."""
    seconds, cpu = time.perf_counter() - started[0], time.process_time() - started[1]
    val_loss, val_accuracy = scores(net)
    return EpochMetrics(
        epoch, config.epochs, train_loss, val_loss, val_accuracy, seconds, images, cpu
    )


def make_stepper(net: ClassifierNet, config: FinetuneConfig, images: int) -> Stepper:
    groups = [
        {"params": list(net.backbone_parameters()), "lr": config.learning_rate},
        {"params": list(net.head_parameters()),
         "lr": config.learning_rate * config.head_lr_multiplier},
    ]  # fmt: skip
    optimizer = torch.optim.AdamW(groups, weight_decay=config.weight_decay)
    steps = math.ceil(images / config.batch_size)
    warmup = round(config.warmup_epochs * steps)
    schedule = warmup_cosine(optimizer, warmup, config.epochs * steps)
    return Stepper(optimizer, schedule, weight_average(net, config.ema_decay))


def _train_epoch(
    net: ClassifierNet,
    data: LabelledImages,
    spec: PreprocessSpec,
    config: FinetuneConfig,
    stepper: Stepper,
    rng: np.random.Generator,
) -> float:
    net.train()
    policy = POLICIES[config.augmentation]
    order = rng.permutation(len(data))
    total = 0.0
    for start in range(0, len(order), config.batch_size):
        rows = order[start : start + config.batch_size]
        pixels = np.stack([augmented_pixels(data.images[i], spec, policy, rng) for i in rows])
        batch = mix_batch(torch.from_numpy(pixels), torch.from_numpy(data.labels[rows]),
                          policy.mix_p, rng)  # fmt: skip
        loss = batch.loss(net(batch.pixels), config.label_smoothing)
        total += stepper.step(net, loss) * len(rows)
    return finite_mean(total, len(order))
