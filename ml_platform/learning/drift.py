"""Drift of what arrives: is a batch of embeddings drawn from the reference it is compared to?

Pure functions, no I/O. Each test returns a statistic and a p-value that is calibrated for
any batch size (a permutation test or an exact null), so a threshold on the p-value is a
false-alarm rate per clean batch, not a constant tuned to one batch size:

- `mmd_test` (the platform's, chosen by `benchmarks/champion_health.py`): the squared maximum
  mean discrepancy under an RBF kernel on L2-normalised vectors, bandwidth by the median
  heuristic on the pooled sample, p-value by permuting which rows are the batch. Each side
  counts a photo once (`distinct_rows`): copies, flips and crops of one photo (cosine >=
  `learning.folds.NEAR_DUPLICATE_COSINE`) are one draw, not several. Permutations treat every
  row as an independent draw, so a photo twice in a batch (and in no reference the same way)
  made clean batches look drifted: on `champion_health.py`'s clean batches a quarter held a
  copy, and those gave p < 0.05 a quarter of the time.
- `window_mmd_test` (what `batch_drift` runs): `mmd_test` of the batch alone and of the batch
  with the focus's previous batch, Bonferroni over the two; a shift that lasts is tested on
  twice the photos by its second batch (held-out seeds: 36 of 36 domain shifts within 2
  batches, against 29 for the batch alone).
- `mmd_agg_test`: the MMD aggregated over 5 bandwidths (MMDAgg); measured, not used (it lost).
- `classifier_test`: a domain classifier (logistic regression on a PCA of the pooled sample)
  fitted on half of the batch and reference and scored on the other half; its held-out AUC's
  p-value is the Mann-Whitney test's (exact: the held-out half never trained the classifier).
- `share_test`: a collection's share of the batch predicted positive against the share the
  champion predicts on its training-time images (Fisher's exact test of the two counts).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy.stats import fisher_exact, mannwhitneyu
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split

from ml_platform.learning.folds import NEAR_DUPLICATE_COSINE, merge_near_duplicates

PERMUTATIONS = 1000
PCA_DIM = 16
BANDWIDTH_EXPONENTS = (-2, -1, 0, 1, 2)  # MMDAgg's collection around the median heuristic
Vectors = NDArray[np.floating]


@dataclass(frozen=True)
class DriftTest:
    """One two-sample test: its statistic and its p-value under "no drift"."""

    statistic: float
    p_value: float


def normalised(x: Vectors) -> NDArray[np.float64]:
    """Rows scaled to unit length (zero rows stay zero)."""
    v = np.asarray(x, np.float64)
    norms = np.linalg.norm(v, axis=1, keepdims=True)
    return v / np.where(norms > 0, norms, 1.0)


def squared_distances(pooled: NDArray[np.float64]) -> tuple[NDArray[np.float64], float]:
    """Pairwise squared distances of the pooled rows, and their median over distinct pairs
    (1 when every row is the same)."""
    sq = np.sum(pooled**2, axis=1)
    d2 = np.maximum(sq[:, None] + sq[None, :] - 2.0 * pooled @ pooled.T, 0.0)
    upper = d2[np.triu_indices_from(d2, k=1)]
    return d2, float(np.median(upper[upper > 0])) if np.any(upper > 0) else 1.0


def rbf_kernel(pooled: NDArray[np.float64], scale: float = 1.0) -> NDArray[np.float64]:
    """exp(-d^2 / (scale^2 median(d^2))) over the pooled rows: the median heuristic (2 sigma^2
    = the median pairwise squared distance), its bandwidth times `scale`."""
    d2, median = squared_distances(pooled)
    return np.asarray(np.exp(-d2 / (scale**2 * median)), np.float64)


def distinct_rows(x: Vectors, cosine: float = NEAR_DUPLICATE_COSINE) -> Vectors:
    """The first row of each group of near-duplicates (cosine >= `cosine`, joined in turn),
    in their order: one row per photo."""
    groups = merge_near_duplicates(x, np.arange(len(x), dtype=np.int64), cosine)
    first = np.unique(groups, return_index=True)[1]
    return np.asarray(x)[np.sort(first)]


def mmd_test(
    batch: Vectors,
    reference: Vectors,
    permutations: int = PERMUTATIONS,
    seed: int = 0,
    near_duplicate: float | None = NEAR_DUPLICATE_COSINE,
) -> DriftTest:
    """Squared MMD (biased V-statistic) of `batch` vs `reference` and its permutation p-value
    `(1 + #{permuted >= observed}) / (1 + permutations)`, each side's near-duplicates
    (cosine >= `near_duplicate`) counted once (None: every row, as before)."""
    pooled, m = _pooled(batch, reference, near_duplicate)
    observed, null = permuted_mmds([rbf_kernel(pooled)], m, permutations, seed)
    exceed = int(np.sum(null[0] >= observed[0] - 1e-12))
    return DriftTest(float(observed[0]), (1 + exceed) / (1 + permutations))


def window_mmd_test(
    batch: Vectors,
    previous: Vectors | None,
    reference: Vectors,
    permutations: int = PERMUTATIONS,
    seed: int = 0,
) -> DriftTest:
    """`mmd_test` of the batch alone and of the batch with the focus's `previous` batch (a
    shift that lasts shows in twice the photos): the p-value is Bonferroni's over the tests
    run, `min(1, k * smallest p)`, with the statistic of the test that gave it. Without a
    previous batch it is `mmd_test` of the batch."""
    tests = [mmd_test(batch, reference, permutations, seed)]
    if previous is not None:
        tests.append(mmd_test(np.concatenate([previous, batch]), reference, permutations, seed))
    best = min(tests, key=lambda t: t.p_value)
    return DriftTest(best.statistic, min(1.0, len(tests) * best.p_value))


def mmd_agg_test(
    batch: Vectors,
    reference: Vectors,
    permutations: int = PERMUTATIONS,
    seed: int = 0,
    near_duplicate: float | None = NEAR_DUPLICATE_COSINE,
    exponents: tuple[int, ...] = BANDWIDTH_EXPONENTS,
) -> DriftTest:
    """The MMD aggregated over bandwidths (MMDAgg, Schrab et al. 2023: the median heuristic's
    bandwidth times 2^l, l in `exponents`, uniform weights): the statistic is the
    smallest of the per-bandwidth permutation p-values, and its p-value is that of the same
    statistic over the same permutations (min-p), so the level holds whichever bandwidth
    fits. Returns the squared MMD at the bandwidth with the smallest p-value."""
    pooled, m = _pooled(batch, reference, near_duplicate)
    kernels = [rbf_kernel(pooled, 2.0**exp) for exp in exponents]
    observed, null = permuted_mmds(kernels, m, permutations, seed)
    values = np.concatenate([observed[:, None], null], axis=1)  # (bandwidths, 1 + permutations)
    ranks = [row.size - np.searchsorted(np.sort(row), row - 1e-12) for row in values]
    min_p = np.min(np.asarray(ranks), axis=0)  # each column's smallest p-value, times 1 + B
    best = int(np.argmin([r[0] for r in ranks]))
    return DriftTest(float(observed[best]), float(np.sum(min_p <= min_p[0])) / values.shape[1])


def permuted_mmds(
    kernels: list[NDArray[np.float64]], m: int, permutations: int, seed: int
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Each kernel's squared MMD of the first `m` pooled rows against the rest (observed,
    shape (kernels,)), and under the same `permutations` of which rows are the batch
    (shape (kernels, permutations))."""
    n = kernels[0].shape[0] - m
    weights = np.r_[np.full(m, 1.0 / m), np.full(n, -1.0 / n)]
    rng = np.random.default_rng(seed)
    shuffled = rng.permuted(np.tile(weights, (permutations, 1)), axis=1)
    observed = np.asarray([float(weights @ k @ weights) for k in kernels])
    null = np.asarray([np.einsum("ij,ij->i", shuffled @ k, shuffled) for k in kernels])
    return observed, null


