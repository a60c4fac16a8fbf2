"""The MLflow pyfunc model every collection classifier is logged as.

Input: float32 embeddings `[n, dimensionality]` (numpy, or a DataFrame of that width).
Output: a DataFrame with `probability` (float, "in the collection") and `is_in_collection`
(bool, `probability >= threshold`). The class is importable, so `ml_platform` must be
installed wherever the model is loaded.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
from mlflow.models import ModelSignature
from mlflow.pyfunc.model import PythonModel
from mlflow.types import ColSpec, Schema, TensorSpec
from numpy.typing import NDArray

from ml_platform.learning.evaluation import ProbabilisticClassifier

PROBABILITY_COLUMN = "probability"
DECISION_COLUMN = "is_in_collection"


class CollectionClassifierModel(PythonModel):
    """A fitted scikit-learn classifier, its decision threshold and its input width."""

    def __init__(
        self, estimator: ProbabilisticClassifier, threshold: float, dimensionality: int
    ) -> None:
        if dimensionality <= 0:
            raise ValueError(f"dimensionality must be positive, got {dimensionality}")
        if not math.isfinite(threshold):
            raise ValueError(f"threshold must be a finite number, got {threshold}")
        self.estimator = estimator
        self.threshold = float(threshold)
        self.dimensionality = int(dimensionality)

    # MLflow inspects this annotation: a bare np.ndarray keeps its type-hint validation off
    # (the logged TensorSpec signature validates inputs instead); DataFrames also work.
    def predict(
        self,
        context: Any,
        model_input: np.ndarray,  # type: ignore[type-arg]
        params: dict[str, Any] | None = None,
    ) -> pd.DataFrame:
        """Probabilities and decisions for each row of `model_input`."""
        features = self.as_features(model_input)
        probabilities = np.asarray(self.estimator.predict_proba(features), dtype=np.float64)[:, 1]
        return pd.DataFrame(
            {
                PROBABILITY_COLUMN: probabilities,
                DECISION_COLUMN: probabilities >= self.threshold,
            }
        )

    def as_features(self, model_input: object) -> NDArray[np.float32]:
        """`model_input` as float32 `[n, dimensionality]`; a ValueError saying what is wrong."""
        values = model_input.to_numpy() if isinstance(model_input, pd.DataFrame) else model_input
        features = np.asarray(values, dtype=np.float32)
        if features.ndim == 1 and features.shape[0] == self.dimensionality:
            features = features.reshape(1, -1)
        if features.ndim != 2 or features.shape[1] != self.dimensionality:
            raise ValueError(
                f"this classifier expects embeddings of width {self.dimensionality} "
                f"(float32 [n, {self.dimensionality}]), got shape {features.shape}; embed the "
                "images with the embedding type recorded in the model version's tags"
            )
        return features


def classifier_signature(dimensionality: int) -> ModelSignature:
    """Input float32 `[-1, dimensionality]`; output columns `probability`, `is_in_collection`."""
    inputs = Schema([TensorSpec(np.dtype(np.float32), (-1, dimensionality))])
    outputs = Schema([ColSpec("double", PROBABILITY_COLUMN), ColSpec("boolean", DECISION_COLUMN)])
    return ModelSignature(inputs=inputs, outputs=outputs)


def input_example(dimensionality: int, rows: int = 2) -> NDArray[np.float32]:
    """A small, deterministic, L2-normalised float32 example batch for the logged model."""
    rng = np.random.default_rng(0)
    example = rng.standard_normal((rows, dimensionality)).astype(np.float32)
    normalised: NDArray[np.float32] = example / np.linalg.norm(example, axis=1, keepdims=True)
    return normalised
