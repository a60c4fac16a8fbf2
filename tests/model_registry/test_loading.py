"""The one load path (`loading.load_python_model`): a dataset model in a moved home loads, and
models pickled before the families moved (old module paths) still load."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

import ml_platform.model_registry.dataset_models.pyfunc as old_dataset_pyfunc
import ml_platform.model_registry.pyfunc_model as old_collection_pyfunc
from ml_platform.defs.resources.mlflow import MlflowResource
from ml_platform.model_registry.collection.lookup import load_classifier
from ml_platform.model_registry.collection.pyfunc import CollectionClassifierModel
from ml_platform.model_registry.dataset.lookup import load_dataset_model
from ml_platform.model_registry.dataset.naming import dataset_model_name
from ml_platform.model_registry.dataset.pyfunc import FinetunedClassifierModel
from ml_platform.settings import Settings
from tests.finetune_home import tiny_vit
from tests.model_registry.test_artifacts import COLLECTION, register
from tests.model_registry.test_copied_home import finetune

OLD_COLLECTION_MODULE = old_collection_pyfunc.__name__
OLD_DATASET_MODULE = old_dataset_pyfunc.__name__


def pickled_model(home: Path) -> bytes:
    """The one `python_model.pkl` logged in `home` (cloudpickle names the class's module)."""
    (found,) = (home / "mlflow" / "artifacts").rglob("python_model.pkl")
    return found.read_bytes()


def test_a_dataset_model_in_a_moved_home_loads_through_the_one_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    home = tmp_path / "home-a"
    version = finetune(home, str(tiny_vit(tmp_path / "vit")), "colours")
    moved = tmp_path / "elsewhere" / "home-b"
    shutil.move(home, moved)  # the recorded path is gone: only the remapping finds the files
    client = MlflowResource(home=str(moved)).client()
    root = Settings(home=moved).mlflow_artifact_root
    name = dataset_model_name("colours")

    model = load_dataset_model(client, name, version, artifact_root=root)

    assert model.class_names == ["red", "blue"]
    assert set(model.state_dict()) != set()  # the weights artifact was found and loaded
    with pytest.raises(Exception, match="No such file|does not exist|artifact"):
        load_dataset_model(client, name, version)  # without the root: the stale path


def test_a_collection_model_pickled_under_the_old_module_path_still_loads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    home = tmp_path / "home"
    with monkeypatch.context() as patch:  # log it as a version made before the move was
        patch.setattr(CollectionClassifierModel, "__module__", OLD_COLLECTION_MODULE)
        client = register(home)
    assert OLD_COLLECTION_MODULE.encode() in pickled_model(home)

    model = load_classifier(client, COLLECTION)

    assert isinstance(model, CollectionClassifierModel) and model.threshold == 0.25


def test_a_dataset_model_pickled_under_the_old_module_path_still_loads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    home = tmp_path / "home"
    with monkeypatch.context() as patch:
        patch.setattr(FinetunedClassifierModel, "__module__", OLD_DATASET_MODULE)
        version = finetune(home, str(tiny_vit(tmp_path / "vit")), "colours")
    assert OLD_DATASET_MODULE.encode() in pickled_model(home)
    client = MlflowResource(home=str(home)).client()

    model = load_dataset_model(client, dataset_model_name("colours"), version)

    assert isinstance(model, FinetunedClassifierModel) and model.class_names == ["red", "blue"]
