"""The one way a registered model version is loaded, for both families and every caller
(serving's caches, the promotion gates, champion health, curation scores, the CLI).

The version's files are found with `artifacts.model_download_uri`, which maps a path
recorded by a home that was since copied or moved onto `artifact_root` (the current home's).
A local directory is loaded in place; anything else is downloaded to a temporary directory
with the client's own tracking URI (no process-wide MLflow state) and loaded from there.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit

import mlflow
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import RESOURCE_DOES_NOT_EXIST, ErrorCode
from mlflow.pyfunc import PyFuncModel

from ml_platform.model_registry.artifacts import model_download_uri
from ml_platform.model_registry.versions import ModelNotFoundError

T = TypeVar("T")


def load_pyfunc_model(
    client: MlflowClient, name: str, version: str, artifact_root: str | None = None
) -> PyFuncModel:
    """Version `version` of registered model `name` as a pyfunc model (its signature checks
    inputs). `artifact_root` finds its files after the home was copied or moved."""
    try:
        source = model_download_uri(client, name, version, artifact_root)
    except MlflowException as exc:
        if exc.error_code != ErrorCode.Name(RESOURCE_DOES_NOT_EXIST):
            raise  # the registry failed: not a statement about the version
        raise ModelNotFoundError(f"{name} has no version {version}: {exc}") from exc
    parts = urlsplit(source)
    local = Path(parts.path if parts.scheme == "file" else source)
    if parts.scheme in ("", "file") and local.is_dir():
        loaded: PyFuncModel = mlflow.pyfunc.load_model(str(local))
        return loaded
    with tempfile.TemporaryDirectory(prefix="ml-platform-model-") as tmp:
        path = mlflow.artifacts.download_artifacts(
            artifact_uri=source, dst_path=tmp, tracking_uri=client.tracking_uri
        )
        downloaded: PyFuncModel = mlflow.pyfunc.load_model(path)
        return downloaded


def load_python_model(
    client: MlflowClient,
    name: str,
    version: str,
    expected: type[T],
    artifact_root: str | None = None,
) -> T:
    """The `PythonModel` inside a version (`CollectionClassifierModel`,
    `FinetunedClassifierModel`); a TypeError when it is another kind of model."""
    python_model: object = load_pyfunc_model(
        client, name, version, artifact_root
    ).unwrap_python_model()  # type: ignore[no-untyped-call]
    if not isinstance(python_model, expected):
        raise TypeError(
            f"{name} version {version} is a {type(python_model).__name__}, not a "
            f"{expected.__name__}; register it again with ml_platform"
        )
    return python_model
