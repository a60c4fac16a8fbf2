"""The embedder contract shared by every embedding type, and small helpers around it."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np
from PIL import Image

from ml_platform.domain import WeightsStatus
from ml_platform.settings import fed_by
from ml_platform.vision.embedders.backends import Backend, Int8Mode, parse_choice

RANDOM_REVISION = "random-init"
REVISION_HEX_CHARS = 12
DEFAULT_ONNX_CACHE = Path("~/.ml-platform/models/onnx")


@dataclass(frozen=True)
class EmbedderOptions:
    """Everything that decides which embedder instance ``build_embedder`` returns."""

    clip_model: str = fed_by("clip_model")
    dino_model: str = fed_by("dino_model")
    custom_types_file: Path | None = fed_by("embedding_types_file")
    allow_random_weights: bool = fed_by("allow_random_weights")
    device: str = fed_by("device")
    batch_size: int = fed_by("embed_batch_size")
    # Inference backend (vision/embedders/backends.py): "torch", "onnx", "onnx-int8" or
    # "auto" (the fastest whose drift check passes); per-type overrides as (type, backend).
    # Deliberately not the platform's `embed_backend` (auto): an embedder built without
    # settings runs its native checkpoint; `embedder_options(settings)` applies the setting.
    backend: str = fed_by("embed_backend", "torch")
    type_backends: tuple[tuple[str, str], ...] = fed_by("type_backends", ())
    int8_mode: str = fed_by("embed_int8_mode")
    onnx_cache_dir: Path | None = fed_by("onnx_cache_dir", None)  # None: DEFAULT_ONNX_CACHE
    calibration_dir: Path | None = fed_by("image_store_dir", None)  # None: synthetic images

    def __post_init__(self) -> None:
        if self.batch_size <= 0:
            raise ValueError(f"batch_size must be positive, got {self.batch_size}")
        for where, value in (("backend", self.backend), *self.type_backends):
            parse_choice(value, f"backend of {where}")
        Int8Mode(self.int8_mode)

    def backend_for(self, embedding_type: str) -> Backend | None:
        """The backend setting of ``embedding_type`` (None: auto)."""
        chosen = dict(self.type_backends).get(embedding_type, self.backend)
        return parse_choice(chosen, f"backend of {embedding_type}")

    def with_backend(self, embedding_type: str, backend: Backend) -> EmbedderOptions:
        """These options with ``embedding_type`` pinned to ``backend`` (serving a champion)."""
        others = tuple((k, v) for k, v in self.type_backends if k != embedding_type)
        return replace(self, type_backends=(*others, (embedding_type, backend.value)))

    @property
    def resolved_onnx_cache_dir(self) -> Path:
        return (self.onnx_cache_dir or DEFAULT_ONNX_CACHE).expanduser()


class EmbedderUnavailableError(RuntimeError):
    """Pretrained weights cannot be loaded and random weights are not allowed."""


@runtime_checkable
class Embedder(Protocol):
    """An image embedding model with its own preprocessing.

    Outputs are raw float32 vectors (not L2-normalised unless a custom type asks for it);
    callers normalise with ``l2_normalize`` where they compare by cosine similarity.
    """

    name: str
    model_id: str
    revision: str
    weights: WeightsStatus
    dim: int

    def preprocess(self, images: Sequence[Image.Image]) -> np.ndarray: ...

    def embed_preprocessed(self, pixels: np.ndarray) -> np.ndarray: ...

    def embed(self, images: Sequence[Image.Image]) -> np.ndarray: ...


def embed_in_batches(
    images: Sequence[Image.Image],
    batch_size: int,
    dim: int,
    preprocess: Callable[[Sequence[Image.Image]], np.ndarray],
    run: Callable[[np.ndarray], np.ndarray],
) -> np.ndarray:
    """Preprocess and run ``images`` ``batch_size`` at a time; [n, dim] float32."""
    if not images:
        return np.zeros((0, dim), dtype=np.float32)
    parts = [
        run(preprocess(images[start : start + batch_size]))
        for start in range(0, len(images), batch_size)
    ]
    return np.concatenate(parts, axis=0)


def l2_normalize(vectors: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    """Rows scaled to unit L2 norm (zero rows stay zero), float32."""
    array = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(array, axis=-1, keepdims=True)
    normalised: np.ndarray = array / np.maximum(norms, eps)
    return normalised


def file_sha256(paths: Sequence[Path], chars: int = REVISION_HEX_CHARS) -> str:
    """Hex sha256 prefix over the contents of ``paths`` in order (a revision for local files)."""
    digest = hashlib.sha256()
    for path in paths:
        with path.open("rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()[:chars]
