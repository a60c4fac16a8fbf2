"""Fitting one classifier on training rows with their negative-treatment weights."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

import numpy as np
from numpy.typing import NDArray
from sklearn.pipeline import Pipeline
from threadpoolctl import threadpool_limits

from ml_platform.learning.candidates import CandidateName, build_candidate
from ml_platform.learning.negatives import NegativeTreatment

P = ParamSpec("P")
R = TypeVar("R")


def one_blas_thread(fn: Callable[P, R]) -> Callable[P, R]:
    """Run `fn` with one BLAS/OpenMP thread. A collection's problem (hundreds of rows) gains
    nothing from more, and BLAS threads fighting other work for the cores made training
    tens of times slower (benchmarks/unlabelled_negatives.py prints the ratio); parallelism
    is across collections."""

    @functools.wraps(fn)
    def limited(*args: P.args, **kwargs: P.kwargs) -> R:
        with threadpool_limits(limits=1):
            return fn(*args, **kwargs)

    return limited


def row_weights(
    treatment: NegativeTreatment,
    X: NDArray[np.float32],
    y: NDArray[np.int64],
    unlabelled: NDArray[np.bool_] | None,
    rows: NDArray[np.intp] | NDArray[np.int64],
) -> NDArray[np.float64]:
    """Fitting weights of `rows` (a training fold, or every row for the refit)."""
    if unlabelled is not None and unlabelled.shape != y.shape:
        raise ValueError(f"unlabelled has {unlabelled.shape[0]} rows for {y.shape[0]} labels")
    mask = None if unlabelled is None else np.asarray(unlabelled, dtype=bool)[rows]
    return treatment.weights(X[rows], y[rows], mask)


def fit_candidate(
    name: CandidateName,
    seed: int,
    X: NDArray[np.float32],
    y: NDArray[np.int64],
    weights: NDArray[np.float64],
) -> Pipeline:
    """A fresh candidate fitted on the rows of positive weight (sized for those rows)."""
    kept = y[weights > 0]
    n_minority = int(min(kept.sum(), kept.size - kept.sum()))
    fitted: Pipeline = fit_rows(
        build_candidate(name, seed=seed, n_minority=n_minority), X, y, weights
    )
    return fitted


def fit_rows(
    model: Any, X: NDArray[np.float32], y: NDArray[np.int64], weights: NDArray[np.float64]
) -> Any:
    """Fit `model` on the rows of positive weight; the weights reach a pipeline's
    `classifier` step only when some differ from 1, so `keep` is an unweighted fit."""
    kept = weights > 0
    if (weights[kept] == 1.0).all():
        return model.fit(X[kept], y[kept])
    if isinstance(model, Pipeline) and "classifier" in model.named_steps:
        return model.fit(X[kept], y[kept], classifier__sample_weight=weights[kept])
    return model.fit(X[kept], y[kept])
