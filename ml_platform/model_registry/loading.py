"""The one way a registered model version is loaded, for both families and every caller
(serving's caches, the promotion gates, champion health, curation scores, the CLI).

The version's files are found with `artifacts.model_download_uri`, which maps a path
recorded by a home that was since copied or moved onto `artifact_root` (the current home's).
A local directory is loaded in place; anything else is downloaded to a temporary directory
with the client's own tracking URI (no process-wide MLflow state) and loaded from there.

`load_head` is serving's fast path for small `PythonModel`s (collection classifier heads):
when the version's files are local and its `MLmodel` says exactly what the pyfunc load would
do (unpickle `python_model.pkl` with this cloudpickle and Python, no code, artifacts or
compression), the pickle is read directly: about 1 ms instead of MLflow's ~45 ms (most of
it parsing YAML with the pure-Python loader and checking installed requirements). The
`python_model_sha256` tag, where a version has one, must match the pickle. Anything else
falls back to the pyfunc load. A version's files never change: each `MLmodel` is parsed
once, and `VersionLocations` remembers where each version's files are, so a model unloaded
and loaded again asks the registry nothing.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import sys
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar

import cloudpickle
import mlflow
import yaml
from mlflow import MlflowClient
from mlflow.environment_variables import MLFLOW_ALLOW_PICKLE_DESERIALIZATION
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import RESOURCE_DOES_NOT_EXIST, ErrorCode
from mlflow.pyfunc import PyFuncModel
from mlflow.pyfunc.model import PythonModel, PythonModelContext

from ml_platform.model_registry.artifacts import local_path, model_download_uri
from ml_platform.model_registry.versions import (
    PICKLE_DIGEST_TAG,
    ModelNotFoundError,
    ModelVersionInfo,
)

T = TypeVar("T")
P = TypeVar("P", bound=PythonModel)
log = logging.getLogger(__name__)

PYFUNC_LOADER = "mlflow.pyfunc.model"  # a PythonModel saved with cloudpickle
# what makes the pyfunc load do more than unpickle: code paths, artifacts, models from code,
# a model config, compression
EXTRAS = ("code", "artifacts", "model_code_path", "config", "python_model_compression")
YamlLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when available


_EMPTY_CONTEXT = PythonModelContext(artifacts={}, model_config={})  # type: ignore[no-untyped-call]


class ModelIntegrityError(ValueError):
    """A version's files are not the ones it was registered with."""


class ServableModel(Protocol):
    """What serving uses of a loaded pyfunc model (`PyFuncModel` or `DirectModel`)."""

    def predict(self, data: Any, params: dict[str, Any] | None = None) -> Any: ...

    def unwrap_python_model(self) -> Any: ...


@dataclass(frozen=True)
class DirectModel(Generic[P]):
    """A version's `PythonModel` read straight from its pickle; predicts as its pyfunc model
    does, less MLflow's input-schema check (the model checks its own input)."""

    python_model: P
    context: PythonModelContext = field(default_factory=lambda: _EMPTY_CONTEXT)

    def predict(self, data: Any, params: dict[str, Any] | None = None) -> Any:
        return self.python_model.predict(self.context, data, params=params)

    def unwrap_python_model(self) -> P:
        return self.python_model


class VersionLocations:
    """Where each model version's files are, asked of the registry once per version."""

    def __init__(self) -> None:
        self._known: dict[tuple[str, str, str | None], str] = {}
        self._lock = threading.Lock()

    def of(
        self, client: MlflowClient, name: str, version: str, artifact_root: str | None = None
    ) -> str:
        key = (name, version, artifact_root)
        with self._lock:
            known = self._known.get(key)
        if known is None:
            known = version_location(client, name, version, artifact_root)
            with self._lock:
                self._known[key] = known
        return known


def version_location(
    client: MlflowClient, name: str, version: str, artifact_root: str | None = None
) -> str:
    """The URI of a version's files (`artifacts.model_download_uri`); ModelNotFoundError
    when the registry has no such version."""
    try:
        return model_download_uri(client, name, version, artifact_root)
    except MlflowException as exc:
        if exc.error_code != ErrorCode.Name(RESOURCE_DOES_NOT_EXIST):
            raise  # the registry failed: not a statement about the version
        raise ModelNotFoundError(f"{name} has no version {version}: {exc}") from exc


