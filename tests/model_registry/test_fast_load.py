"""`loading.load_head`: a collection head read straight from its pickle answers as the pyfunc
load does; anything the pyfunc load would treat differently goes through it; a pickle that
is not the registered one is refused."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml
from mlflow import MlflowClient
from mlflow.pyfunc import PyFuncModel

from ml_platform.model_registry.collection.lookup import get_champion
from ml_platform.model_registry.collection.naming import VersionTag, model_name
from ml_platform.model_registry.collection.pyfunc import (
    PROBABILITY_COLUMN,
    CollectionClassifierModel,
)
from ml_platform.model_registry.loading import (
    DirectModel,
    ModelIntegrityError,
    VersionLocations,
    load_head,
    load_pyfunc_model,
    pickle_digest,
)
from ml_platform.model_registry.versions import ModelVersionInfo
from tests.model_registry.test_artifacts import COLLECTION, home, register

__all__ = ["home"]  # the fixture, used by name
FEATURES = np.random.default_rng(1).normal(size=(5, 4)).astype(np.float32)


@pytest.fixture
def client(home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> MlflowClient:
    monkeypatch.chdir(tmp_path)
    return register(home)


def champion(client: MlflowClient) -> ModelVersionInfo:
    info = get_champion(client, COLLECTION)
    assert info is not None
    return info


def model_dir(client: MlflowClient) -> Path:
    uri = client.get_model_version_download_uri(model_name(COLLECTION), champion(client).version)
    return Path(uri.removeprefix("file://"))


def probabilities(model: object) -> list[float]:
    frame = model.predict(FEATURES)  # type: ignore[attr-defined]
    return [float(p) for p in frame[PROBABILITY_COLUMN]]


def test_a_head_read_from_its_pickle_predicts_as_the_pyfunc_load_does(
    client: MlflowClient,
) -> None:
    info = champion(client)
    head = load_head(client, info, CollectionClassifierModel)
    pyfunc = load_pyfunc_model(client, info.name, info.version)
    assert isinstance(head, DirectModel) and isinstance(pyfunc, PyFuncModel)
    assert probabilities(head) == probabilities(pyfunc)
    assert head.unwrap_python_model().threshold == 0.25
    assert info.tags[VersionTag.PYTHON_MODEL_SHA256] == pickle_digest(
        (model_dir(client) / "python_model.pkl").read_bytes()
    )


def test_a_version_is_located_once_then_loads_without_the_registry(
    client: MlflowClient,
) -> None:
    info, locations = champion(client), VersionLocations()
    first = load_head(client, info, CollectionClassifierModel, locations=locations)
    unreachable = MlflowClient("http://127.0.0.1:9", "http://127.0.0.1:9")
    again = load_head(unreachable, info, CollectionClassifierModel, locations=locations)
    assert probabilities(again) == probabilities(first)


@pytest.mark.parametrize(
    ("key", "value"),
    [("cloudpickle_version", "0.0.1"), ("python_version", "3.0.0"), ("code", "code")],
)
def test_a_model_the_pyfunc_load_treats_differently_goes_through_it(
    client: MlflowClient, key: str, value: str
) -> None:
    mlmodel = model_dir(client) / "MLmodel"
    meta = yaml.safe_load(mlmodel.read_text())
    meta["flavors"]["python_function"][key] = value
    if key == "code":
        (model_dir(client) / "code").mkdir()
    mlmodel.write_text(yaml.safe_dump(meta))
    info = champion(client)
    loaded = load_head(client, info, CollectionClassifierModel)
    assert isinstance(loaded, PyFuncModel)
    assert probabilities(loaded) == probabilities(load_pyfunc_model(client, info.name, "1"))


def test_a_missing_pickle_is_the_pyfunc_loads_error_not_a_model(client: MlflowClient) -> None:
    (model_dir(client) / "python_model.pkl").unlink()
    with pytest.raises(OSError, match="python_model.pkl"):
        load_head(client, champion(client), CollectionClassifierModel)


def test_a_pickle_that_is_not_the_registered_one_is_refused(client: MlflowClient) -> None:
    pickle = model_dir(client) / "python_model.pkl"
    pickle.write_bytes(pickle.read_bytes() + b"\x00")
    with pytest.raises(ModelIntegrityError, match="python_model_sha256"):
        load_head(client, champion(client), CollectionClassifierModel)
