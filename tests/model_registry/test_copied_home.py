"""A copied home serves both model families from itself, with the original moved away, and
what it trains after the copy lands inside it, never in the original."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from ml_platform.defs.resources.mlflow import MlflowResource
from ml_platform.learning.finetune import FinetuneConfig, ModelName
from ml_platform.model_registry.artifacts import elsewhere
from ml_platform.model_registry.collection.naming import DEFAULT_EXPERIMENT
from ml_platform.model_registry.dataset.lookup import dataset_champion
from ml_platform.model_registry.dataset.naming import DATASET_EXPERIMENT
from ml_platform.services.dataset_versions import make_version
from ml_platform.services.datasets import SplitFractions, parse_dataset_specs
from ml_platform.services.finetuning import finetune_version
from ml_platform.serving.dataset_models import DatasetClassifiers, DatasetModelCache
from ml_platform.serving.metrics import ServingMetrics
from ml_platform.serving.model_cache import ChampionCache, CollectionClassifiers
from ml_platform.settings import Settings
from ml_platform.store.layout import Layout
from tests.finetune_home import BLUE, RED, coloured_images, tiny_vit
from tests.model_registry.test_artifacts import COLLECTION, register

SPEC = parse_dataset_specs({"datasets": {"colours": {"classes": {"red": RED, "blue": BLUE}}}})


def finetune(home: Path, weights: str, dataset: str) -> str:
    images = coloured_images(home)
    version = make_version(SPEC["colours"], images, {}, SplitFractions())
    version = type(version)(**{**version.__dict__, "dataset": dataset})
    resource = MlflowResource(home=str(home))
    config = FinetuneConfig(model_name=ModelName.VIT_BASE_PATCH16_224, epochs=1,
                            weights=weights, allow_random_weights=True)  # fmt: skip
    outcome = finetune_version(
        resource.client(), version, {e.image.id: e for e in images}, config,
        store=Layout.for_settings(Settings(home=home)).images(), tolerance=1.0,
        provenance={}, artifact_location=resource.artifact_location(),
    )  # fmt: skip
    return outcome.registered.version


def files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def test_a_copied_home_trains_into_itself_and_serves_both_families_without_the_original(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    original, copy = tmp_path / "home-a", tmp_path / "home-b"
    weights = str(tiny_vit(tmp_path / "vit"))
    register(original)
    finetune(original, weights, "colours")
    shutil.copytree(original, copy)

    register(copy)  # collection version 2, trained in the copy
    finetune(copy, weights, "shapes")  # a dataset model first made in the copy
    gone = tmp_path / "gone"
    before = files(original)
    shutil.move(original, gone)

    assert files(gone) == before  # the copy wrote nothing into the original
    root = Settings(home=copy).mlflow_artifact_root
    client = MlflowResource(home=str(copy)).client()
    for name in (DEFAULT_EXPERIMENT, DATASET_EXPERIMENT):  # retired copies keep old records
        experiment = client.get_experiment_by_name(name)
        assert experiment is not None and not elsewhere(experiment.artifact_location, root)
    retired = [e.name for e in client.search_experiments() if "(home at" in e.name]
    assert len(retired) == 2
    metrics = ServingMetrics()
    champion = ChampionCache(CollectionClassifiers(client, root), 30.0, metrics).get(COLLECTION)
    assert champion.version == "2"
    datasets = DatasetModelCache(DatasetClassifiers(client, root), 30.0, metrics)
    for name in ("colours", "shapes"):
        info = dataset_champion(client, name)
        assert info is not None
        served = datasets.get(name)
        assert served.version == info.version and served.model.class_names == ["red", "blue"]
