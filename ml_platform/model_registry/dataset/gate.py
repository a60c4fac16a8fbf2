"""The promotion gate of dataset classifiers: test accuracy against the champion's, same images.

Both models are scored on the current dataset version's test split; a champion trained on
other class names cannot be scored (its outputs mean other things) and the challenger is then
compared with no champion, as collection classifiers are when the focus changed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch

from ml_platform.model_registry.aliases import FLOAT_SLACK, PromotionDecision


def accuracy_decision(
    champion: float | None,
    challenger: float,
    n_test: int,
    tolerance: float,
    sanity: Sequence[str],
) -> PromotionDecision:
    """Promote when sane and the challenger's accuracy is not worse by more than tolerance."""
    if tolerance < 0 or not math.isfinite(tolerance):
        raise ValueError(f"tolerance must be a finite number >= 0, got {tolerance}")
    if sanity:
        return PromotionDecision(False, "challenger failed sanity checks: " + "; ".join(sanity))
    if champion is None:
        return PromotionDecision(True, f"no comparable champion; challenger test accuracy "
                                       f"{challenger:.4f} on {n_test} images")  # fmt: skip
    comparison = (
        f"challenger test accuracy {challenger:.4f} vs champion {champion:.4f} on the same "
        f"{n_test} test images (tolerance {tolerance:.4f})"
    )
    if champion - challenger > tolerance + FLOAT_SLACK:
        return PromotionDecision(False, f"challenger is worse: {comparison}")
    return PromotionDecision(True, f"challenger is not worse: {comparison}")


def sanity_problems(
    state_dict: dict[str, torch.Tensor],
    class_names: Sequence[str],
    dataset_classes: Sequence[str],
    n_test: int,
    test_accuracy: float,
) -> list[str]:
    """Problems that make a fine-tuned model unfit to serve (empty: it passed)."""
    problems = []
    bad = [
        k for k, v in state_dict.items() if v.is_floating_point() and not torch.isfinite(v).all()
    ]
    if bad:
        problems.append(f"non-finite weights in {', '.join(bad[:5])}")
    if list(class_names) != list(dataset_classes):
        problems.append(
            f"class names {list(class_names)} != dataset classes {list(dataset_classes)}"
        )
    if n_test == 0:
        problems.append("no test images to score the model on")
    elif not test_accuracy > 1.0 / max(len(class_names), 1) - FLOAT_SLACK:
        problems.append(f"test accuracy {test_accuracy:.4f} is not above chance "
                        f"({1 / len(class_names):.4f})")  # fmt: skip
    return problems


def accuracy(probabilities: np.ndarray, labels: np.ndarray) -> float:  # type: ignore[type-arg]
    if len(labels) == 0:
        raise ValueError("accuracy of an empty test split is undefined")
    return float((np.asarray(probabilities).argmax(axis=1) == labels).mean())
