"""MLflow's process-wide tracking URI, pointed at an explicit client's store for a block."""

from __future__ import annotations

import fcntl
import os
import socket
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import mlflow
from mlflow import MlflowClient
from mlflow.tracking._tracking_service.utils import _use_tracking_uri

TRACKING_URI_ENV = "MLFLOW_TRACKING_URI"
OWNER_HOST = "ml_platform.owner_host"
OWNER_PID = "ml_platform.owner_pid"


def owner_tags() -> dict[str, str]:
    """Tags naming this process as the owner of a run it starts."""
    return {OWNER_HOST: socket.gethostname(), OWNER_PID: str(os.getpid())}


def owner_gone(tags: Mapping[str, str]) -> str | None:
    """Why the run's owner can no longer finish it (its process on this host is gone), or
    None: alive, on another host (cannot be told from here), or no owner recorded."""
    host, pid = tags.get(OWNER_HOST), tags.get(OWNER_PID, "")
    if host != socket.gethostname() or not pid.isdigit():
        return None
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return f"process {pid} on {host}, which ran it, is gone (killed or crashed)"
    except PermissionError:
        return None  # alive, under another user
    return None


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
