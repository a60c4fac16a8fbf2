"""The peers of benchmarks/curation.py: what a user would write without the platform.

cleanlab is AGPL-3.0: imported here only (the `bench` extra), never by ml_platform.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler


def plain_logistic_ranking(
    X: NDArray[np.float32], member: NDArray[np.bool_]
) -> NDArray[np.float64]:
    """A logistic regression of the members against every other image, scoring every image."""
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    model.fit(X, member.astype(np.int64))
    return np.asarray(model.predict_proba(X)[:, 1], dtype=np.float64)


def cleanlab_issues(y: NDArray[np.int64], p: NDArray[np.float64]) -> NDArray[np.intp]:
    """Rows cleanlab's `find_label_issues` flags on the same binary OOF probabilities."""
    from cleanlab.filter import find_label_issues

    pred_probs = np.column_stack([1.0 - p, p])
    flagged = find_label_issues(labels=y, pred_probs=pred_probs)
    return np.flatnonzero(flagged)
