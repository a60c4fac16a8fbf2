"""The fine-tuning loop: linear probe, then AdamW over the network, early stopping on val accuracy.

Pure computation on images already in memory; no file I/O, no MLflow. `on_epoch` receives
each epoch's figures (the caller logs them, draws a progress bar, ...).
"""

from __future__ import annotations

import copy
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray
from PIL import Image

from ml_platform.learning.finetune.augment import POLICIES, augmented_pixels, evaluation_pixels
from ml_platform.learning.finetune.config import FinetuneConfig
from ml_platform.learning.finetune.models import BuiltModel
from ml_platform.learning.finetune.net import ClassifierNet
from ml_platform.vision.preprocess import PreprocessSpec

log = logging.getLogger(__name__)

PROBE_ITERATIONS = 100
PROBE_L2 = 1e-3
EVAL_BATCH = 32


@dataclass(frozen=True)
class LabelledImages:
    """Images (RGB, in memory) and their class indices."""

    images: Sequence[Image.Image]
    labels: NDArray[np.int64]

    def __post_init__(self) -> None:
        if len(self.images) != len(self.labels):
            raise ValueError(f"{len(self.images)} images but {len(self.labels)} labels")

    def __len__(self) -> int:
        return len(self.images)


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

    def metrics(self) -> dict[str, float]:
        return {
            "train_loss": self.train_loss,
            "val_accuracy": self.val_accuracy,
            "best_epoch": float(self.best_epoch),
        }

    @property
    def seconds_per_epoch(self) -> float:
        """Mean training time of the fine-tuning epochs (epoch 0, the probe, left out)."""
        trained = [m.seconds for m in self.history if m.epoch > 0]
        return float(np.mean(trained)) if trained else 0.0


EpochCallback = Callable[[EpochMetrics], None]


def finetune(
    built: BuiltModel,
    train: LabelledImages,
    val: LabelledImages,
    config: FinetuneConfig,
    on_epoch: EpochCallback | None = None,
) -> FinetuneResult:
    """Fine-tune `built.net` on `train`, keep the epoch with the best `val` accuracy."""
    if len(train) == 0 or len(val) == 0:
        raise ValueError(
            f"fine-tuning needs training and validation images; got {len(train)} and {len(val)}"
        )
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    net, spec = built.net, built.preprocess
    if config.train_blocks is not None:
        net.freeze_all_but_last_blocks(config.train_blocks)
    history: list[EpochMetrics] = []
    if config.probe_head:  # epoch 0: the pretrained features with a fitted head
        started = (time.perf_counter(), time.process_time())
        probe_loss = probe_head(net, train, spec, config.batch_size)
        history.append(_measure(net, val, spec, 0, config, probe_loss, started, len(train)))
    optimizer = _optimizer(net, config)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=config.epochs)
    best = _candidate(net, history[0]) if history else None
    for epoch in range(1, config.epochs + 1):
        started = (time.perf_counter(), time.process_time())
        loss = _train_epoch(net, train, spec, config, optimizer, rng)
        schedule.step()
        history.append(_measure(net, val, spec, epoch, config, loss, started, len(train)))
        if on_epoch is not None:
            on_epoch(history[-1])
        if best is None or _score(history[-1]) > _score(best[0]):
            best = _candidate(net, history[-1])
        elif epoch - best[0].epoch >= config.patience:
            log.info("early stop at epoch %d: best was epoch %d", epoch, best[0].epoch)
            break
    assert best is not None
    net.load_state_dict(best[1])
    net.eval()
    chosen = best[0]
    trained = [m for m in history if m.epoch > 0]
    stopped = len(trained) < config.epochs
    return FinetuneResult(chosen.train_loss, chosen.val_accuracy, chosen.epoch, tuple(history),
                          stopped, net)  # fmt: skip


def _score(metrics: EpochMetrics) -> tuple[float, float]:
    return metrics.val_accuracy, -metrics.val_loss


def _candidate(net: ClassifierNet, metrics: EpochMetrics) -> tuple[EpochMetrics, dict[str, Any]]:
    return metrics, copy.deepcopy(net.state_dict())


