"""The registry benchmarks/serve_scale.py serves: N collection champions on two foci and D
dataset champions, in a real MLflow sqlite store, built in seconds.

Two collection versions (CLIP whole image, DINOv2 whole image; logistic regressions on the
tiny checkpoints' dimensions) and one dataset version (EfficientNet-Lite0, 3 classes, random
weights) are logged and registered through the platform's own code. Every other model is a
copy of one of them made in SQL: its registered model, version, tags (the collection id
rewritten) and `champion` alias rows, pointing at the same artifacts. What serving reads is
then exactly what 10,000 registrations would leave, without 10,000 MLflow runs.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import numpy as np
import pandas as pd
from mlflow import MlflowClient

from ml_platform.model_registry.collection.naming import VersionTag, model_name
from ml_platform.model_registry.collection.register import (
    ClassifierPayload,
    log_and_register,
    promote,
)
from ml_platform.model_registry.dataset.naming import DatasetTag, dataset_model_name
from ml_platform.model_registry.versions import Alias

FOCI = (("embed_clip_vit_b_32", 16), ("embed_dino_v2", 24))  # the tiny checkpoints' dims
TABLES = ("registered_models", "registered_model_tags", "model_versions",
          "model_version_tags", "registered_model_aliases")  # fmt: skip


def build_registry(root: Path, collections: int, datasets: int) -> str:
    """A sqlite registry under `root` with `collections` + `datasets` champions; its URI."""
    uri = f"sqlite:///{root / 'mlflow.db'}"
    os.environ["MLFLOW_TRACKING_URI"] = uri  # log_and_register resolves sources with it
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    for collection_id, (embedding_type, dim) in enumerate(FOCI, start=1):
        _register_collection(client, root, collection_id, embedding_type, dim)
    if datasets:
        _register_dataset(client, root, "dataset-0")
    with sqlite3.connect(root / "mlflow.db") as db:
        for collection_id in range(len(FOCI) + 1, collections + 1):
            template = model_name(1 + (collection_id - 1) % len(FOCI))
            _copy(db, template, model_name(collection_id), str(collection_id))
        for index in range(1, datasets):
            _copy(db, dataset_model_name("dataset-0"), dataset_model_name(f"dataset-{index}"),
                  f"dataset-{index}")  # fmt: skip
    return uri


def _register_collection(
    client: MlflowClient, root: Path, collection_id: int, embedding_type: str, dim: int
) -> None:
    from sklearn.linear_model import LogisticRegression

    features = np.random.default_rng(collection_id).normal(size=(64, dim))
    estimator = LogisticRegression().fit(features, np.arange(64) % 2)
    tags = {
        VersionTag.COLLECTION_ID: str(collection_id),
        VersionTag.DERIVATIVE_TYPE: "whole_image",
        VersionTag.EMBEDDING_TYPE: embedding_type,
        VersionTag.DIMENSIONALITY: str(dim),
        VersionTag.THRESHOLD: "0.5",
        VersionTag.WEIGHTS: "pretrained",  # the local checkpoints' own weights
    }
    payload = ClassifierPayload(estimator, 0.5, dim, collection_id, tags, {}, {})
    version = log_and_register(client, payload, artifact_location=str(root / "artifacts")).version
    promote(client, collection_id, version, "benchmark")


def _register_dataset(client: MlflowClient, root: Path, dataset: str) -> None:
    from ml_platform.learning.finetune.architectures import Architecture, rebuild
    from ml_platform.learning.finetune.config import ModelName
    from ml_platform.learning.finetune.preprocessing import preprocess_spec, spec_to_json
    from ml_platform.model_registry.dataset.pyfunc import FinetunedClassifierModel
    from ml_platform.model_registry.dataset.register import DatasetInput, finetune_run

    lite0 = ModelName.EFFICIENTNET_LITE0
    architecture = Architecture(lite0, 3, 224)
    classes = ["a", "b", "c"]
    model = FinetunedClassifierModel(
        architecture.to_json(), spec_to_json(preprocess_spec(lite0, 224)), classes
    )
    frame = pd.DataFrame({"image_id": [1, 2, 3], "label": classes, "split": "train",
                          "source": "benchmark"})  # fmt: skip
    tags = {DatasetTag.DATASET.value: dataset, DatasetTag.CLASS_NAMES.value: '["a","b","c"]',
            DatasetTag.NUM_CLASSES.value: "3", DatasetTag.WEIGHTS.value: "random"}  # fmt: skip
    with finetune_run(client, DatasetInput(dataset, "d0", frame), {}, tags,
                      str(root / "artifacts")) as run:  # fmt: skip
        registered = run.register(model, rebuild(architecture).state_dict(), tags)
    name = dataset_model_name(dataset)
    client.set_registered_model_alias(name, Alias.CHAMPION.value, registered.version)


def _copy(db: sqlite3.Connection, template: str, name: str, key: str) -> None:
    """Every registry row of `template` again under `name`; tags naming the template's
    collection id or dataset now name `key`."""
    for table in TABLES:
        columns = [row[1] for row in db.execute(f"PRAGMA table_info({table})")]
        rows = db.execute(f"SELECT * FROM {table} WHERE name = ?", (template,)).fetchall()
        for row in rows:
            values = dict(zip(columns, row, strict=True))
            values["name"] = name
            if values.get("key") in (VersionTag.COLLECTION_ID.value, DatasetTag.DATASET.value):
                values["value"] = key
            names = ", ".join(f'"{c}"' for c in columns)
            marks = ", ".join("?" for _ in columns)
            db.execute(f"INSERT INTO {table} ({names}) VALUES ({marks})",
                       [values[c] for c in columns])  # fmt: skip
