"""MLflow's process-wide tracking URI, pointed at an explicit client's store for a block."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import mlflow
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
