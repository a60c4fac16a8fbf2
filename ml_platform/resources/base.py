"""Resources read the typed Settings at run time; an explicit field overrides the setting."""

from __future__ import annotations

import dagster as dg

from ml_platform.settings import Settings


class PlatformResource(dg.ConfigurableResource):  # type: ignore[misc]
    """Base for resources that derive their defaults from `Settings` (ML_PLATFORM_* env)."""

    home: str | None = None

    def settings(self) -> Settings:
        return Settings(home=self.home) if self.home else Settings()
