"""learning.finetune recipe pieces: warmup + cosine, mixup/CutMix, EMA, the probe's L2 choice."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from ml_platform.learning.finetune.evaluation import LabelledImages, evaluate
from ml_platform.learning.finetune.net import ClassifierNet
from ml_platform.learning.finetune.probe import (
    PROBE_L2_GRID,
    cross_entropy,
    fit_head,
    frozen_features,
    probe_head,
)
from ml_platform.learning.finetune.recipe import (
    evaluated_net,
    mix_batch,
    warmup_cosine,
    weight_average,
)
from ml_platform.vision.preprocess import PreprocessSpec
from tests.learning.test_finetune import noisy


class Tiny(torch.nn.Module):
    """Mean colour -> a linear layer -> the head `fc` (a stand-in backbone with a BN)."""

    def __init__(self, classes: int = 2) -> None:
        super().__init__()
        self.proj = torch.nn.Linear(3, 4)
        self.norm = torch.nn.BatchNorm1d(4)
        self.fc = torch.nn.Linear(4, classes)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.fc(self.norm(self.proj(pixels.mean(dim=(2, 3)))))
        return out


SPEC = PreprocessSpec(crop_height=8, crop_width=8, resize_short_side=None, mean=(0.5, 0.5, 0.5),
                      std=(0.25, 0.25, 0.25))  # fmt: skip


def test_learning_rate_warms_up_linearly_then_decays_to_zero_by_a_cosine() -> None:
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    schedule = warmup_cosine(optimizer, warmup_steps=3, total_steps=13)
    rates = []
    for _ in range(13):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        schedule.step()
    assert rates[:4] == pytest.approx([0.25, 0.5, 0.75, 1.0])
    assert all(a >= b for a, b in itertools.pairwise(rates[3:]))
    assert rates[8] == pytest.approx(0.5) and rates[-1] < 0.03


@pytest.mark.parametrize("seed", range(6))
def test_mixed_batches_keep_shapes_and_weight_the_targets_by_pixel_share(seed: int) -> None:
    pixels = torch.stack([torch.full((3, 8, 8), float(i)) for i in range(4)])
    target = torch.arange(4)
    batch = mix_batch(pixels, target, mix_p=1.0, rng=np.random.default_rng(seed))
    assert batch.pixels.shape == pixels.shape and 0.0 <= batch.share <= 1.0
    partner_values = batch.partner.float().view(4, 1, 1, 1)
    expected_mean = batch.share * target.float() + (1 - batch.share) * partner_values.view(4)
    assert torch.allclose(batch.pixels.mean(dim=(1, 2, 3)), expected_mean, atol=1e-5)
    logits = torch.zeros(4, 4)
    assert float(batch.loss(logits, 0.0)) == pytest.approx(np.log(4), rel=1e-5)


def test_a_batch_is_left_alone_without_mixing() -> None:
    pixels, target = torch.rand(3, 3, 8, 8), torch.tensor([0, 1, 0])
    batch = mix_batch(pixels, target, mix_p=0.0, rng=np.random.default_rng(0))
    assert batch.share == 1.0 and batch.pixels is pixels


def test_the_weight_average_trails_the_trained_weights() -> None:
    net = ClassifierNet(Tiny(), "fc")
    average = weight_average(net, decay=0.5)
    assert average is not None and weight_average(net, 0.0) is None
    with torch.no_grad():
        net.head.bias.fill_(2.0)
    average.update_parameters(net)  # the first update copies
    with torch.no_grad():
        net.head.bias.fill_(4.0)
    average.update_parameters(net)
    averaged = evaluated_net(net, average)
    assert averaged is not net and evaluated_net(net, None) is net
    assert torch.allclose(averaged.head.bias, torch.full((2,), 3.0))
    assert torch.allclose(net.head.bias, torch.full((2,), 4.0))


def red_blue_probe_setup() -> tuple[LabelledImages, LabelledImages, ClassifierNet]:
    """Train and validation sets of noisy red and blue images, and a seeded tiny network."""
    red, blue = (200, 30, 30), (30, 30, 200)
    images = [noisy(red if i % 2 else blue, i) for i in range(16)]
    labels = np.arange(16, dtype=np.int64) % 2
    train, val = LabelledImages(images[:10], labels[:10]), LabelledImages(images[10:], labels[10:])
    torch.manual_seed(0)
    return train, val, ClassifierNet(Tiny(), "fc")


def test_the_probe_keeps_the_l2_with_the_lowest_validation_loss() -> None:
    train, val, net = red_blue_probe_setup()
    fit = probe_head(net, train, val, SPEC)
    assert fit.l2 in PROBE_L2_GRID
    loss, accuracy = evaluate(net, val, SPEC)
    assert accuracy == 1.0 and loss == pytest.approx(fit.val_loss, rel=1e-4)
    x_train, x_val = frozen_features(net, train, SPEC), frozen_features(net, val, SPEC)
    for l2 in (PROBE_L2_GRID[0], PROBE_L2_GRID[-1]):
        head = torch.nn.Linear(4, 2)
        fit_head(head, x_train, torch.from_numpy(train.labels), l2)
        assert fit.val_loss <= cross_entropy(head, x_val, torch.from_numpy(val.labels)) + 1e-3


def smoothed_objective_gradient(
    head: torch.nn.Linear, x: torch.Tensor, y: torch.Tensor, l2: float, smoothing: float
) -> float:
    head.zero_grad()
    ce = torch.nn.functional.cross_entropy(head(x), y, label_smoothing=smoothing)
    (ce + l2 * head.weight.pow(2).sum()).backward()  # type: ignore[no-untyped-call]
    return float(sum(p.grad.norm() ** 2 for p in head.parameters() if p.grad is not None) ** 0.5)


def test_the_probe_fits_the_label_smoothed_loss_that_fine_tuning_goes_on_to_minimise() -> None:
    train, val, net = red_blue_probe_setup()
    fit = probe_head(net, train, val, SPEC, label_smoothing=0.1)
    x, y = frozen_features(net, train, SPEC), torch.from_numpy(train.labels)
    at_optimum = smoothed_objective_gradient(net.head, x, y, fit.l2, 0.1)
    plain = torch.nn.Linear(4, 2)
    fit_head(plain, x, y, fit.l2)  # the same L2, fitted without smoothing
    assert at_optimum < 1e-3 < smoothed_objective_gradient(plain, x, y, fit.l2, 0.1)
    with torch.no_grad():  # smoothing keeps the fitted head's logits from running off
        assert net.head(x).abs().max() < plain(x).abs().max()
