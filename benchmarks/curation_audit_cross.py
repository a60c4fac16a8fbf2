"""Cross-collection evidence for the audit (benchmarks/curation_audit.py, issue 22 item 2).

A wrongly added member belongs to the wrong collection AND another collection claims it. The
third view stays one-vs-rest (collections may overlap): per image, its own collection's OOF
probability against the strongest other collection's, p_c / (p_c + max_{c' != c} p_c'); an
image two collections both claim sits near 0.5, neutral. It is pooled on the log-odds with the
OOF probability and the audit's neighbour view, then flagged by the service's rule. For fairness
cleanlab gets the same evidence: the multi-class matrix (rows normalised), the noisy class as
the label; a row it flags is a flagged member of its given class and a flagged rejection of
the class it most probably belongs to instead.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from ml_platform.learning.curation.audit import below_base_rate, confident_joint_mask
from ml_platform.learning.curation.neighbours import (
    audit_neighbour_probability,
    neighbour_probability,
)

CROSS_PEERS = ("3 views (+ cross-collection)", "cleanlab multi-class")
_EDGE = 1e-6
Sides = tuple[set[int], set[int]]


def cross_view(P: NDArray[np.float64], c: int) -> NDArray[np.float64]:
    """Collection c's claim on each image against the strongest other collection's."""
    rival = np.delete(P, c, axis=1).max(axis=1)
    return np.asarray(P[:, c] / np.maximum(P[:, c] + rival, 1e-12), np.float64)


def cleanlab_multiclass(P: NDArray[np.float64], noisy: NDArray[np.int64]) -> set[int]:
    from cleanlab.filter import find_label_issues

    probs = np.clip(P, _EDGE, None)
    probs /= probs.sum(axis=1, keepdims=True)
    return set(np.flatnonzero(find_label_issues(labels=noisy, pred_probs=probs)).tolist())


def cross_flags(X: NDArray[np.float32], noisy: NDArray[np.int64], P: NDArray[np.float64], c: int,
                multi: set[int]) -> dict[str, Sides]:  # fmt: skip
    y = (noisy == c).astype(np.int64)
    views = (P[:, c], audit_neighbour_probability(X, y), cross_view(P, c))
    pooled = _pool(*views)
    base = _pool(*(np.array([v.mean()]) for v in views))
    flagged = _below(y, pooled, float(base[0])) | (confident_joint_mask(y, pooled) & (y == 0))
    instead = np.argmax(np.where(np.arange(P.shape[1]) == noisy[:, None], -1.0, P), axis=1)
    return {
        CROSS_PEERS[0]: (_rows(flagged & (y == 1)), _rows(flagged & (y == 0))),
        CROSS_PEERS[1]: (
            {i for i in multi if noisy[i] == c},
            {i for i in multi if instead[i] == c},
        ),
    }


def _below(y: NDArray[np.int64], pooled: NDArray[np.float64], base: float) -> NDArray[np.bool_]:
    """The service's member test (`below_base_rate`) with a base of three views."""
    same = np.full_like(pooled, base)  # pool(base, base) == base
    return below_base_rate(y, same, same, pooled)


def _pool(*views: NDArray[np.float64]) -> NDArray[np.float64]:
    logits = [
        np.log(np.clip(v, _EDGE, 1 - _EDGE) / (1 - np.clip(v, _EDGE, 1 - _EDGE))) for v in views
    ]
    return np.asarray(1.0 / (1.0 + np.exp(-np.mean(logits, axis=0))), np.float64)


def _rows(mask: NDArray[np.bool_]) -> set[int]:
    return set(np.flatnonzero(mask).tolist())


def calibration_views(X: NDArray[np.float32], noisy: NDArray[np.int64], P: NDArray[np.float64],
                      c: int) -> dict[str, NDArray[np.float64]]:  # fmt: skip
    """Each view's probability of membership in c, to score against the true labels."""
    y = (noisy == c).astype(np.int64)
    nb, smooth = neighbour_probability(X, y), neighbour_probability(X, y, prior_weight=2.0)
    weighted = neighbour_probability(X, y, prior_weight=2.0, weighted=True)
    return {
        "OOF": P[:, c],
        "neighbours k=10": nb,
        "neighbours smoothed m=2": smooth,
        "pooled (ours)": _pool(P[:, c], nb),
        "pooled, smoothed nb": _pool(P[:, c], smooth),
        "pooled, sim-weighted smoothed nb": _pool(P[:, c], weighted),
        "3 views (+ cross-collection)": _pool(P[:, c], weighted, cross_view(P, c)),
    }


def brier_and_log_loss(p: NDArray[np.float64], truth: NDArray[np.bool_]) -> NDArray[np.float64]:
    """Sums over rows: squared error and log loss (probabilities clipped to [1e-6, 1 - 1e-6])."""
    q = np.clip(p, _EDGE, 1 - _EDGE)
    log_loss = -np.where(truth, np.log(q), np.log(1 - q))
    return np.array([((p - truth) ** 2).sum(), log_loss.sum(), truth.size])