def _measure(
    net: ClassifierNet,
    val: LabelledImages,
    spec: PreprocessSpec,
    epoch: int,
    config: FinetuneConfig,
    train_loss: float,
    started: tuple[float, float],
    images: int,
) -> EpochMetrics:
    seconds, cpu = time.perf_counter() - started[0], time.process_time() - started[1]
    val_loss, val_accuracy = evaluate(net, val, spec)
    return EpochMetrics(
        epoch, config.epochs, train_loss, val_loss, val_accuracy, seconds, images, cpu
    )


def _optimizer(net: ClassifierNet, config: FinetuneConfig) -> torch.optim.Optimizer:
    groups = [
        {"params": list(net.backbone_parameters()), "lr": config.learning_rate},
        {"params": list(net.head_parameters()),
         "lr": config.learning_rate * config.head_lr_multiplier},
    ]  # fmt: skip
    return torch.optim.AdamW(groups, weight_decay=config.weight_decay)


def _train_epoch(
    net: ClassifierNet,
    data: LabelledImages,
    spec: PreprocessSpec,
    config: FinetuneConfig,
    optimizer: torch.optim.Optimizer,
    rng: np.random.Generator,
) -> float:
    net.train()
    policy = POLICIES[config.augmentation]
    order = rng.permutation(len(data))
    total = 0.0
    for start in range(0, len(order), config.batch_size):
        rows = order[start : start + config.batch_size]
        pixels = np.stack([augmented_pixels(data.images[i], spec, policy, rng) for i in rows])
        logits = net(torch.from_numpy(pixels))
        target = torch.from_numpy(data.labels[rows])
        loss = torch.nn.functional.cross_entropy(
            logits, target, label_smoothing=config.label_smoothing
        )
        optimizer.zero_grad(set_to_none=True)
        loss.backward()  # type: ignore[no-untyped-call]
        optimizer.step()
        total += float(loss.detach()) * len(rows)
    mean = total / len(order)
    if not math.isfinite(mean):
        raise FloatingPointError(f"training loss became {mean}; lower the learning rate")
    return mean


def pixel_batches(
    images: Sequence[Image.Image], spec: PreprocessSpec, batch_size: int = EVAL_BATCH
) -> list[torch.Tensor]:
    chunks = [images[i : i + batch_size] for i in range(0, len(images), batch_size)]
    return [torch.from_numpy(np.stack([evaluation_pixels(im, spec) for im in c])) for c in chunks]


def predict_proba(
    net: ClassifierNet, images: Sequence[Image.Image], spec: PreprocessSpec
) -> NDArray[np.float32]:
    """Class probabilities `[n, num_classes]` (evaluation transform, no gradient)."""
    if not images:
        return np.zeros((0, net.num_classes), np.float32)
    net.eval()
    with torch.inference_mode():
        logits = torch.cat([net(batch) for batch in pixel_batches(images, spec)])
    return np.asarray(logits.softmax(dim=-1).numpy(), dtype=np.float32)


def evaluate(net: ClassifierNet, data: LabelledImages, spec: PreprocessSpec) -> tuple[float, float]:
    """(cross-entropy, accuracy) of `net` on `data`."""
    probs = predict_proba(net, data.images, spec)
    picked = probs[np.arange(len(data)), data.labels]
    loss = float(-np.log(np.clip(picked, 1e-12, 1.0)).mean())
    return loss, float((probs.argmax(axis=1) == data.labels).mean())


def probe_head(
    net: ClassifierNet, data: LabelledImages, spec: PreprocessSpec, batch_size: int
) -> float:
    """Fit the head alone on frozen features (L-BFGS, L2-regularised cross-entropy)."""
    net.eval()
    features = torch.cat([net.features(b) for b in pixel_batches(data.images, spec, batch_size)])
    target = torch.from_numpy(data.labels)
    head = net.head
    optimizer = torch.optim.LBFGS(head.parameters(), max_iter=PROBE_ITERATIONS)

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(head(features), target)
        loss = loss + PROBE_L2 * head.weight.pow(2).sum()
        loss.backward()  # type: ignore[no-untyped-call]
        return loss

    optimizer.step(closure)  # type: ignore[no-untyped-call]
    with torch.no_grad():
        return float(torch.nn.functional.cross_entropy(head(features), target))
