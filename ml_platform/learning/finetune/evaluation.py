"""Scoring a network on images in memory: class probabilities, cross-entropy and accuracy."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from numpy.typing import NDArray
from PIL import Image

from ml_platform.learning.finetune.augment import evaluation_pixels
from ml_platform.learning.finetune.net import ClassifierNet
from ml_platform.vision.preprocess import PreprocessSpec

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


def loss_and_accuracy(probs: NDArray[np.float32], labels: NDArray[np.int64]) -> tuple[float, float]:
    """(mean cross-entropy, accuracy) of predicted probabilities against `labels`."""
    picked = probs[np.arange(len(labels)), labels]
    loss = float(-np.log(np.clip(picked, 1e-12, 1.0)).mean())
    return loss, float((probs.argmax(axis=1) == labels).mean())


def evaluate(net: ClassifierNet, data: LabelledImages, spec: PreprocessSpec) -> tuple[float, float]:
    """(cross-entropy, accuracy) of `net` on `data`."""
    return loss_and_accuracy(predict_proba(net, data.images, spec), data.labels)
