"""Candidate classifier pipelines for a collection: "is this embedding in the collection?".

Every candidate sees the same preprocessing: L2-normalise the embedding (embedders differ in
scale; direction is what carries meaning) and standardise each dimension. The classifiers are
deliberately small: a collection has tens to hundreds of labelled images, not thousands.
"""

from __future__ import annotations

from enum import StrEnum

from sklearn.calibration import CalibratedClassifierCV
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import Normalizer, StandardScaler
from sklearn.svm import LinearSVC

MLP_HIDDEN_UNITS = 64
MAX_CALIBRATION_FOLDS = 3


class CandidateName(StrEnum):
    """The classifier families that compete for a collection."""

    LOGISTIC_REGRESSION = "logistic_regression"
    CALIBRATED_LINEAR_SVM = "calibrated_linear_svm"
    MLP = "mlp"


def build_candidate(name: CandidateName, *, seed: int, n_minority: int) -> Pipeline:
    """A fresh, unfitted pipeline for `name`.

    `n_minority` is the size of the smaller class in the data the pipeline will be fitted on;
    the calibrated SVM needs it to choose its inner calibration folds.
    """
    classifier = _CLASSIFIER_BUILDERS[name](seed, n_minority)
    return Pipeline(
        [
            ("l2_normalise", Normalizer(norm="l2")),
            ("standardise", StandardScaler()),
            ("classifier", classifier),
        ]
    )


def _logistic_regression(seed: int, n_minority: int) -> LogisticRegression:
    return LogisticRegression(C=1.0, class_weight="balanced", max_iter=2000, random_state=seed)


def _calibrated_linear_svm(seed: int, n_minority: int) -> CalibratedClassifierCV:
    folds = min(MAX_CALIBRATION_FOLDS, n_minority)
    if folds < 2:
        raise ValueError(
            f"the calibrated linear SVM needs at least 2 examples of each class to fit, "
            f"got {n_minority} of the smaller class; label more images or drop this candidate"
        )
    svm = LinearSVC(C=0.1, class_weight="balanced", max_iter=5000, random_state=seed)
    inner_cv = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    return CalibratedClassifierCV(svm, method="sigmoid", cv=inner_cv)


def _mlp(seed: int, n_minority: int) -> MLPClassifier:
    # Full-batch Adam below 200 examples; the loose tolerance stops it once the loss
    # plateaus (an early stop that also regularises). lbfgs was 3x slower on 1280-d inputs.
    return MLPClassifier(
        hidden_layer_sizes=(MLP_HIDDEN_UNITS,),
        alpha=1e-2,
        solver="adam",
        learning_rate_init=3e-3,
        tol=1e-3,
        max_iter=300,
        random_state=seed,
    )


_CLASSIFIER_BUILDERS = {
    CandidateName.LOGISTIC_REGRESSION: _logistic_regression,
    CandidateName.CALIBRATED_LINEAR_SVM: _calibrated_linear_svm,
    CandidateName.MLP: _mlp,
}
