"""Where MLflow artifacts live, and finding them again after the home moved.

New experiments get the artifact-root setting (``ML_PLATFORM_MLFLOW_ARTIFACTS``, default
``<home>/mlflow/artifacts``, may be ``s3://...``) as their artifact location, so nothing lands
in ``./mlruns`` of the working directory. An http tracking server keeps its own root (often
``mlflow-artifacts:`` proxying) unless the setting is given explicitly.

With a database tracking store MLflow records absolute ``file:`` URIs. When a home is copied
or moved, those point at the old place; `model_download_uri` then maps a version's URI under
its experiment's recorded root onto the current root, so the copied home still serves.
"""

from __future__ import annotations

import logging
from pathlib import Path
from urllib.parse import unquote, urlsplit

from mlflow import MlflowClient

from ml_platform.settings import Settings

log = logging.getLogger(__name__)
SERVER_SCHEMES = ("http", "https", "databricks")


def artifact_location(settings: Settings, tracking_uri: str) -> str | None:
    """The artifact location for new experiments (None: the tracking server decides)."""
    if settings.mlflow_artifacts:
        return settings.mlflow_artifact_root
    if urlsplit(tracking_uri).scheme in SERVER_SCHEMES:
        return None
    return settings.mlflow_artifact_root


def local_path(uri: str) -> Path | None:
    """The local path of a `file:` URI or a plain path; None for remote URIs."""
    return _local_path(uri)


def _local_path(uri: str) -> Path | None:
    parts = urlsplit(uri)
    if parts.scheme == "file":
        return Path(unquote(parts.path))
    return Path(uri) if parts.scheme == "" else None


def elsewhere(recorded: str | None, current_root: str | None) -> bool:
    """Whether an experiment's recorded local artifact location lies outside the current
    local root (the home was copied or moved); False when either is not a local path."""
    path = None if recorded is None else _local_path(recorded)
    root = None if current_root is None else _local_path(current_root)
    if path is None or root is None:
        return False
    return not path.resolve().is_relative_to(root.resolve())


def relocated(uri: str, recorded_root: str, current_root: str) -> str:
    """`uri` moved from under `recorded_root` to under `current_root`, when it is a local
    path under the recorded root and either it no longer exists or the current root holds
    its copy (a home's models are read from that home); otherwise `uri` itself."""
    path, old = _local_path(uri), _local_path(recorded_root)
    if path is None or old is None or not path.is_relative_to(old):
        return uri
    moved = current_root.rstrip("/") + "/" + path.relative_to(old).as_posix()
    moved_path = _local_path(moved)
    if path.exists() and (moved_path is None or not moved_path.exists()):
        return uri
    if moved != uri:
        log.info("artifact %s is read from %s (this home)", uri, moved)
    return moved


def model_download_uri(
    client: MlflowClient, name: str, version: str, artifact_root: str | None = None
) -> str:
    """Where a model version's files are; under `artifact_root` when the recorded local path
    is outside it (a copied or moved home) and the copy is there, or the original is gone."""
    uri = str(client.get_model_version_download_uri(name, version))
    local = _local_path(uri)
    if artifact_root is None or local is None or not elsewhere(uri, artifact_root):
        return uri
    run_id = client.get_model_version(name, version).run_id
    if not run_id:  # a version registered from outside a run: nothing recorded to map from
        return uri
    experiment_id = client.get_run(run_id).info.experiment_id
    recorded = str(client.get_experiment(experiment_id).artifact_location)
    return relocated(uri, recorded, artifact_root)


def ensure_experiment(client: MlflowClient, name: str, artifact_location: str | None = None) -> str:
    """The id of experiment `name`, created (with `artifact_location`) when missing.

    An experiment whose recorded local artifact location lies outside `artifact_location`
    was made by the home this one was copied or moved from: new runs would write into that
    home. It is renamed (its runs and models stay, found through `model_download_uri`) and
    `name` is created again under the current location."""
    experiment = client.get_experiment_by_name(name)
    if experiment is not None and not elsewhere(experiment.artifact_location, artifact_location):
        return str(experiment.experiment_id)
    if experiment is not None:
        retired = f"{name} (home at {experiment.artifact_location})"
        log.warning("experiment %r writes to another home; renamed to %r", name, retired)
        client.rename_experiment(experiment.experiment_id, retired)
    return str(client.create_experiment(name, artifact_location=artifact_location))
