"""End to end, as a user runs it: dataset -> classes -> labels (suggestions accepted) -> split
-> version -> train -> model registered -> inference through POST /v1/predict.

Real parts throughout: the CLI on a home's Dagster instance, a real MLflow sqlite registry,
tiny ViT and CLIP checkpoints loaded by the real loading code, the real FastAPI app.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

from ml_platform.cli import main
from ml_platform.defs.dataset_planning import declared_datasets, finetune_runs, version_runs
from ml_platform.defs.resources import StorageResource
from ml_platform.defs.runner import instance_for
from ml_platform.domain import Collection
from ml_platform.model_registry.dataset.lookup import dataset_champion
from ml_platform.model_registry.dataset.naming import DatasetTag
from ml_platform.services.dataset_versions import read_version
from ml_platform.services.datasets import LabelSource
from ml_platform.services.label_provenance import LabelWeights
from ml_platform.serving import ServeOptions, create_app
from ml_platform.settings import Settings
from ml_platform.store.collections_file import write_collections
from tests.finetune_home import (
    BLUE,
    COLOURS,
    DATASETS_YAML,
    RED,
    coloured_images,
    photo,
    tiny_vit,
    write_catalog,
)
from tests.serving.conftest import b64
from tests.serving.test_zero_shot import write_tokenizer

# the same classes with crawlr's labels only: no accepted suggestion trains it
PLAIN_YAML = "  plain:\n    classes:\n      red: 21\n      blue: 22\n"


def tiny_clip(directory: Path) -> Path:
    from transformers import CLIPConfig

    tokens = {"bos_token_id": 2, "eos_token_id": 3, "pad_token_id": 0}
    layers = {"num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 32}
    text = {"vocab_size": 11, "hidden_size": 16, "max_position_embeddings": 16}
    CLIPConfig(text_config={**text, **layers, **tokens},
               vision_config={"hidden_size": 16, "image_size": 32, "patch_size": 16, **layers},
               projection_dim=8).save_pretrained(directory)  # fmt: skip
    write_tokenizer(directory)
    return directory


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("finetune_home")
    storage = StorageResource(home=str(root))
    write_catalog(storage, "b1", coloured_images(root))
    # crawlr's collections as `crawlr_collections` stores them: the CLI checks the classes
    write_collections(storage.layout(), [Collection(21, "red", None), Collection(22, "blue", None)])
    (root / "datasets.yaml").write_text(DATASETS_YAML + PLAIN_YAML)
    return root


def invoke(args: list[str], env: dict[str, str]) -> str:
    result = CliRunner().invoke(main, args, env=env, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def test_dataset_to_prediction(home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env = {
        "ML_PLATFORM_HOME": str(home), "DAGSTER_HOME": str(home / "dagster"),
        "ML_PLATFORM_CLIP_MODEL": str(tiny_clip(tmp_path / "clip")),
        "ML_PLATFORM_ALLOW_RANDOM_WEIGHTS": "true",
    }  # fmt: skip
    for key, value in env.items():
        monkeypatch.setenv(key, value)  # the CLI exports them; restored after the test
    suggested = invoke(["labels", "suggest", "colours", "--top-k", "2", "--home", str(home)], env)
    assert "3 unlabelled images" in suggested and "image 25:" in suggested
    accepted = invoke(["labels", "accept", "colours", "--image", "25", "--home", str(home)], env)
    assert "accepted 1 suggested labels" in accepted
    assert "with weights=random: they carry no meaning" in accepted  # the tiny CLIP is random
    vit = str(tiny_vit(tmp_path / "vit"))
    args = ["finetune", "--dataset", "colours", "--model", "vit_base_patch16_224", "--epochs",
            "3", "--weights", vit, "--home", str(home)]  # fmt: skip
    trained = invoke(args, env)
    assert "model_version: 1" in trained and "promoted: True" in trained
    # 24 crawlr labels and image 25's, accepted from the random CLIP's suggestion
    assert trained.count("label_weights: random") == 2  # the version and the model
    assert trained.count("labels_from_random_suggestions: 1 of 25") == 2
    assert "WARNING: training labels from random-weight suggestions (1 of 25 labels)" in trained
    args = ["finetune", "--dataset", "plain", "--model", "vit_base_patch16_224", "--epochs",
            "1", "--weights", vit, "--home", str(home)]  # fmt: skip
    plain = invoke(args, env)
    assert "label_weights: none" in plain and "WARNING: training labels" not in plain
    instance, storage = instance_for(Settings(home=home)), StorageResource(home=str(home))
    assert version_runs(instance, storage, declared_datasets(storage)) == []  # sensor: current
    assert finetune_runs(instance, ["colours"]) == []  # the nightly schedule: nothing to train

    version = read_version(StorageResource(home=str(home)).layout(), "colours")
    by_id = {item.image_id: item for item in version.items}
    assert by_id[25].source is LabelSource.ACCEPTED_SUGGESTION and 26 not in by_id
    assert by_id[1].source is LabelSource.CRAWLR and by_id[1].label == "red"
    pets = {}
    for item in version.items:
        assert pets.setdefault(item.group, item.split) is item.split  # no pet straddles splits
    assert all(n >= 1 for counts in version.counts().values() for n in counts.values())

    settings = Settings(home=home)
    champion = dataset_champion(_client(settings), "colours")
    assert champion is not None and champion.version == "1"
    assert json.loads(champion.tags[DatasetTag.CLASS_NAMES]) == ["red", "blue"]
    assert champion.tags[DatasetTag.DATASET_VERSION] == version.version
    assert champion.tags[DatasetTag.BASE_WEIGHTS].startswith(vit)
    assert version.label_provenance().weights is LabelWeights.RANDOM
    assert champion.tags[DatasetTag.LABEL_WEIGHTS] == "random"
    assert champion.tags[DatasetTag.LABELS_FROM_RANDOM_SUGGESTIONS] == "1 of 25"
    run = _client(settings).get_run(champion.run_id or "")
    assert run.data.tags[DatasetTag.LABEL_WEIGHTS] == "random"  # the fine-tune run logs it
    plain_champion = dataset_champion(_client(settings), "plain")
    assert plain_champion is not None
    assert plain_champion.tags[DatasetTag.LABEL_WEIGHTS] == "none"
    assert plain_champion.tags[DatasetTag.LABELS_FROM_RANDOM_SUGGESTIONS] == "0 of 24"
    listed = invoke(["models", "list", "--home", str(home)], env).splitlines()
    (line,) = [row for row in listed if row.startswith("dataset-colours ")]
    assert f"/ {champion.tags[DatasetTag.WEIGHTS]} / random / " in line  # base, then labels

    with TestClient(create_app(settings, ServeOptions(refresh_interval_s=0.0))) as client:
        body = {"dataset": "colours", "image_base64": b64(photo(COLOURS[RED], 99)), "top_k": 1}
        answer = client.post("/v1/predict", json=body)
        assert answer.status_code == 200, answer.text
        reply = answer.json()
        assert reply["model_version"] == "1" and len(reply["predictions"]) == 1
        assert reply["predictions"][0]["label"] in {"red", "blue"}
        # the variant registration checked and kept is the one served (ONNX Runtime, not torch)
        assert reply["model_variant"] == champion.tags[DatasetTag.INFERENCE_VARIANT]
        assert reply["model_variant"] in {"onnx", "onnx-int8"}
        assert reply["label_weights"] == "random"  # every answer says the labels are random
        assert reply["labels"].startswith("from random-weight suggestions (1 of 25 labels)")
        clean = client.post("/v1/predict", json={**body, "dataset": "plain"}).json()
        assert clean["label_weights"] == "none" and clean["labels"] is None, clean
        form = {"dataset": "colours", "top_k": "2"}
        files = {"image": ("blue.png", photo(COLOURS[BLUE], 98), "image/png")}
        uploaded = client.post("/v1/predict", data=form, files=files)
        assert uploaded.status_code == 200, uploaded.text
        assert uploaded.json()["label_weights"] == "random"
        confidences = [p["confidence"] for p in uploaded.json()["predictions"]]
        assert sum(confidences) == pytest.approx(1.0, abs=1e-5)
        missing = client.post("/v1/predict", json={**body, "dataset": "nope"})
        assert missing.status_code == 404 and missing.json()["kind"] == "dataset_not_found"
        ready = client.get("/readyz").json()  # serving owns the dataset models and reports them
        assert ready["models"]["dataset colours"] == "ok: serving version 1", ready

    state = create_app(settings).state.serving
    assert "dataset colours" not in state.preloader.load_all()  # the preload warms them too
    assert state.datasets.loaded_versions() == {"colours": "1", "plain": "1"}


def _client(settings: Settings):  # type: ignore[no-untyped-def]
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=settings.tracking_uri, registry_uri=settings.tracking_uri)
