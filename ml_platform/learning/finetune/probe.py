"""Linear probe: fit the new head on frozen features, its L2 strength chosen on validation.

The first stage of LP-FT (linear probe, then fine-tune): starting full fine-tuning from a
fitted head keeps the large gradients of a random head from wrecking the pretrained
features. Features are computed once; each L2 strength is one L-BFGS fit of the head, and
the strength with the lowest validation cross-entropy is kept (ties: the stronger one).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ml_platform.learning.finetune.evaluation import LabelledImages, pixel_batches
from ml_platform.learning.finetune.net import ClassifierNet
from ml_platform.vision.preprocess import PreprocessSpec

PROBE_ITERATIONS = 100
PROBE_L2_GRID = (1e-5, 3e-5, 1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2)


@dataclass(frozen=True)
class ProbeFit:
    train_loss: float
    val_loss: float
    l2: float


def probe_head(
    net: ClassifierNet,
    train: LabelledImages,
    val: LabelledImages,
    spec: PreprocessSpec,
    label_smoothing: float = 0.0,
) -> ProbeFit:
    """Fit `net.head` on frozen features in place; returns the chosen fit.

    The head minimises the loss fine-tuning goes on to minimise (`label_smoothing` included),
    so the first fine-tuning steps start at the head's optimum and their gradients reach the
    backbone only for what the features get wrong. A head fitted without smoothing has huge
    logits, and smoothing's first gradients would spend the backbone's updates shrinking them.
    The L2 strength is chosen on plain validation cross-entropy."""
    x_train, x_val = frozen_features(net, train, spec), frozen_features(net, val, spec)
    y_train, y_val = torch.from_numpy(train.labels), torch.from_numpy(val.labels)
    return probe_on_features(net.head, (x_train, y_train), (x_val, y_val), label_smoothing)


def probe_on_features(
    head: torch.nn.Linear,
    train: tuple[torch.Tensor, torch.Tensor],
    val: tuple[torch.Tensor, torch.Tensor],
    label_smoothing: float = 0.0,
) -> ProbeFit:
    """`probe_head` on features already computed: (features, labels) of train and val."""
    (x_train, y_train), (x_val, y_val) = train, val
    fits: list[tuple[ProbeFit, dict[str, torch.Tensor]]] = []
    for l2 in PROBE_L2_GRID:
        train_loss = fit_head(head, x_train, y_train, l2, label_smoothing)
        fit = ProbeFit(train_loss, cross_entropy(head, x_val, y_val), l2)
        fits.append((fit, {k: v.clone() for k, v in head.state_dict().items()}))
    best, state = min(fits, key=lambda f: (round(f[0].val_loss, 4), -f[0].l2))
    head.load_state_dict(state)
    return best


def frozen_features(net: ClassifierNet, data: LabelledImages, spec: PreprocessSpec) -> torch.Tensor:
    net.eval()
    return torch.cat([net.features(batch) for batch in pixel_batches(data.images, spec)])


def fit_head(
    head: torch.nn.Linear,
    features: torch.Tensor,
    target: torch.Tensor,
    l2: float,
    label_smoothing: float = 0.0,
) -> float:
    """Fit `head` in place (L2-regularised cross-entropy, optionally label-smoothed); returns
    the training cross-entropy (plain)."""
    optimizer = torch.optim.LBFGS(head.parameters(), max_iter=PROBE_ITERATIONS)

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        ce = torch.nn.functional.cross_entropy
        loss = ce(head(features), target, label_smoothing=label_smoothing)
        loss = loss + l2 * head.weight.pow(2).sum()
        loss.backward()  # type: ignore[no-untyped-call]
        return loss

    optimizer.step(closure)  # type: ignore[no-untyped-call]
    return cross_entropy(head, features, target)


def cross_entropy(head: torch.nn.Linear, features: torch.Tensor, target: torch.Tensor) -> float:
    with torch.no_grad():
        return float(torch.nn.functional.cross_entropy(head(features), target))
