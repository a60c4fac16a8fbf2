"""MLflow's process-wide tracking URI, pointed at an explicit client's store for a block."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import mlflow
from mlflow import MlflowClient
from mlflow.tracking._tracking_service.utils import _use_tracking_uri

TRACKING_URI_ENV = "MLFLOW_TRACKING_URI"


@contextmanager
def fluent_tracking_uri(uri: str) -> Iterator[None]:
    """Point MLflow's process-wide tracking URI at `uri` for a block, then restore it exactly.

    Nothing changes when it already resolves to `uri` (the usual case in a deployment).
    Otherwise MLflow's own `_use_tracking_uri` (private, but the only helper that restores an
    unset URI as unset) is used, and MLFLOW_TRACKING_URI, which `set_tracking_uri` exports to
    the environment, is put back too, so later settings do not see a leaked value.
    """
    if mlflow.get_tracking_uri() == uri:
        yield
        return
    previous_env = os.environ.get(TRACKING_URI_ENV)
    try:
        with _use_tracking_uri(uri):
            yield
    finally:
        if previous_env is None:
            os.environ.pop(TRACKING_URI_ENV, None)
        else:
            os.environ[TRACKING_URI_ENV] = previous_env


def open_client(uri: str) -> MlflowClient:
    """An MlflowClient whose stores are created now. For a sqlite store, creation (which runs
    MLflow's schema migrations) happens under a file lock: two processes starting at once on a
    new home once broke the migration for every later client."""
    if not uri.startswith("sqlite:///"):
        return MlflowClient(tracking_uri=uri, registry_uri=uri)
    lock_path = Path(uri.removeprefix("sqlite:///") + ".lock")
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with lock_path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            client = MlflowClient(tracking_uri=uri, registry_uri=uri)
            client._tracking_client.store  # noqa: B018 - creating the store migrates it
            client._get_registry_client().store  # type: ignore[no-untyped-call]  # noqa: B018
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
    return client
