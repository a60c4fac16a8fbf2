"""The MLflow tracking store and model registry (sqlite under home by default)."""

from __future__ import annotations

from mlflow import MlflowClient

from ml_platform.defs.resources.base import PlatformResource
from ml_platform.model_registry.artifacts import artifact_location
from ml_platform.model_registry.tracking import open_client


class MlflowResource(PlatformResource):
    """`tracking_uri` overrides ML_PLATFORM_MLFLOW_TRACKING_URI / MLFLOW_TRACKING_URI."""

    tracking_uri: str | None = None

    @property
    def resolved_uri(self) -> str:
        return self.tracking_uri or self.settings().tracking_uri

    def client(self) -> MlflowClient:
        uri = self.resolved_uri
        if uri.startswith("sqlite:///"):
            self.settings().mlflow_dir.mkdir(parents=True, exist_ok=True)
        return open_client(uri)

    def artifact_location(self) -> str | None:
        """Artifact location of new experiments: the artifact-root setting (default under
        home), never ./mlruns; None lets an http tracking server use its own root."""
        return artifact_location(self.settings(), self.resolved_uri)

    def artifact_root(self) -> str:
        """The current artifact root, where a moved home's model files are found again."""
        return self.settings().mlflow_artifact_root