def load_pyfunc_model(
    client: MlflowClient,
    name: str,
    version: str,
    artifact_root: str | None = None,
    location: str | None = None,
) -> PyFuncModel:
    """Version `version` of registered model `name` as a pyfunc model (its signature checks
    inputs). `artifact_root` finds its files after the home was copied or moved; `location`
    is where they are, when already known."""
    source = location or version_location(client, name, version, artifact_root)
    local = local_path(source)
    if local is not None and local.is_dir():
        loaded: PyFuncModel = mlflow.pyfunc.load_model(str(local))
        return loaded
    with tempfile.TemporaryDirectory(prefix="ml-platform-model-") as tmp:
        path = mlflow.artifacts.download_artifacts(
            artifact_uri=source, dst_path=tmp, tracking_uri=client.tracking_uri
        )
        downloaded: PyFuncModel = mlflow.pyfunc.load_model(path)
        return downloaded


def load_head(
    client: MlflowClient,
    info: ModelVersionInfo,
    expected: type[P],
    artifact_root: str | None = None,
    locations: VersionLocations | None = None,
) -> DirectModel[P] | PyFuncModel:
    """Version `info` as a servable model: read directly when it is a local `expected`
    pickled as the pyfunc load would read it (module docstring), else the pyfunc load."""
    found = locations or VersionLocations()
    location = found.of(client, info.name, info.version, artifact_root)
    local = local_path(location)
    direct = None if local is None else read_python_model(local, expected, info)
    if direct is not None:
        return DirectModel(direct)
    return load_pyfunc_model(client, info.name, info.version, artifact_root, location)


def read_python_model(model_dir: Path, expected: type[P], info: ModelVersionInfo) -> P | None:
    """The `expected` model pickled in `model_dir`, or None when the pyfunc load would do
    more than unpickle it (or would refuse to). ModelIntegrityError on a digest mismatch."""
    pickle_name = _plain_pickle(model_dir)
    if pickle_name is None:
        return None
    data = (model_dir / pickle_name).read_bytes()
    digest = info.tags.get(PICKLE_DIGEST_TAG)
    if digest is not None and pickle_digest(data) != digest:
        raise ModelIntegrityError(
            f"{info.name} version {info.version}: {model_dir / pickle_name} does not match its "
            f"{PICKLE_DIGEST_TAG} tag; the files changed after registration: register it again"
        )
    model: object = cloudpickle.loads(data)
    if type(model) is not expected or type(model).load_context is not PythonModel.load_context:
        return None  # the pyfunc load decides what this is (and runs its load_context)
    return model  # type: ignore[return-value]  # checked: exactly `expected`


def _plain_pickle(model_dir: Path) -> str | None:
    """`python_model.pkl`'s name when `MLmodel` says the pyfunc load only unpickles it."""
    name = _pickle_named_in(model_dir)
    allowed = MLFLOW_ALLOW_PICKLE_DESERIALIZATION.get()  # type: ignore[no-untyped-call]
    return name if allowed and name is not None and (model_dir / name).is_file() else None


@functools.lru_cache(maxsize=65_536)  # a version's MLmodel never changes: parsed once
def _pickle_named_in(model_dir: Path) -> str | None:
    try:
        meta = yaml.load((model_dir / "MLmodel").read_text(), Loader=YamlLoader)
    except (OSError, yaml.YAMLError):
        return None
    conf = (meta.get("flavors") or {}).get("python_function") if isinstance(meta, dict) else None
    if not isinstance(conf, dict) or conf.get("loader_module") != PYFUNC_LOADER:
        return None
    plain = not any(conf.get(key) for key in EXTRAS)
    same_runtime = (conf.get("cloudpickle_version"), conf.get("python_version")) == (
        cloudpickle.__version__, ".".join(map(str, sys.version_info[:3])),
    )  # fmt: skip
    name = conf.get("python_model")
    return name if plain and same_runtime and isinstance(name, str) else None


def pickle_digest(data: bytes) -> str:
    """The `python_model_sha256` tag value of a pickle's bytes."""
    return hashlib.sha256(data).hexdigest()


def logged_pickle_digest(client: MlflowClient, model_id: str) -> str:
    """`pickle_digest` of a logged model's `python_model.pkl`, read back from the artifact
    store (what a later load reads), to tag its version with."""
    location = client.get_logged_model(model_id).artifact_location.rstrip("/")
    local = local_path(location)
    if local is not None and (local / "python_model.pkl").is_file():  # no download, no bar
        return pickle_digest((local / "python_model.pkl").read_bytes())
    with tempfile.TemporaryDirectory(prefix="ml-platform-digest-") as tmp:
        path = mlflow.artifacts.download_artifacts(
            artifact_uri=f"{location}/python_model.pkl", dst_path=tmp,
            tracking_uri=client.tracking_uri,
        )  # fmt: skip
        return pickle_digest(Path(path).read_bytes())


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
