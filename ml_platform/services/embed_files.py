"""Embed image files from disk into one Parquet file (what `ml-platform embed` runs).

Rows carry the path, status (ok | no_derivative | failed), the reason when not ok, the
embedder identity (id, revision with the backend, weights, backend) and the vector.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

from ml_platform.domain import DerivativeType
from ml_platform.store.blobs import atomic_local_write
from ml_platform.vision.crops import crop_for
from ml_platform.vision.decode import load_rgb
from ml_platform.vision.detectors import Detector
from ml_platform.vision.embedders import Embedder
from ml_platform.vision.embedders.backends import backend_label
from ml_platform.vision.embedders.identity import EmbedderIdentity, IdentityField
from ml_platform.vision.pipeline import NO_DERIVATIVE, EmbeddedBatch, draft_size_for
from ml_platform.vision.pipeline import iter_embedded_batches as iter_batches

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff")
DETECTION_DRAFT = (1024, 1024)  # crops need more pixels than the embedder's input size


@dataclass(frozen=True)
class EmbedSummary:
    ok: int
    no_derivative: int
    failed: int

    @property
    def total(self) -> int:
        return self.ok + self.no_derivative + self.failed


def find_images(paths: Sequence[Path]) -> list[Path]:
    """Files as given, folders searched recursively for images; sorted, no duplicates."""
    found: set[Path] = set()
    for path in paths:
        if path.is_dir():
            found.update(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        elif path.is_file():
            found.add(path)
        else:
            raise FileNotFoundError(f"{path} is neither a file nor a folder")
    return sorted(found)


def file_loader(
    embedder: Embedder, target: DerivativeType, detector: Detector | None
) -> Callable[[Path], Image.Image | None]:
    """Decode (JPEG draft) and, for person/face targets, detect and crop."""
    if target is DerivativeType.WHOLE_IMAGE:
        draft = draft_size_for(embedder)
        return lambda path: load_rgb(path, draft_size=draft)
    if detector is None:
        raise ValueError(f"target {target.value} needs a detector")

    def load(path: Path) -> Image.Image | None:
        image = load_rgb(path, draft_size=DETECTION_DRAFT)
        return crop_for(image, target, detector.detect(image))

    return load


def embed_files(
    paths: Sequence[Path],
    embedder: Embedder,
    target: DerivativeType,
    out: Path,
    *,
    detector: Detector | None = None,
    on_batch: Callable[[int], None] = lambda n: None,
    loader_threads: int | None = None,
) -> EmbedSummary:
    """Embed ``paths`` into ``out`` (written atomically); ``on_batch(n)`` after each batch."""
    load = file_loader(embedder, target, detector)
    batches = iter_batches(paths, embedder, load=load, loader_threads=loader_threads)
    return write_batches(out, batches, embedder, target, on_batch)


def write_batches(
    out: Path,
    batches: Iterable[EmbeddedBatch[Path]],
    embedder: Embedder,
    target: DerivativeType,
    on_batch: Callable[[int], None],
) -> EmbedSummary:
    counts = {"ok": 0, "no_derivative": 0, "failed": 0}
    with (
        atomic_local_write(out) as handle,
        pq.ParquetWriter(handle, schema(embedder.dim)) as writer,
    ):
        for batch in batches:
            table = batch_table(batch, embedder, target)
            writer.write_table(table)
            for status in table.column("status").to_pylist():
                counts[status] += 1
            on_batch(len(batch.items) + len(batch.skipped))
    return EmbedSummary(**counts)


def schema(dim: int) -> pa.Schema:
    text = pa.string()
    fields = [("path", text), ("status", text), ("error", text), ("derivative_type", text)]
    identity = [*(f.value for f in IdentityField), "backend"]
    return pa.schema(
        [*fields, *((name, text) for name in identity), ("vector", pa.list_(pa.float32()))],
        metadata={"dimensionality": str(dim)},
    )


def batch_table(batch: EmbeddedBatch[Path], embedder: Embedder, target: DerivativeType) -> pa.Table:
    skipped = list(batch.skipped)
    paths = [str(p) for p in batch.items] + [str(s.item) for s in skipped]
    statuses = ["ok"] * len(batch.items) + [_status(s.reason) for s in skipped]
    errors = [None] * len(batch.items) + [s.reason for s in skipped]
    vectors = [np.asarray(v, np.float32).tolist() for v in batch.vectors] + [None] * len(skipped)
    n = len(paths)
    columns = {
        "path": paths, "status": statuses, "error": errors,
        "derivative_type": [target.value] * n, **EmbedderIdentity.of(embedder).to_columns(n),
        "backend": [backend_label(embedder)] * n,
        "vector": vectors,
    }  # fmt: skip
    return pa.Table.from_pydict(columns, schema=schema(embedder.dim))


def _status(reason: str) -> str:
    return "no_derivative" if reason == NO_DERIVATIVE else "failed"
