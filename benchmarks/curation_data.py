"""Labelled embeddings for benchmarks/curation.py: the pets' 12 breeds and the clothing
classes of ../shared, embedded once with the real EfficientNet-Lite0 and cached."""

from __future__ import annotations

import hashlib
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from shared_models import EFFICIENTNET_ONNX, SHARED, efficientnet_embedder

from ml_platform.vision.decode import load_rgb

CACHE_DIR = Path(tempfile.gettempdir()) / "ml_platform_curation_bench"
BATCH = 32


@dataclass(frozen=True)
class LabelledSet:
    name: str
    X: NDArray[np.float32]
    labels: NDArray[np.int64]  # class index per row
    classes: tuple[str, ...]


def image_paths(root: Path) -> tuple[list[Path], list[str]]:
    """Every `<class>/*.jpg` under `root`, sorted, with its class name."""
    paths = sorted(p for p in root.glob("*/*.jpg"))
    return paths, [p.parent.name for p in paths]


def load_set(name: str, model: Path = EFFICIENTNET_ONNX) -> LabelledSet:
    """`name` (pets | clothing) embedded, read from the cache when it holds these files."""
    root = SHARED / "data" / name
    if not root.is_dir():
        raise SystemExit(f"{root} is missing; set ML_PLATFORM_SHARED_DIR to ../shared")
    paths, names = image_paths(root)
    key = hashlib.sha256("\n".join(str(p) for p in paths).encode() + str(model).encode())
    cache = CACHE_DIR / f"{name}-{key.hexdigest()[:16]}.npy"
    if cache.exists():
        X = np.load(cache)
    else:
        X = _embed(paths, model)
        CACHE_DIR.mkdir(parents=True, exist_ok=True)
        np.save(cache, X)
    classes = tuple(sorted(set(names)))
    labels = np.asarray([classes.index(n) for n in names], dtype=np.int64)
    return LabelledSet(name, X, labels, classes)


def _embed(paths: list[Path], model: Path) -> NDArray[np.float32]:
    with tempfile.TemporaryDirectory() as scratch:
        embedder = efficientnet_embedder(model, Path(scratch))
        out = [
            np.asarray(embedder.embed([load_rgb(p) for p in paths[i : i + BATCH]]), np.float32)
            for i in range(0, len(paths), BATCH)
        ]
    return np.concatenate(out)


if __name__ == "__main__":
    for n in ("pets", "clothing"):
        s = load_set(n)
        print(n, s.X.shape, len(s.classes))
