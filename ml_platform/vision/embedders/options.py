"""Embedder options from the settings: one place for every caller (assets, serving, CLI)."""

from __future__ import annotations

from ml_platform.settings import Settings, options_from
from ml_platform.vision.embedders.base import EmbedderOptions


def embedder_options(settings: Settings) -> EmbedderOptions:
    """The options each `fed_by` field of `EmbedderOptions` names a setting for."""
    return options_from(EmbedderOptions, settings)
