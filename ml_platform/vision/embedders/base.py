"""The embedder contract shared by every embedding type, and small helpers around it."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np
from PIL import Image

from ml_platform.domain import WeightsStatus

RANDOM_REVISION = "random-init"
REVISION_HEX_CHARS = 12


@dataclass(frozen=True)
class EmbedderOptions:
    """Everything that decides which embedder instance ``get_embedder`` returns."""

    clip_model: str = "openai/clip-vit-base-patch32"
    dino_model: str = "facebook/dinov2-small"
    custom_types_file: Path | None = None
    allow_random_weights: bool = False
    device: str = "cpu"
    batch_size: int = 32

    def __post_init__(self) -> None:
        if self.batch_size <= 0:
            raise ValueError(f"batch_size must be positive, got {self.batch_size}")


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
