"""Label shift: do a champion's newest fresh labels disagree with it more than the labels it
was cross-validated on did?

Pure functions, no I/O. The test takes the newest `window` fresh labels (the amount of
evidence the platform already needs before it evaluates), so a shift is judged on what
arrived lately rather than diluted by the labels before it. Their reference is every label
of the champion known before them: its own out-of-fold (OOF) predictions (each training label
with the probability a fold model that never saw the image gave it) and the older fresh
labels. Under "no label shift" all of them are exchangeable within a class, so the older
fresh labels make the reference larger (a small collection has few OOF members) without
costing calibration; a shift that began within the window is compared with labels from
before it:

- statistic: the summed log-loss of the window's labels (members: -log p, rejections:
  -log(1 - p)); a member the champion scores like a rejection costs much;
- null, "no label shift": within each class, the window's labels are exchangeable with the
  reference's labels of that class, so a stratified permutation test (members permuted among
  members, rejections among rejections) gives a p-value that is calibrated for any window and
  reference size and does not depend on the share of members in the window (a shift in how
  many members people label is not a label shift);
- one-sided: only a higher log-loss than the reference's is evidence.

Fresh probabilities come from the champion refitted on all training data, OOF ones from fold
models trained on less: the refit scores its classes at least as well, which makes the OOF
part of the reference conservative. `label_shift_decision` adds the test to `decide_health`'s
AP decision: a p-value under the level WARNs even when the AP rule alone would not.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from ml_platform.learning.health_metrics import HealthDecision, HealthStatus

PERMUTATIONS = 2000
CHUNK = 250  # permutations drawn at once (bounds memory on a large OOF set)
EPS = 1e-6  # probabilities are clipped to [EPS, 1 - EPS] before the log


@dataclass(frozen=True)
class LabelShiftTest:
    """The window's summed log-loss, its mean under the null, and the one-sided p-value."""

    statistic: float
    expected: float
    p_value: float
    n_members: int
    n_rejections: int

    def as_metrics(self, prefix: str = "label_shift_") -> dict[str, float]:
        return {f"{prefix}log_loss": self.statistic, f"{prefix}expected_log_loss": self.expected,
                f"{prefix}p_value": self.p_value}  # fmt: skip


def log_loss_terms(y: NDArray[np.int64], p: NDArray[np.float64]) -> NDArray[np.float64]:
    """Each label's log-loss under the probabilities `p` (of membership)."""
    q = np.clip(np.asarray(p, np.float64), EPS, 1.0 - EPS)
    return np.where(np.asarray(y) == 1, -np.log(q), -np.log1p(-q))


def split_newest(y: NDArray[np.int64], p: NDArray[np.float64], window: int) -> tuple[
    tuple[NDArray[np.int64], NDArray[np.float64]], tuple[NDArray[np.int64], NDArray[np.float64]]
]:  # fmt: skip
    """((labels, probabilities) of the last `window`, (those of the ones before)), from
    `y` and `p` in arrival order, oldest first."""
    if window < 1:
        raise ValueError(f"window must be at least 1; got {window}")
    y, p = np.asarray(y, np.int64), np.asarray(p, np.float64)
    cut = max(0, y.size - window)
    return (y[cut:], p[cut:]), (y[:cut], p[:cut])


def since_evaluation_before_last(
    label_times: NDArray[np.float64], evaluations: Sequence[float], floor: int, fallback: int
) -> int:
    """How many of the newest fresh labels the test takes: those made after the version's
    evaluation before last (`evaluations`: the times of its earlier logged evaluations, not
    the one under way), at least `floor` of them; `fallback` (the newest that many) when
    there is no evaluation before last or no label since it. Times in seconds."""
    if len(evaluations) < 2:
        return fallback
    before_last = sorted(evaluations)[-2]
    since = int(np.sum(np.asarray(label_times, np.float64) > before_last))
    return max(since, floor) if since else fallback


