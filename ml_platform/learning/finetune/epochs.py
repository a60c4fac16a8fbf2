"""One epoch's mechanics, shared by training on images (`train.py`) and on cached trunk
outputs (`cached.py`): the optimiser step with its schedule and weight average, the clock,
and the figures an epoch reports."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch.optim.swa_utils import AveragedModel

from ml_platform.learning.finetune.config import FinetuneConfig
from ml_platform.learning.finetune.net import ClassifierNet
from ml_platform.learning.finetune.recipe import warmup_cosine, weight_average


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
