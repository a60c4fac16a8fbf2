"""Scoring a binary collection classifier: average precision, ROC AUC and F1 at a threshold.

One function (`evaluate_scores`) computes every figure, so a champion scored with
`evaluate_on` and a challenger scored on its out-of-fold predictions are measured alike.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import ClassVar, Protocol

import numpy as np
from numpy.typing import NDArray
from sklearn.metrics import (
    average_precision_score,
    f1_score,
    precision_recall_curve,
    precision_score,
    recall_score,
    roc_auc_score,
)

from ml_platform.learning.candidates import CandidateName


class ProbabilisticClassifier(Protocol):
    """Anything with scikit-learn's `predict_proba` (column 1 = "in the collection")."""

    def predict_proba(self, X: NDArray[np.float32]) -> NDArray[np.float64]: ...


@dataclass(frozen=True)
class Figures:
    """A frozen record of figures; `as_metrics` flattens it for MLflow as
    `{prefix + field: value}`, the prefix defaulting to the class's `METRICS_PREFIX`."""

    METRICS_PREFIX: ClassVar[str] = ""

    def as_metrics(self, prefix: str | None = None) -> dict[str, float]:
        start = self.METRICS_PREFIX if prefix is None else prefix
        return {f"{start}{key}": float(value) for key, value in asdict(self).items()}


@dataclass(frozen=True)
class Evaluation(Figures):
    """How well scores separate positives from negatives on one labelled set."""

    average_precision: float
    roc_auc: float
    f1: float
    precision: float
    recall: float
    threshold: float
    n_pos: int
    n_neg: int


def validate_labels(y: NDArray[np.generic]) -> NDArray[np.int64]:
    """`y` as int 0/1; an error naming the problem when it is not binary with both classes."""
    labels = np.asarray(y)
    if labels.ndim != 1:
        raise ValueError(f"labels must be a 1-D array, got shape {labels.shape}")
    values = set(np.unique(labels).tolist())
    if not values <= {0, 1}:
        raise ValueError(f"labels must be 0/1 (or bool), got values {sorted(values)}")
    if values != {0, 1}:
        raise ValueError(
            f"labels must contain both positives (1) and negatives (0), got only {sorted(values)}"
        )
    return labels.astype(np.int64)


def max_f1_threshold(y: NDArray[np.generic], scores: NDArray[np.floating]) -> float:
    """The score threshold that maximises F1 (`score >= threshold` means positive).

    Among equal F1 values the lowest threshold wins (precision_recall_curve order).
    """
    labels = validate_labels(y)
    precision, recall, thresholds = precision_recall_curve(labels, scores)
    precision, recall = precision[:-1], recall[:-1]  # the last point has no threshold
    denominator = precision + recall
    f1 = np.divide(
        2 * precision * recall,
        denominator,
        out=np.zeros_like(denominator),
        where=denominator > 0,
    )
    return float(thresholds[int(np.argmax(f1))])


def evaluate_scores(
    y: NDArray[np.generic], scores: NDArray[np.floating], threshold: float
) -> Evaluation:
    """Every figure for `scores` (probability of "in the collection") against labels `y`."""
    labels = validate_labels(y)
    probabilities = np.asarray(scores, dtype=np.float64)
    if probabilities.shape != labels.shape:
        raise ValueError(
            f"scores shape {probabilities.shape} does not match labels shape {labels.shape}"
        )
    predicted = (probabilities >= threshold).astype(np.int64)
    return Evaluation(
        average_precision=float(average_precision_score(labels, probabilities)),
        roc_auc=float(roc_auc_score(labels, probabilities)),
        f1=float(f1_score(labels, predicted, zero_division=0.0)),
        precision=float(precision_score(labels, predicted, zero_division=0.0)),
        recall=float(recall_score(labels, predicted, zero_division=0.0)),
        threshold=float(threshold),
        n_pos=int(labels.sum()),
        n_neg=int(labels.size - labels.sum()),
    )


def evaluate_on(
    estimator: ProbabilisticClassifier,
    X: NDArray[np.floating],
    y: NDArray[np.generic],
    threshold: float,
) -> Evaluation:
    """Score a fitted estimator on (X, y) with the same figures training reports.

    For champion versus challenger, score the champion with this on the current labelled
    set and compare it with the challenger's `TrainingResult.out_of_fold` (scored on the
    same images, each by a model that did not train on it).
    """
    data = np.asarray(X, dtype=np.float32)
    if data.ndim != 2 or data.shape[0] != np.asarray(y).shape[0]:
        raise ValueError(
            f"X must be [n, dim] with one row per label, got X {data.shape} and "
            f"{np.asarray(y).shape[0]} labels"
        )
    probabilities = np.asarray(estimator.predict_proba(data))[:, 1]
    return evaluate_scores(y, probabilities, threshold)


@dataclass(frozen=True)
class CandidateMetrics:
    """Cross-validated figures for one candidate (AP per fold; the rest on pooled OOF)."""

    name: CandidateName
    average_precision_mean: float
    average_precision_std: float
    out_of_fold: Evaluation
    folds: int
    # One OOF probability per training row (row order of X): the label audit reads these
    probabilities: NDArray[np.float64] = field(
        default_factory=lambda: np.zeros(0), compare=False, repr=False
    )

    @property
    def roc_auc(self) -> float:
        return self.out_of_fold.roc_auc

    @property
    def f1_at_threshold(self) -> float:
        return self.out_of_fold.f1

    def as_metrics(self) -> dict[str, float]:
        """Flat figures for MLflow, e.g. `cv_average_precision_mean`, `cv_oof_roc_auc`."""
        return {
            "cv_average_precision_mean": self.average_precision_mean,
            "cv_average_precision_std": self.average_precision_std,
            "cv_folds": float(self.folds),
            **self.out_of_fold.as_metrics(prefix="cv_oof_"),
        }
