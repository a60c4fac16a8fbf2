"""CollectionClassifierModel called directly: numpy and DataFrame input, width checks."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from ml_platform.model_registry.collection.pyfunc import (
    DECISION_COLUMN,
    PROBABILITY_COLUMN,
    CollectionClassifierModel,
    classifier_signature,
    input_example,
)

DIM = 6


@pytest.fixture(scope="module")
def model() -> CollectionClassifierModel:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, DIM)).astype(np.float32)
    y = (X[:, 0] > 0).astype(int)
    return CollectionClassifierModel(LogisticRegression().fit(X, y), 0.5, DIM)


def test_predict_returns_probability_and_decision_columns(
    model: CollectionClassifierModel,
) -> None:
    X = np.zeros((3, DIM), dtype=np.float32)
    X[:, 0] = [-3.0, 0.0, 3.0]
    out = model.predict(None, X)
    assert list(out.columns) == [PROBABILITY_COLUMN, DECISION_COLUMN]
    assert out[PROBABILITY_COLUMN].dtype == np.float64
    assert out[DECISION_COLUMN].dtype == bool
    assert out[PROBABILITY_COLUMN].is_monotonic_increasing
    assert out[DECISION_COLUMN].tolist() == list(out[PROBABILITY_COLUMN] >= 0.5)
    assert out[DECISION_COLUMN].iloc[0] == False  # noqa: E712
    assert out[DECISION_COLUMN].iloc[2] == True  # noqa: E712


def test_dataframe_input_gives_the_same_answer(model: CollectionClassifierModel) -> None:
    X = input_example(DIM, rows=4)
    frame = pd.DataFrame(X)  # predict's hint says ndarray only: MLflow rejects union hints
    pd.testing.assert_frame_equal(model.predict(None, frame), model.predict(None, X))  # type: ignore[arg-type]


@pytest.mark.parametrize("shape", [(2, DIM + 1), (2, DIM - 1), (DIM,)])
def test_wrong_input_width_is_a_clear_value_error(
    model: CollectionClassifierModel, shape: tuple[int, ...]
) -> None:
    X = np.zeros(shape, dtype=np.float32)
    if shape == (DIM,):  # a single embedding is accepted as one row
        assert len(model.predict(None, X)) == 1
        return
    with pytest.raises(ValueError, match=f"expects embeddings of width {DIM}"):
        model.predict(None, X)


def test_signature_declares_float32_tensor_of_the_model_width() -> None:
    signature = classifier_signature(DIM)
    spec = signature.inputs.inputs[0]
    assert spec.type == np.dtype(np.float32)
    assert spec.shape == (-1, DIM)
    assert signature.outputs.input_names() == [PROBABILITY_COLUMN, DECISION_COLUMN]


@pytest.mark.parametrize(("threshold", "dim"), [(float("nan"), DIM), (0.5, 0)])
def test_invalid_threshold_or_dimensionality_is_rejected(threshold: float, dim: int) -> None:
    with pytest.raises(ValueError, match="threshold|dimensionality"):
        CollectionClassifierModel(LogisticRegression(), threshold, dim)
