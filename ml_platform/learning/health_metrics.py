"""How a fitted classifier scores on labels it never saw: the champion-health figures.

Pure functions, no I/O. `health_figures` computes average precision, precision and recall at
the model's own threshold, calibration (Brier score, expected calibration error) and a
stratified bootstrap interval for AP (resampling groups of near-duplicate images, so a photo
labelled twice, or with its mirror image, counts once); `decide_health` turns them into OK /
WARN / ERROR against the version's training CV AP, bootstrap-aware: a WARN needs the
interval's upper bound below the allowed drop too, so noise on a few fresh images does not
raise an alarm."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import ClassVar

import numpy as np
from numpy.typing import NDArray
from sklearn.metrics import average_precision_score

from ml_platform.learning.evaluation import Figures, validate_labels
from ml_platform.learning.folds import merge_near_duplicates

ECE_BINS = 10
BOOTSTRAP_ROUNDS = 1000
INTERVAL = 0.95


class HealthStatus(StrEnum):
    """The outcome of one champion-health evaluation."""

    OK = "ok"
    WARN = "warn"
    ERROR = "error"
    NOT_EVALUATED = "not_evaluated"  # no champion, too few fresh labels, another embedder

    @property
    def failing(self) -> bool:
        return self in (HealthStatus.WARN, HealthStatus.ERROR)


@dataclass(frozen=True)
class HealthFigures(Figures):
    """A champion scored on fresh labels (`ap_low`/`ap_high`: bootstrap interval of AP)."""

    METRICS_PREFIX: ClassVar[str] = "fresh_"

    average_precision: float
    ap_low: float
    ap_high: float
    precision: float
    recall: float
    brier: float
    ece: float
    threshold: float
    n_pos: int
    n_neg: int


@dataclass(frozen=True)
class HealthLimits:
    """WARN below `cv_ap - max_ap_drop` (with the bootstrap upper bound below too); ERROR
    when the upper bound is below `ap_floor` (the AP no served model may fall under)."""

    max_ap_drop: float
    ap_floor: float


@dataclass(frozen=True)
class HealthDecision:
    status: HealthStatus
    reason: str


def brier_score(y: NDArray[np.int64], p: NDArray[np.float64]) -> float:
    return float(np.mean((p - y) ** 2))


def expected_calibration_error(
    y: NDArray[np.int64], p: NDArray[np.float64], bins: int = ECE_BINS
) -> float:
    """Equal-width bins over [0, 1]: sum over bins of |mean prob - positive rate| x share."""
    which = np.minimum((p * bins).astype(np.int64), bins - 1)
    total = 0.0
    for b in np.unique(which):
        mask = which == b
        total += float(mask.mean()) * abs(float(p[mask].mean()) - float(y[mask].mean()))
    return total


def average_precision(y: NDArray[np.int64], p: NDArray[np.float64]) -> float:
    """scikit-learn's average precision (ties share a threshold), in a few array operations:
    the bootstrap calls it a thousand times."""
    order = np.argsort(-p, kind="stable")
    scores, hits = p[order], y[order]
    last = np.r_[np.flatnonzero(np.diff(scores)), scores.size - 1]  # end of each tie run
    tp = np.cumsum(hits)[last]
    precision = tp / (last + 1)
    recall_step = np.diff(np.r_[0, tp]) / tp[-1]
    return float(np.sum(recall_step * precision))


def bootstrap_ap(
    y: NDArray[np.int64],
    p: NDArray[np.float64],
    rounds: int = BOOTSTRAP_ROUNDS,
    seed: int = 0,
    interval: float = INTERVAL,
    groups: NDArray[np.int64] | None = None,
) -> tuple[float, float]:
    """The central `interval` percentile interval of AP over stratified resamples (positives
    and negatives resampled apart, so every resample has both classes). With `groups` (one id
    per row) the resampled units are a class's rows of one group, drawn together: rows that
    are copies of one photo are not independent draws, and counting them so narrows the
    interval (None: every row its own group)."""
    rng = np.random.default_rng(seed)
    units = np.arange(y.size) if groups is None else np.asarray(groups, np.int64)
    keys = np.unique(units * 2 + y, return_inverse=True)[1]  # a group's members, its rejections
    order = np.argsort(keys, kind="stable")
    sizes = np.bincount(keys)
    starts = np.r_[0, np.cumsum(sizes)[:-1]]
    unit_class = y[order[starts]]
    pos, neg = np.flatnonzero(unit_class == 1), np.flatnonzero(unit_class == 0)
    values = np.empty(rounds)
    for r in range(rounds):
        picked = np.concatenate([rng.choice(pos, pos.size), rng.choice(neg, neg.size)])
        index = order[rows_of(picked, starts, sizes)]
        values[r] = average_precision(y[index], p[index])
    tail = (1.0 - interval) / 2 * 100
    low, high = np.percentile(values, [tail, 100 - tail])
    return float(low), float(high)


def rows_of(
    picked: NDArray[np.int64], starts: NDArray[np.int64], sizes: NDArray[np.int64]
) -> NDArray[np.int64]:
    """The positions `starts[k] .. starts[k] + sizes[k] - 1` of every picked unit k, in turn."""
    lengths = sizes[picked]
    offsets = np.repeat(starts[picked] - np.cumsum(lengths) + lengths, lengths)
    return offsets + np.arange(int(lengths.sum()))


def health_figures(
    y: NDArray[np.generic],
    scores: NDArray[np.floating],
    threshold: float,
    seed: int = 0,
    interval: float = INTERVAL,
    embeddings: NDArray[np.floating] | None = None,
) -> HealthFigures:
    """Every figure for probabilities `scores` against fresh labels `y` (both classes);
    `interval`: the bootstrap interval's coverage (0.95 in the platform); `embeddings` (one
    row per label): the bootstrap resamples their near-duplicate groups (None: every row)."""
    labels = validate_labels(y)
    p = np.asarray(scores, dtype=np.float64)
    if p.shape != labels.shape:
        raise ValueError(f"scores shape {p.shape} does not match labels shape {labels.shape}")
    predicted = p >= threshold
    true_pos = int((predicted & (labels == 1)).sum())
    ap = float(average_precision_score(labels, p))
    groups = None if embeddings is None else near_duplicate_groups(embeddings)
    low, high = bootstrap_ap(labels, p, seed=seed, interval=interval, groups=groups)
    return HealthFigures(
        average_precision=ap,
        ap_low=min(low, ap),  # resampled ties bias AP on a near-perfect (or inverted)
        ap_high=max(high, ap),  # ranking: the interval is widened to hold the estimate
        precision=true_pos / int(predicted.sum()) if predicted.any() else 0.0,
        recall=true_pos / int(labels.sum()),
        brier=brier_score(labels, p),
        ece=expected_calibration_error(labels, p),
        threshold=float(threshold),
        n_pos=int(labels.sum()),
        n_neg=int(labels.size - labels.sum()),
    )


def near_duplicate_groups(embeddings: NDArray[np.floating]) -> NDArray[np.int64]:
    """One id per row, shared by near-duplicates (cosine >= `folds.NEAR_DUPLICATE_COSINE`,
    joined in turn): the threshold the training folds group by."""
    return merge_near_duplicates(embeddings, np.arange(len(embeddings), dtype=np.int64))


def decide_health(
    figures: HealthFigures, cv_ap: float | None, limits: HealthLimits
) -> HealthDecision:
    """ERROR below the floor, WARN below the allowed drop from `cv_ap`, else OK; both need the
    bootstrap upper bound below the line as well as the point estimate. Without a training
    CV AP (a legacy import) only the floor applies."""
    ap, high = figures.average_precision, figures.ap_high
    said = f"fresh AP {ap:.3f} (95% interval {figures.ap_low:.3f}-{high:.3f}, " + (
        f"{figures.n_pos} members, {figures.n_neg} rejections) vs training CV AP "
        + ("unknown" if cv_ap is None else f"{cv_ap:.3f}")
    )
    if high < limits.ap_floor:
        return HealthDecision(HealthStatus.ERROR, f"{said}: below the floor {limits.ap_floor}")
    line = -1.0 if cv_ap is None else cv_ap - limits.max_ap_drop
    if ap < line and high < line:
        return HealthDecision(
            HealthStatus.WARN, f"{said}: more than {limits.max_ap_drop} below, beyond noise"
        )
    return HealthDecision(HealthStatus.OK, said)
