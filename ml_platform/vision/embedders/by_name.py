"""Embedding types by name: built-ins plus custom ONNX types, built on demand.

torch, transformers and onnxruntime are imported when an embedder is first built, so
listing the known types stays cheap (Dagster imports this at definition load).
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from ml_platform.domain import BuiltinEmbeddingType
from ml_platform.vision.embedders.base import Embedder, EmbedderOptions
from ml_platform.vision.embedders.custom_types import CustomEmbeddingType, load_custom_types

log = logging.getLogger(__name__)

BUILTIN_NAMES = [b.value for b in BuiltinEmbeddingType]
RANDOM_CAPABLE = [BuiltinEmbeddingType.CLIP_VIT_B_32.value, BuiltinEmbeddingType.DINO_V2.value]


def custom_embedding_types(options: EmbedderOptions) -> dict[str, CustomEmbeddingType]:
    """The custom types declared in ``options.custom_types_file`` (none when unset)."""
    if options.custom_types_file is None:
        return {}
    return load_custom_types(options.custom_types_file)


def known_embedding_types(options: EmbedderOptions) -> list[str]:
    """Built-in names first, then the custom types in file order."""
    return [*BUILTIN_NAMES, *custom_embedding_types(options)]


def build_embedder(name: str, options: EmbedderOptions) -> Embedder:
    """A new embedder for ``name``, uncached: its owner keeps it (serving's per-app
    ``LazyModels``, a run's ``EmbedderCache``, a one-shot CLI command).

    Raises KeyError for an unknown name and EmbedderUnavailableError when pretrained
    weights cannot be loaded and ``options.allow_random_weights`` is False.
    """
    embedder = _create(name, options)
    log.info("embedder %s ready: %s@%s weights=%s dim=%d", name, embedder.model_id,
             embedder.revision, embedder.weights.value, embedder.dim)  # fmt: skip
    return embedder


class EmbedderCache:
    """Embedders by (name, options), each built once under a lock: one per owner (a Dagster
    resource for its run, a benchmark), never a module global."""

    def __init__(self) -> None:
        self._embedders: dict[tuple[str, EmbedderOptions], Embedder] = {}
        self._lock = threading.Lock()

    def get(self, name: str, options: EmbedderOptions) -> Embedder:
        """The embedder for ``name``: built on first use (``build_embedder``), then reused."""
        with self._lock:
            embedder = self._embedders.get((name, options))
            if embedder is None:
                embedder = build_embedder(name, options)
                self._embedders[(name, options)] = embedder
            return embedder


def build_random_embedder(
    name: str, config: Any = None, options: EmbedderOptions | None = None
) -> Embedder:
    """A built-in type with seeded random weights, uncached (tests and benchmarks), on the
    backend ``options`` give it (torch by default).

    ``config`` is a ``CLIPVisionConfig`` / ``Dinov2Config`` (e.g. a tiny one); None builds
    the real architecture's default configuration.
    """
    options = options if options is not None else EmbedderOptions()
    from ml_platform.vision.embedders.backend_select import torch_with_backend

    if name == BuiltinEmbeddingType.CLIP_VIT_B_32:
        from ml_platform.vision.embedders.clip import random_clip

        return torch_with_backend(random_clip(options, config), options)
    if name == BuiltinEmbeddingType.DINO_V2:
        from ml_platform.vision.embedders.dino import random_dino

        return torch_with_backend(random_dino(options, config), options)
    raise ValueError(f"random weights exist only for the built-in types {RANDOM_CAPABLE}")


def _create(name: str, options: EmbedderOptions) -> Embedder:
    from ml_platform.vision.embedders.onnx_direct import cached_builtin

    cached = cached_builtin(name, options)  # an accepted ONNX variant, torch never imported
    if cached is not None:
        return cached
    from ml_platform.vision.embedders.backend_select import custom_with_backend, torch_with_backend

    if name == BuiltinEmbeddingType.CLIP_VIT_B_32:
        from ml_platform.vision.embedders.clip import load_clip

        return torch_with_backend(load_clip(options), options)
    if name == BuiltinEmbeddingType.DINO_V2:
        from ml_platform.vision.embedders.dino import load_dino

        return torch_with_backend(load_dino(options), options)
    if name == BuiltinEmbeddingType.FACE_DLIB_RESNET_V1:
        from ml_platform.vision.embedders.dlib_face import load_dlib_face

        return load_dlib_face(options)
    custom = custom_embedding_types(options)
    if name in custom:
        from ml_platform.vision.embedders.face_aligned import with_alignment

        return with_alignment(custom_with_backend(custom[name], options), custom[name])
    raise KeyError(f"unknown embedding type {name!r}; known: {[*BUILTIN_NAMES, *custom]}")