def _pooled(
    batch: Vectors, reference: Vectors, near_duplicate: float | None
) -> tuple[NDArray[np.float64], int]:
    """The normalised rows of both sides, the batch's first, each side's near-duplicates
    counted once (`near_duplicate` None: every row); and how many are the batch's."""
    _sizes(batch, reference)
    if near_duplicate is not None:
        batch, reference = (
            distinct_rows(batch, near_duplicate),
            distinct_rows(reference, near_duplicate),
        )
    return normalised(np.concatenate([batch, reference])), len(batch)


def classifier_test(batch: Vectors, reference: Vectors, seed: int = 0) -> DriftTest:
    """Held-out AUC of a batch-vs-reference classifier, with the one-sided Mann-Whitney
    p-value of that AUC (0.5: the classifier cannot tell them apart)."""
    m, n = _sizes(batch, reference)
    pooled = normalised(np.concatenate([batch, reference]))
    domain = np.r_[np.ones(m), np.zeros(n)].astype(np.int64)
    dim = min(PCA_DIM, pooled.shape[0] // 2 - 1, pooled.shape[1])
    features = PCA(dim, random_state=seed).fit_transform(pooled)
    fit_x, test_x, fit_y, test_y = train_test_split(
        features, domain, test_size=0.5, stratify=domain, random_state=seed
    )
    model = LogisticRegression(class_weight="balanced", max_iter=1000).fit(fit_x, fit_y)
    scores = model.decision_function(test_x)
    pos, neg = scores[test_y == 1], scores[test_y == 0]
    u = mannwhitneyu(pos, neg, alternative="greater")
    return DriftTest(float(u.statistic) / (pos.size * neg.size), float(u.pvalue))


def share_test(batch_positive: int, batch_size: int, ref_positive: int, ref_size: int) -> (
    DriftTest
):  # fmt: skip
    """The batch's predicted-positive share against the reference's (two-sided Fisher's
    exact test); the statistic is the batch share minus the reference share."""
    if not (0 <= batch_positive <= batch_size and 0 <= ref_positive <= ref_size):
        raise ValueError(f"counts out of range: {batch_positive}/{batch_size}, "
                         f"{ref_positive}/{ref_size}")  # fmt: skip
    if batch_size == 0 or ref_size == 0:
        raise ValueError("share_test needs a non-empty batch and reference")
    table = [[batch_positive, batch_size - batch_positive], [ref_positive, ref_size - ref_positive]]
    _, p = fisher_exact(table)
    return DriftTest(batch_positive / batch_size - ref_positive / ref_size, float(p))


def _sizes(batch: Vectors, reference: Vectors) -> tuple[int, int]:
    m, n = len(batch), len(reference)
    if m < 2 or n < 2:
        raise ValueError(f"a two-sample test needs 2 rows on each side; got {m} and {n}")
    if batch.shape[1] != reference.shape[1]:
        raise ValueError(f"batch has {batch.shape[1]} dimensions, reference {reference.shape[1]}")
    return m, n


def check_levels(alpha: float, n_embedding: int, n_share: int) -> tuple[float, float]:
    """(level of each embedding test, level of each share test) so that a batch with no drift
    is called drifted with probability at most `alpha` (Bonferroni): half of `alpha` for each
    family, all of it for the only one that has tests."""
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1); got {alpha}")
    halves = 2 if n_embedding and n_share else 1
    return alpha / halves / max(1, n_embedding), alpha / halves / max(1, n_share)


def permutations_for(level: float) -> int:
    """Permutations a test needs so that its smallest p-value is a tenth of `level`."""
    return max(PERMUTATIONS, math.ceil(10 / level) - 1)