def since_evaluation_before_last_with_new_labels(
    label_times: NDArray[np.float64], evaluations: Sequence[float], floor: int, fallback: int
) -> int:
    """How many of the newest fresh labels the test takes: those of the newest 2 rounds, a
    round being the labels made after one of the version's logged evaluations (`evaluations`,
    not the one under way) up to the next (or up to now). A round with no label does not
    count: an evaluation that saw no new label since the one before it is not "the last", so
    a second evaluation between two labelling sessions tests the same window as the first.
    At least `floor`; `fallback` (the newest that many) when fewer than 2 rounds with labels
    follow an evaluation. Times in seconds; a label made at an evaluation's time is its."""
    cuts = np.sort(np.asarray(evaluations, np.float64))
    rounds = np.searchsorted(cuts, np.asarray(label_times, np.float64), side="left")
    with_labels = np.unique(rounds[rounds >= 1])  # rounds after an evaluation, not empty
    if with_labels.size < 2:
        return fallback
    return max(int(np.sum(rounds >= with_labels[-2])), floor)


def label_shift_test(
    fresh_y: NDArray[np.int64],
    fresh_p: NDArray[np.float64],
    ref_y: NDArray[np.int64],
    ref_p: NDArray[np.float64],
    permutations: int = PERMUTATIONS,
    seed: int = 0,
) -> LabelShiftTest:
    """The stratified permutation test of the fresh labels' log-loss against the reference
    labels' (`ref_y`, `ref_p`: the OOF ones and the older fresh ones; a class with no
    reference label is left out: there is nothing to compare it with); p-value
    `(1 + #{permuted >= observed}) / (1 + permutations)`."""
    fresh = log_loss_terms(fresh_y, fresh_p)
    ref = log_loss_terms(ref_y, ref_p)
    rng = np.random.default_rng(seed)
    observed, expected, null = 0.0, 0.0, np.zeros(permutations)
    counts = {}
    for label in (1, 0):
        mine, theirs = fresh[fresh_y == label], ref[ref_y == label]
        counts[label] = int(mine.size) if theirs.size else 0
        if mine.size and theirs.size:
            observed += float(mine.sum())
            expected += mine.size * float(np.concatenate([mine, theirs]).mean())
            null += permuted_sums(mine, theirs, permutations, rng)
    if not counts[1] + counts[0]:
        raise ValueError("no fresh label has a reference label of its class to be compared with")
    exceed = int(np.sum(null >= observed - 1e-9))
    p_value = (1 + exceed) / (1 + permutations)
    return LabelShiftTest(observed, expected, p_value, counts[1], counts[0])


def permuted_sums(
    mine: NDArray[np.float64], theirs: NDArray[np.float64], permutations: int,
    rng: np.random.Generator,
) -> NDArray[np.float64]:  # fmt: skip
    """The sum of `mine.size` values drawn without replacement from both, `permutations`
    times: the statistic's null distribution within one class."""
    pooled = np.concatenate([mine, theirs])
    mask = np.r_[np.ones(mine.size), np.zeros(theirs.size)]
    out = []
    for start in range(0, permutations, CHUNK):
        rows = min(CHUNK, permutations - start)
        out.append(rng.permuted(np.tile(mask, (rows, 1)), axis=1) @ pooled)
    return np.concatenate(out)


def label_shift_decision(
    decision: HealthDecision, test: LabelShiftTest | None, level: float
) -> HealthDecision:
    """`decision` (the AP rule's) with the label-shift test: a p-value under `level` turns OK
    into WARN; the test's outcome is added to the reason either way."""
    if test is None:
        return decision
    shifted = test.p_value < level
    said = (
        f"; newest {test.n_members} members and {test.n_rejections} rejections: log-loss "
        f"{test.statistic:.2f} vs {test.expected:.2f} expected from the earlier labels, "
        f"p={test.p_value:.4f}" + (f" < {level:g}: labels shifted" if shifted else "")
    )
    status = HealthStatus.WARN if shifted and decision.status is HealthStatus.OK else None
    return HealthDecision(status or decision.status, decision.reason + said)
