"""The label-shift detectors `champion_health.py` runs after each batch: each judges a
champion's fresh labels against its own out-of-fold (OOF) predictions, at the level `alpha`
per evaluation (the platform's `ML_PLATFORM_HEALTH_ALPHA`):

- **newest labels vs OOF + older fresh (method)**: `learning.label_shift.label_shift_test`
  on the newest `window` fresh labels (`window` = the minimum fresh set, as the platform
  does) against the OOF labels and the older fresh ones (what `champion_fresh_ap` runs);
- **newest labels vs OOF only**: the same window against the OOF labels alone;
- **whole fresh set vs OOF**: every fresh label so far against the OOF labels;
- **Mann-Whitney per class**: the window's members' scores lower than the reference
  members', its rejections' higher than the reference rejections' (OOF + older fresh; two
  one-sided tests, Bonferroni, alpha/2 each).

The order of labels within a batch is shuffled with a fixed seed before the window is taken
(labels of one batch arrive together; the benchmark's batches list their members first).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy.stats import mannwhitneyu

from ml_platform.learning.label_shift import label_shift_test, split_newest


@dataclass(frozen=True)
class Oof:
    """A champion's OOF labels and probabilities (row order of its training set)."""

    y: NDArray[np.int64]
    p: NDArray[np.float64]


ShiftDetector = Callable[[NDArray[np.int64], NDArray[np.float64], Oof, int, float], bool]


def reference(y: NDArray[np.int64], p: NDArray[np.float64], oof: Oof, window: int) -> tuple[
    NDArray[np.int64], NDArray[np.float64], NDArray[np.int64], NDArray[np.float64]
]:  # fmt: skip
    """The window's labels and probabilities, and the reference's: OOF + older fresh."""
    (wy, wp), (older_y, older_p) = split_newest(y, p, window)
    return wy, wp, np.concatenate([oof.y, older_y]), np.concatenate([oof.p, older_p])


def window_test(y: NDArray[np.int64], p: NDArray[np.float64], oof: Oof, window: int,
                alpha: float) -> bool:  # fmt: skip
    return label_shift_test(*reference(y, p, oof, window)).p_value < alpha


def oof_only(y: NDArray[np.int64], p: NDArray[np.float64], oof: Oof, window: int,
             alpha: float) -> bool:  # fmt: skip
    (wy, wp), _ = split_newest(y, p, window)
    return label_shift_test(wy, wp, oof.y, oof.p).p_value < alpha


def whole_test(y: NDArray[np.int64], p: NDArray[np.float64], oof: Oof, window: int,
               alpha: float) -> bool:  # fmt: skip
    return label_shift_test(y, p, oof.y, oof.p).p_value < alpha


def mann_whitney(y: NDArray[np.int64], p: NDArray[np.float64], oof: Oof, window: int,
                 alpha: float) -> bool:  # fmt: skip
    wy, wp, ry, rp = reference(y, p, oof, window)
    sides = ((1, "less"), (0, "greater"))
    found = [(wp[wy == c], rp[ry == c], side) for c, side in sides]
    tests = [mannwhitneyu(a, b, alternative=side).pvalue for a, b, side in found
             if a.size and b.size]  # fmt: skip
    return bool(tests) and min(tests) < alpha / len(tests)


SHIFT_DETECTORS: dict[str, ShiftDetector] = {
    "health: label-shift test, newest labels vs OOF + older fresh (method)": window_test,
    "health: label-shift test, newest labels vs OOF only": oof_only,
    "health: label-shift test, whole fresh set vs OOF": whole_test,
    "health: Mann-Whitney per class, newest labels vs OOF + older fresh": mann_whitney,
}


def shift_alarms(
    estimator: object, oof: Oof, run: list[tuple[NDArray[np.float32], NDArray[np.int64]]],
    window: int, alpha: float,
) -> dict[str, list[bool]]:  # fmt: skip
    """Per detector, whether it alarmed after each batch (from `window` fresh labels on)."""
    shuffle = np.random.default_rng(0)
    ys, ps = [], []
    out: dict[str, list[bool]] = {name: [] for name in SHIFT_DETECTORS}
    for batch_x, batch_y in run:
        order = shuffle.permutation(len(batch_y))
        proba = np.asarray(estimator.predict_proba(batch_x), np.float64)[:, 1]  # type: ignore[attr-defined]
        ys.append(batch_y[order])
        ps.append(proba[order])
        y, p = np.concatenate(ys), np.concatenate(ps)
        for name, detect in SHIFT_DETECTORS.items():
            out[name].append(len(y) >= window and detect(y, p, oof, window, alpha))
    return out
