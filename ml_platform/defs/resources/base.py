"""Resources read the typed Settings at run time; an explicit field overrides the setting."""

from __future__ import annotations

import os
from urllib.parse import urlsplit

import dagster as dg

from ml_platform.settings import Settings


class PlatformResource(dg.ConfigurableResource):  # type: ignore[misc, type-arg]
    """Base for resources that derive their defaults from `Settings` (ML_PLATFORM_* env)."""

    home: str | None = None
    overrides: dict[str, str] = {}  # Settings field name -> value, over the environment

    def settings(self) -> Settings:
        values: dict[str, object] = {"home": self.home} if self.home else {}
        return Settings(**{**values, **self.overrides})  # type: ignore[arg-type]


# Settings that may carry a credential: never resource config, which Dagster stores with
# every run; they reach the run through the environment instead (see export_secrets).
SECRET_FIELDS = (
    "crawlr", "metadata_url", "mlflow_tracking_uri", "serve_token", "store_url", "mlflow_artifacts",
    "alert_webhook_url", "alert_webhook_secret",
)  # fmt: skip


def carries_secret(name: str, value: object) -> bool:
    if name in ("serve_token", "alert_webhook_secret", "alert_webhook_url"):  # URLs hold tokens
        return True
    return isinstance(value, str) and "@" in urlsplit(value).netloc


def settings_overrides(settings: Settings) -> dict[str, str]:
    """A Settings object as resource config, so in-process runs use exactly these settings;
    a value with a credential is left out (export_secrets puts it in the environment)."""
    dumped = settings.model_dump(exclude_none=True, exclude={"home"})
    return {k: str(v) for k, v in dumped.items() if not carries_secret(k, v)}


def export_secrets(settings: Settings) -> None:
    """Credential-carrying settings as environment variables, read by the resources at run
    time, so they never enter Dagster's run storage."""
    for name in SECRET_FIELDS:
        value = getattr(settings, name)
        if value is not None and carries_secret(name, value):
            os.environ[f"ML_PLATFORM_{name.upper()}"] = str(value)
