"""A dataset version logged as an MLflow dataset input, on a real sqlite store."""

from __future__ import annotations

import warnings

import pandas as pd
import pytest
from mlflow import MlflowClient

from ml_platform.model_registry.dataset.register import DatasetInput, log_dataset_version
from tests.model_registry.conftest import fresh_sqlite_uri


def test_a_version_with_integer_columns_is_logged_without_mlflows_signature_hint(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    uri, root = fresh_sqlite_uri(tmp_path_factory)
    client = MlflowClient(uri, uri)
    frame = pd.DataFrame(
        {"image_id": [1, 2, 3], "label": ["cat", "cup", "cat"], "split": ["train"] * 3,
         "source": ["crawlr"] * 3}
    )  # fmt: skip
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _, run_id = log_dataset_version(
            client, DatasetInput("demo", "abc123", frame), {"images": 3.0}, {},
            artifact_location=(root / "artifacts").as_uri(),
        )  # fmt: skip
    said = [str(w.message) for w in caught if "Inferred schema" in str(w.message)]
    assert said == []
    run_inputs = client.get_run(run_id).inputs
    assert run_inputs is not None
    inputs = run_inputs.dataset_inputs
    assert [i.dataset.digest for i in inputs] == ["abc123"]
    assert "image_id" in str(inputs[0].dataset.schema)
