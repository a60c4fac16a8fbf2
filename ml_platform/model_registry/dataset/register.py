"""Log a fine-tuning run to MLflow and register its model as `dataset-<name>`.

`finetune_run` opens one MLflow run (params, the dataset as an input, per-epoch metrics) and
keeps MLflow's process-wide tracking URI on the client's store while it is open, because
`log_input` and `log_model` use the fluent API (see `model_registry.tracking`).
"""

from __future__ import annotations

import logging
import tempfile
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import mlflow
import pandas as pd
import torch
from mlflow import ActiveRun, MlflowClient

from ml_platform.model_registry.artifacts import ensure_experiment
from ml_platform.model_registry.dataset.naming import (
    DATASET_EXPERIMENT,
    DatasetTag,
    dataset_model_name,
)
from ml_platform.model_registry.dataset.pyfunc import (
    WEIGHTS_ARTIFACT,
    FinetunedClassifierModel,
    input_example,
    signature,
)
from ml_platform.model_registry.requirements import model_pip_requirements
from ml_platform.model_registry.tracking import fluent_tracking_uri, owner_tags
from ml_platform.model_registry.versions import (
    Alias,
    RegisteredVersion,
    create_version,
    plain_tags,
)

log = logging.getLogger(__name__)
EXTRA_PACKAGES = ("torch", "pillow", "onnxruntime")


@dataclass(frozen=True)
class DatasetInput:
    """A dataset version as MLflow sees it: a table of (image_id, label, split, source)."""

    name: str
    digest: str
    frame: pd.DataFrame


@dataclass
class FinetuneRun:
    client: MlflowClient
    dataset: str
    run_id: str
    experiment_id: str

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        mlflow.log_metrics(dict(metrics), step=step)

    def register(
        self,
        model: FinetunedClassifierModel,
        state_dict: dict[str, torch.Tensor],
        tags: Mapping[str, str],
        artifacts: Mapping[str, str] | None = None,
    ) -> RegisteredVersion:
        """Log the pyfunc model with its weights (and `artifacts`: its ONNX variants), create a
        version and alias it challenger."""
        name = dataset_model_name(self.dataset)
        with tempfile.TemporaryDirectory(prefix="ml-platform-finetune-") as tmp:
            weights = Path(tmp) / "weights.pt"
            torch.save(state_dict, weights)
            info = mlflow.pyfunc.log_model(
                name="model", python_model=model,
                artifacts={WEIGHTS_ARTIFACT: str(weights), **(artifacts or {})},
                signature=signature(model.class_names), input_example=input_example(),
                metadata=plain_tags(tags), pip_requirements=_requirements(),
            )  # fmt: skip
        model_tags = {DatasetTag.DATASET.value: self.dataset}
        version = create_version(self.client, name, info, self.run_id, tags, model_tags)
        self.client.set_registered_model_alias(name, Alias.CHALLENGER.value, version)
        log.info("registered %s version %s (run %s)", name, version, self.run_id)
        return RegisteredVersion(name, version, self.run_id, self.experiment_id, info.model_uri,
                                 self.client.tracking_uri)  # fmt: skip


@contextmanager
def finetune_run(
    client: MlflowClient,
    dataset: DatasetInput,
    params: Mapping[str, str],
    tags: Mapping[str, str],
    artifact_location: str | None = None,
) -> Iterator[FinetuneRun]:
    """An MLflow run for one fine-tuning of `dataset`, with its params and dataset input."""
    experiment_id = ensure_experiment(client, DATASET_EXPERIMENT, artifact_location)
    name = dataset_model_name(dataset.name)
    with owned_run(client, experiment_id, name, tags) as run:
        mlflow.log_params(dict(params))
        log_dataset_input(dataset)
        yield FinetuneRun(client, dataset.name, run.info.run_id, experiment_id)


@contextmanager
def owned_run(
    client: MlflowClient, experiment_id: str, name: str, tags: Mapping[str, str]
) -> Iterator[ActiveRun]:
    """A run on the client's store, tagged with `tags` and this process as its owner; MLflow's
    process-wide URI points at the client's store while it is open (`log_input` and
    `log_model` are fluent)."""
    run_tags = {**plain_tags(tags), **owner_tags()}
    with fluent_tracking_uri(client.tracking_uri):  # noqa: SIM117 (the run needs the URI)
        with mlflow.start_run(experiment_id=experiment_id, run_name=name, tags=run_tags) as run:
            yield run


# MLflow's advice for model signatures inferred from integer columns, printed when it infers a
# dataset input's schema too, where it does not apply (the schema only describes the table).
INTEGER_SCHEMA_HINT = "Hint: Inferred schema contains integer column"


def log_dataset_input(dataset: DatasetInput, context: str = "training") -> None:
    """Log the version as an MLflow dataset input of the active run (digest = version)."""
    from mlflow.data.pandas_dataset import from_pandas

    with warnings.catch_warnings():  # the schema only describes the table: no model reads it
        warnings.filterwarnings("ignore", INTEGER_SCHEMA_HINT, UserWarning)
        source = from_pandas(
            dataset.frame, name=dataset_model_name(dataset.name), digest=dataset.digest,
            targets="label",
        )  # fmt: skip
        mlflow.log_input(source, context=context)


def _requirements() -> list[str]:
    from importlib.metadata import version

    return [*model_pip_requirements(), *(f"{p}=={version(p)}" for p in EXTRA_PACKAGES)]


DATASETS_EXPERIMENT = "datasets"


def log_dataset_version(
    client: MlflowClient,
    dataset: DatasetInput,
    metrics: Mapping[str, float],
    tags: Mapping[str, str],
    artifact_location: str | None = None,
) -> tuple[str, str]:
    """One run in the `datasets` experiment recording a new version as a dataset input.

    Returns (experiment id, run id).
    """
    experiment_id = ensure_experiment(client, DATASETS_EXPERIMENT, artifact_location)
    name = f"{dataset.name}@{dataset.digest}"
    with owned_run(client, experiment_id, name, tags) as run:
        log_dataset_input(dataset, context="version")
        mlflow.log_metrics(dict(metrics))
    return experiment_id, run.info.run_id
