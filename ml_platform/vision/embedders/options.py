"""Embedder options from the settings: one place for every caller (assets, serving, CLI)."""

from __future__ import annotations

from ml_platform.settings import Settings
from ml_platform.vision.embedders.base import EmbedderOptions


def embedder_options(settings: Settings) -> EmbedderOptions:
    return EmbedderOptions(
        clip_model=settings.clip_model,
        dino_model=settings.dino_model,
        custom_types_file=settings.embedding_types_file,
        allow_random_weights=settings.allow_random_weights,
        device=settings.device,
        batch_size=settings.embed_batch_size,
        backend=settings.embed_backend,
        type_backends=settings.type_backends,
        int8_mode=settings.embed_int8_mode,
        onnx_cache_dir=settings.onnx_cache_dir,
        calibration_dir=settings.image_store_dir,
    )
