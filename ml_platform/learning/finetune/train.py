"""The fine-tuning loop (LP-FT): linear probe, then AdamW over the network with warmup and
cosine decay, an EMA of the weights, early stopping and selection on validation loss.

Pure computation on images already in memory; no file I/O, no MLflow. `on_epoch` receives
each epoch's figures (the caller logs them, draws a progress bar, ...).
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import torch

from ml_platform.learning.finetune.architectures import BuiltModel
from ml_platform.learning.finetune.augment import POLICIES, augmented_pixels
from ml_platform.learning.finetune.config import FinetuneConfig
from ml_platform.learning.finetune.epochs import (
    EpochMetrics,
    Stepper,
    clock,
    finite_mean,
    make_stepper,
    measure,
)
from ml_platform.learning.finetune.evaluation import (
    LabelledImages,
    evaluate,
    pixel_batches,
    predict_proba,
)
from ml_platform.learning.finetune.net import ClassifierNet
from ml_platform.learning.finetune.probe import probe_head
from ml_platform.learning.finetune.recipe import evaluated_net, mix_batch
from ml_platform.vision.preprocess import PreprocessSpec

__all__ = ["EpochMetrics", "FinetuneResult", "LabelledImages", "evaluate", "finetune",
           "pixel_batches", "predict_proba"]  # fmt: skip

log = logging.getLogger(__name__)


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
class EpochHooks:
    """What a caller sees of a run: `on_epoch` gets each epoch's figures; `inspect` (for
    diagnostics) each epoch's evaluated network, the probe's (epoch 0) included."""

    on_epoch: EpochCallback | None = None
    inspect: NetworkCallback | None = None


class RecipeSteps(Protocol):
    """What differs between training on images and on cached trunk outputs (`cached.py`)."""

    def probe(self, net: ClassifierNet) -> float | None:
        """Fit the head on frozen features (epoch 0); its training loss, None for no probe."""
        ...

    def epoch(self, net: ClassifierNet, stepper: Stepper, rng: np.random.Generator) -> float:
        """One pass over the training data; its mean loss."""
        ...

    def scores(self, net: ClassifierNet) -> tuple[float, float]:
        """Validation (cross-entropy, accuracy) of `net`."""
        ...


def finetune(
    built: BuiltModel,
    train: LabelledImages,
    val: LabelledImages,
    config: FinetuneConfig,
    on_epoch: EpochCallback | None = None,
    inspect: NetworkCallback | None = None,
    cached: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> FinetuneResult:
    """Fine-tune `built.net` on `train`; keep the epoch with the lowest `val` loss.

    `inspect`, for diagnostics, sees every epoch's evaluated network (epoch 0: the probe)
    read-only, e.g. a benchmark scoring a held-out set per epoch; it never steers selection.
    With `config.cache_trunk` the last blocks train on cached trunk outputs (`cached.py`);
    `cached`, the trunk outputs of `train` and `val` when the caller has them.
    """
    if len(train) == 0 or len(val) == 0:
        raise ValueError(
            f"fine-tuning needs training and validation images; got {len(train)} and {len(val)}"
        )
    torch.manual_seed(config.seed)
    steps: RecipeSteps
    if config.cache_trunk:
        from ml_platform.learning.finetune.cached import cached_steps

        steps = cached_steps(built, train, val, config, cached)
    else:
        if config.train_blocks is not None:
            built.net.freeze_all_but_last_blocks(config.train_blocks)
        steps = ImageSteps(train, val, built.preprocess, config)
    return run_recipe(built.net, steps, config, len(train), EpochHooks(on_epoch, inspect))


def run_recipe(
    net: ClassifierNet,
    steps: RecipeSteps,
    config: FinetuneConfig,
    images: int,
    hooks: EpochHooks,
) -> FinetuneResult:
    """LP-FT with `steps`: the probe (epoch 0), then epochs until `config.epochs` or early
    stopping; `hooks` see each epoch."""
    on_epoch, inspect = hooks.on_epoch, hooks.inspect
    rng = np.random.default_rng(config.seed)
    history: list[EpochMetrics] = []
    started = clock()
    probe_loss = steps.probe(net)
    if probe_loss is not None:
        history.append(measure(net, steps.scores, 0, config, probe_loss, started, images))
        if inspect is not None:
            inspect(history[-1], net)
    stepper = make_stepper(net, config, images)
    best = candidate(net, history[0]) if history else None
    for epoch in range(1, config.epochs + 1):
        started = clock()
        loss = steps.epoch(net, stepper, rng)
        scored = evaluated_net(net, stepper.average)
        history.append(measure(scored, steps.scores, epoch, config, loss, started, images))
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


@dataclass(frozen=True)
class ImageSteps:
    """The recipe on images: the probe on frozen features, epochs on augmented pixels."""

    train: LabelledImages
    val: LabelledImages
    spec: PreprocessSpec
    config: FinetuneConfig

    def probe(self, net: ClassifierNet) -> float | None:
        if not self.config.probe_head:
            return None
        fit = probe_head(net, self.train, self.val, self.spec, self.config.label_smoothing)
        log.info("linear probe: L2 %s, val loss %.3f", fit.l2, fit.val_loss)
        return fit.train_loss

    def scores(self, net: ClassifierNet) -> tuple[float, float]:
        return evaluate(net, self.val, self.spec)

    def epoch(self, net: ClassifierNet, stepper: Stepper, rng: np.random.Generator) -> float:
        net.train()
        data, config = self.train, self.config
        policy = POLICIES[config.augmentation]
        order = rng.permutation(len(data))
        total = 0.0
        for start in range(0, len(order), config.batch_size):
            rows = order[start : start + config.batch_size]
            pixels = np.stack([augmented_pixels(data.images[i], self.spec, policy, rng)
                               for i in rows])  # fmt: skip
            batch = mix_batch(torch.from_numpy(pixels), torch.from_numpy(data.labels[rows]),
                              policy.mix_p, rng)  # fmt: skip
            loss = batch.loss(net(batch.pixels), config.label_smoothing)
            total += stepper.step(net, loss) * len(rows)
        return finite_mean(total, len(order))
