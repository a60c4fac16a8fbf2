"""MLflow artifacts under the artifact-root setting; a copied or moved home still serves."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from mlflow import MlflowClient
from mlflow.pyfunc import PyFuncModel
from sklearn.linear_model import LogisticRegression

from ml_platform.defs.resources.mlflow import MlflowResource
from ml_platform.model_registry.artifacts import artifact_location, relocated
from ml_platform.model_registry.collection.lookup import get_champion, load_classifier
from ml_platform.model_registry.collection.naming import VersionTag, model_name
from ml_platform.model_registry.collection.pyfunc import CollectionClassifierModel
from ml_platform.model_registry.collection.register import (
    ClassifierPayload,
    log_and_register,
    promote,
)
from ml_platform.model_registry.loading import load_head
from ml_platform.serving.metrics import ServingMetrics
from ml_platform.serving.model_cache import ChampionCache, CollectionClassifiers
from ml_platform.settings import Settings
from tests.model_registry.conftest import fresh_sqlite_uri
from tests.servers import S3Server as MotoS3

COLLECTION = 4


def register(home: Path, tracking_uri: str | None = None) -> MlflowClient:
    """A promoted champion for COLLECTION, trained the way the classifier asset records it."""
    resource = MlflowResource(home=str(home), tracking_uri=tracking_uri)
    client = resource.client()
    X = np.random.default_rng(0).normal(size=(16, 4)).astype(np.float32)
    tags = {
        VersionTag.COLLECTION_ID: str(COLLECTION), VersionTag.DERIVATIVE_TYPE: "whole_image",
        VersionTag.EMBEDDING_TYPE: "embed_clip_vit_b_32", VersionTag.DIMENSIONALITY: "4",
        VersionTag.THRESHOLD: "0.25", VersionTag.WEIGHTS: "random",
    }  # fmt: skip
    estimator = LogisticRegression().fit(X, np.arange(16) % 2)
    payload = ClassifierPayload(estimator, 0.25, 4, COLLECTION, tags, {}, {})
    version = log_and_register(
        client, payload, artifact_location=resource.artifact_location()
    ).version
    promote(client, COLLECTION, version, "test")
    return client


@pytest.fixture
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A home whose MLflow sqlite store is already migrated (copied from a template)."""
    uri, root = fresh_sqlite_uri(tmp_path_factory)
    home = root / "home-a"
    (home / "mlflow").mkdir(parents=True)
    shutil.move(uri.removeprefix("sqlite:///"), home / "mlflow" / "mlflow.db")
    return home


def test_a_moved_home_still_loads_and_serves_its_champion(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    register(home)
    assert (home / "mlflow" / "artifacts" / "models").is_dir()
    moved = tmp_path / "elsewhere" / "home-b"
    shutil.move(home, moved)  # the old path is gone: only relocation can find the files
    settings = Settings(home=moved)
    client = MlflowResource(home=str(moved)).client()
    root = settings.mlflow_artifact_root
    assert load_classifier(client, COLLECTION, artifact_root=root).threshold == 0.25
    champions = ChampionCache(CollectionClassifiers(client, root), 30.0, ServingMetrics())
    champion = champions.get(COLLECTION)
    assert champion.version == "1" and champion.threshold == 0.25
    with pytest.raises(Exception, match="artifact"):  # without the root: the stale path
        load_classifier(client, COLLECTION)
    assert not (tmp_path / "mlruns").exists()


def test_another_tracking_database_still_keeps_artifacts_under_home(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # MLflow's own default would be ./mlruns here
    other = tmp_path / "tracking.db"
    shutil.move(home / "mlflow" / "mlflow.db", other)
    client = register(home, tracking_uri=f"sqlite:///{other}")
    source = client.get_model_version_download_uri(model_name(COLLECTION), "1")
    assert source.startswith((home / "mlflow" / "artifacts").as_uri())
    assert not (tmp_path / "mlruns").exists()


@pytest.mark.parametrize(
    ("configured", "tracking", "expected"),
    [
        (None, "sqlite:////h/mlflow/mlflow.db", "file:///h/mlflow/artifacts"),
        (None, "postgresql://db/mlflow", "file:///h/mlflow/artifacts"),
        (None, "http://mlflow:5000", None),  # the server's own root (mlflow-artifacts:)
        ("s3://bucket/mlflow", "http://mlflow:5000", "s3://bucket/mlflow"),
        ("/data/artifacts", "sqlite:////h/mlflow/mlflow.db", "file:///data/artifacts"),
    ],
)
def test_artifact_location_follows_the_setting(
    configured: str | None, tracking: str, expected: str | None
) -> None:
    settings = Settings(home=Path("/h"), mlflow_artifacts=configured)
    assert artifact_location(settings, tracking) == expected


def test_relocation_only_moves_missing_paths_under_the_recorded_root(tmp_path: Path) -> None:
    present = tmp_path / "a" / "models" / "m-1"
    present.mkdir(parents=True)
    old_root = (tmp_path / "a").as_uri()
    assert relocated(present.as_uri(), old_root, "file:///new") == present.as_uri()
    gone = (tmp_path / "a" / "models" / "m-2").as_uri()
    assert relocated(gone, old_root, "file:///new") == "file:///new/models/m-2"
    assert relocated(gone, (tmp_path / "b").as_uri(), "file:///new") == gone
    assert relocated("s3://bucket/m-2", old_root, "file:///new") == "s3://bucket/m-2"


def test_artifacts_on_s3_round_trip(
    home: Path,
    tmp_path: Path,
    moto_s3: MotoS3,
    s3_store_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_S3_ENDPOINT_URL", moto_s3.endpoint_url)  # MLflow's own S3 client
    root = f"{s3_store_url}/mlflow-artifacts"
    monkeypatch.setenv("ML_PLATFORM_MLFLOW_ARTIFACTS", root)
    client = register(home)
    source = client.get_model_version_download_uri(model_name(COLLECTION), "1")
    assert source.startswith(root + "/models/")
    assert not (home / "mlflow" / "artifacts").exists() and not (tmp_path / "mlruns").exists()
    assert load_classifier(client, COLLECTION, artifact_root=root).threshold == 0.25
    info = get_champion(client, COLLECTION)
    assert info is not None and info.tags[VersionTag.PYTHON_MODEL_SHA256]  # read back from S3
    head = load_head(client, info, CollectionClassifierModel, artifact_root=root)
    assert isinstance(head, PyFuncModel)  # remote files: the pyfunc load, not the fast path
