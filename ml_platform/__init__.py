"""ml_platform: Dagster-orchestrated ML data assets for crawlr image collections."""

__version__ = "0.1.0"
