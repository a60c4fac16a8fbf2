"""Registry fixtures: real MLflow sqlite stores, copied from one migrated template."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from mlflow import MlflowClient


def fresh_sqlite_uri(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    """A new sqlite store, copied from a session template: migrating one takes seconds."""
    template = tmp_path_factory.getbasetemp() / "mlflow-template.db"
    if not template.exists():
        MlflowClient(f"sqlite:///{template}", f"sqlite:///{template}")
    root = tmp_path_factory.mktemp("mlflow")
    shutil.copyfile(template, root / "mlflow.db")
    return f"sqlite:///{root / 'mlflow.db'}", root
