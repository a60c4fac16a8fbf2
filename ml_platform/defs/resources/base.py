"""Resources read the typed Settings at run time; an explicit field overrides the setting."""

from __future__ import annotations

import dagster as dg

from ml_platform.settings import Settings


class PlatformResource(dg.ConfigurableResource):  # type: ignore[misc, type-arg]
    """Base for resources that derive their defaults from `Settings` (ML_PLATFORM_* env)."""

    home: str | None = None
    overrides: dict[str, str] = {}  # Settings field name -> value, over the environment

    def settings(self) -> Settings:
        values: dict[str, object] = {"home": self.home} if self.home else {}
        return Settings(**{**values, **self.overrides})  # type: ignore[arg-type]


def settings_overrides(settings: Settings) -> dict[str, str]:
    """A Settings object as resource config, so in-process runs use exactly these settings."""
    dumped = settings.model_dump(exclude_none=True, exclude={"home"})
    return {key: str(value) for key, value in dumped.items()}
