"""The label-shift detectors `champion_health.py` runs after each batch: each judges a
champion's fresh labels against its own out-of-fold (OOF) predictions, at the level `alpha`
per evaluation (the platform's `ML_PLATFORM_HEALTH_ALPHA`):

- **newest labels vs OOF + older fresh (method)**: `learning.label_shift.label_shift_test`
  on the newest `window` fresh labels (`window` = the minimum fresh set, as the platform
  does) against the OOF labels and the older fresh ones (what `champion_fresh_ap` runs);
- **per class, min p / Fisher**: the same window and reference, but members and rejections
  tested separately (one permutation p-value each) and combined by Bonferroni (alarm when the
  smaller is under alpha/2) or by Fisher's method (so the refit's lower log-loss on fresh
  rejections cannot mask members scored like rejections);
- **newest 2 batches**: the method on the labels of the newest 2 batches (since the
  evaluation before last) instead of the newest `window`;
- **since the evaluation before last** (the platform's terms for "newest 2 batches"): the
  method on the labels made after the evaluation before last (`learning.label_shift.
  since_evaluation_before_last`), at least the newest `window` of them, or at least 1 (the
  newest `window` when none). This benchmark evaluates after each batch once `window` fresh
  labels exist (the platform logs an evaluation only then), so a batch's labels are made
  between two evaluations, as labels made between two of the platform's evaluations;
- **since the evaluation before last with new labels**: the same, counting only the
  evaluations that saw new labels (`since_evaluation_before_last_with_new_labels`: the
  labels of the newest 2 rounds between evaluations that have labels);
- **2 evaluations a batch**: the "since" rules evaluating at the batch and once more before
  the next (no new label in between, as a daily run between two labelling sessions);
- **newest labels vs OOF only**: the same window against the OOF labels alone;
- **whole fresh set vs OOF**: every fresh label so far against the OOF labels;
- **Mann-Whitney per class**: the window's members' scores lower than the reference
  members', its rejections' higher than the reference rejections' (OOF + older fresh; two
  one-sided tests, Bonferroni, alpha/2 each).

The order of labels within a batch is shuffled with a fixed seed before the window is taken
(labels of one batch arrive together; the benchmark's batches list their members first).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy.stats import chi2, mannwhitneyu

from ml_platform.learning.label_shift import (
    PERMUTATIONS,
    label_shift_test,
    log_loss_terms,
    permuted_sums,
    since_evaluation_before_last,
    since_evaluation_before_last_with_new_labels,
    split_newest,
)


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


def last_batches(batch: int, looks: int = 2) -> ShiftDetector:
    """The platform's test on the newest `looks` batches of `batch` labels (the labels since
    the evaluation `looks` ago, this benchmark evaluating after each batch) instead of the
    newest `window`."""

    def detect(y: NDArray[np.int64], p: NDArray[np.float64], oof: Oof, window: int,
               alpha: float) -> bool:  # fmt: skip
        return window_test(y, p, oof, looks * batch, alpha)

    return detect


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


def class_p_values(y: NDArray[np.int64], p: NDArray[np.float64], oof: Oof, window: int) -> (
    list[float]
):  # fmt: skip
    """The window's log-loss tested per class (members, rejections) against the reference's
    labels of that class (OOF + older fresh), one permutation p-value per class."""
    wy, wp, ry, rp = reference(y, p, oof, window)
    fresh, ref = log_loss_terms(wy, wp), log_loss_terms(ry, rp)
    rng = np.random.default_rng(0)
    out = []
    for label in (1, 0):
        mine, theirs = fresh[wy == label], ref[ry == label]
        if mine.size and theirs.size:
            null = permuted_sums(mine, theirs, PERMUTATIONS, rng)
            out.append((1 + int(np.sum(null >= mine.sum() - 1e-9))) / (1 + PERMUTATIONS))
    return out


def per_class_min(y: NDArray[np.int64], p: NDArray[np.float64], oof: Oof, window: int,
                  alpha: float) -> bool:  # fmt: skip
    found = class_p_values(y, p, oof, window)
    return bool(found) and min(found) < alpha / len(found)


def per_class_fisher(y: NDArray[np.int64], p: NDArray[np.float64], oof: Oof, window: int,
                     alpha: float) -> bool:  # fmt: skip
    found = class_p_values(y, p, oof, window)
    statistic = -2.0 * float(np.sum(np.log(found)))
    return bool(found) and float(chi2.sf(statistic, 2 * len(found))) < alpha


SHIFT_DETECTORS: dict[str, ShiftDetector] = {
    "health: label-shift test, newest labels vs OOF + older fresh (method)": window_test,
    "health: label-shift test per class, min p (Bonferroni)": per_class_min,
    "health: label-shift test per class, Fisher's combination": per_class_fisher,
    "health: label-shift test, newest labels vs OOF only": oof_only,
    "health: label-shift test, whole fresh set vs OOF": whole_test,
    "health: Mann-Whitney per class, newest labels vs OOF + older fresh": mann_whitney,
}


WindowRule = Callable[[NDArray[np.float64], list[float], int], int]
SINCE_RULES: dict[str, WindowRule] = {
    "health: label-shift test, since the evaluation before last, at least newest min-fresh": (
        lambda times, evals, window: since_evaluation_before_last(times, evals, window, window)
    ),
    "health: label-shift test, since the evaluation before last, at least 1": (
        lambda times, evals, window: since_evaluation_before_last(times, evals, 1, window)
    ),
    "health: label-shift test, since the evaluation before last with new labels, at least 1": (
        lambda times, evals, window: since_evaluation_before_last_with_new_labels(
            times, evals, 1, window
        )
    ),
}
NEW_WINDOW = list(SINCE_RULES)[2]  # the platform's window since this round
# the same rules with 2 evaluations a batch: at the batch, then again before the next with no
# new label (as a daily run between two labelling sessions)
TWICE = {f"{name}, 2 evaluations a batch": rule for name, rule in list(SINCE_RULES.items())[1:]}


def scheduled(
    rule: WindowRule, y: NDArray[np.int64], p: NDArray[np.float64], oof: Oof,
    times: NDArray[np.float64], evals: list[float], at: Sequence[float], window: int,
    alpha: float,
) -> bool:  # fmt: skip
    """Whether any of the evaluations at the times `at` (after the batch's labels) alarmed
    with the window `rule` gives; each is then appended to `evals`."""
    found = []
    for when in at:
        found.append(window_test(y, p, oof, rule(times, evals, window), alpha))
        evals.append(when)
    return any(found)


def shift_alarms(
    estimator: object, oof: Oof, run: list[tuple[NDArray[np.float32], NDArray[np.int64]]],
    window: int, alpha: float, names: Sequence[str] | None = None,
) -> dict[str, list[bool]]:  # fmt: skip
    """Per detector (those in `names`; None: all), whether it alarmed after each batch (from
    `window` fresh labels on)."""
    wanted = set(names) if names is not None else {*SHIFT_DETECTORS, *SINCE_RULES, *TWICE}
    shuffle = np.random.default_rng(0)
    ys, ps, times = [], [], []  # times: the batch each label came in
    evals: dict[str, list[float]] = {name: [] for name in [*SINCE_RULES, *TWICE]}
    out: dict[str, list[bool]] = {name: [] for name in [*SHIFT_DETECTORS, *SINCE_RULES, *TWICE]}
    for k, (batch_x, batch_y) in enumerate(run):
        order = shuffle.permutation(len(batch_y))
        proba = np.asarray(estimator.predict_proba(batch_x), np.float64)[:, 1]  # type: ignore[attr-defined]
        ys.append(batch_y[order])
        ps.append(proba[order])
        times.append(np.full(len(batch_y), float(k)))
        y, p, t = np.concatenate(ys), np.concatenate(ps), np.concatenate(times)
        ready = len(y) >= window
        for name, detect in SHIFT_DETECTORS.items():
            out[name].append(ready and name in wanted and detect(y, p, oof, window, alpha))
        for rules, at in ((SINCE_RULES, (float(k),)), (TWICE, (float(k), k + 0.5))):
            for name, rule in rules.items():
                run_it = ready and name in wanted
                out[name].append(run_it and scheduled(rule, y, p, oof, t, evals[name], at, window,
                                                      alpha))  # fmt: skip
    return {name: flags for name, flags in out.items() if name in wanted}


def late_champions(delays: dict[tuple[str, str], list[int | None]], first_seed: int) -> None:
    """Each champion the platform's label-shift test (the first) caught late, with every
    label-shift test's delay."""
    late_table(delays, "label", [*SHIFT_DETECTORS, *SINCE_RULES, *TWICE], first_seed)


def late_table(
    delays: dict[tuple[str, str], list[int | None]], scenario: str, names: list[str],
    first_seed: int,
) -> None:  # fmt: skip
    """Each champion (seed, breed) the first of `names` caught later than 2 batches after a
    planted `scenario` shift, with the delay of every one of `names` that ran ("-": missed)."""
    table = {name: delays[(scenario, name)] for name in names if (scenario, name) in delays}
    print("\n| seed | breed | " + " | ".join(table) + " |\n|---|---|" + "---|" * len(table))
    for i in range(len(next(iter(table.values())))):
        row = [table[name][i] for name in table]
        if row[0] is None or row[0] > 2:
            cells = " | ".join("-" if d is None else str(d) for d in row)
            print(f"| {first_seed + i // 12} | {i % 12} | {cells} |")
