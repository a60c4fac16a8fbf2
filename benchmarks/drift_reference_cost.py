"""Per-batch cost of the drift reference against history length, uncached vs cached.

On a local store with `--histories` batches of `--images` synthetic 512-d embeddings
registered before one champion, times reading what `batch_drift` needs for one new batch:
its own embeddings plus the reference, either sampled from every earlier batch (the path
before the cache, and what a cache miss still does once per champion version) or read from
the cached sample (`services/drift_reference.py`). Counts the embedding tables read.

    PYTHONPATH=. nice -n 10 python benchmarks/drift_reference_cost.py [--histories 10 50 200]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

from ml_platform.domain import DerivativeType, Focus, ImageRecord, IngestedImage, IngestStatus
from ml_platform.model_registry.collection.naming import VersionTag
from ml_platform.model_registry.versions import ModelVersionInfo
from ml_platform.services.drift_reference import training_reference
from ml_platform.services.training_data import load_focus
from ml_platform.settings import Settings
from ml_platform.store.blobs import Key, Store
from ml_platform.store.layout import Layout
from ml_platform.store.tables import write_catalog
from ml_platform.store.vectors import EmbeddingRow, write_embeddings
from ml_platform.vision.embedders.identity import EmbedderIdentity

FOCUS = Focus(DerivativeType.WHOLE_IMAGE, "embed_clip_vit_b_32")
WHO = EmbedderIdentity(FOCUS.embedding_type, "synthetic", "v1")
SIZE = Settings.model_fields["drift_reference_size"].default


class CountingStore(Store):
    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.reads = 0

    def read_bytes(self, key: Key) -> bytes:
        self.reads += "/embeddings/" in key.path
        return super().read_bytes(key)


def add_batch(layout: Layout, key: str, first: int, n: int, rng: np.random.Generator) -> None:
    at = datetime(2025, 1, 1, tzinfo=UTC)
    images = [IngestedImage(ImageRecord(i, f"/m/{i}.jpg", at + timedelta(seconds=i)),
                            IngestStatus.OK, f"{i:064x}", f"images/{i}.jpg", 64, 48)
              for i in range(first, first + n)]  # fmt: skip
    write_catalog(layout, key, images)
    rows = [EmbeddingRow(i, "ok", rng.standard_normal(512).astype(np.float32))
            for i in range(first, first + n)]  # fmt: skip
    write_embeddings(layout, FOCUS, key, rows, WHO, 512)
    layout.metadata().register_batch(key, [e.image for e in images])


def per_batch(layout: Layout, batch: str, champion: ModelVersionInfo, cached: bool) -> (
    tuple[float, int]
):  # fmt: skip
    """Seconds and embedding tables read for one new batch's inputs."""
    counting = CountingStore(layout.store.url)
    view = replace(layout, store=counting)
    if not cached:  # what every batch did before the cache
        for name in layout.store.children(f"data/drift/reference/{FOCUS.key}"):
            layout.store.delete(Key(f"data/drift/reference/{FOCUS.key}/{name}", "bench"))
    start = time.perf_counter()
    load_focus(view, FOCUS, [batch])
    training_reference(view, FOCUS, batch, {1: champion}, WHO.model_id, SIZE)
    return time.perf_counter() - start, counting.reads


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--histories", type=int, nargs="+", default=[10, 50, 200])
    p.add_argument("--images", type=int, default=100, help="embeddings per batch")
    args = p.parse_args()
    rng = np.random.default_rng(0)
    print("| batches before the champion | uncached: s (tables read) | cached: s (tables read) |")
    print("|---|---|---|")
    for history in args.histories:
        with tempfile.TemporaryDirectory() as home:
            layout = Layout.for_settings(Settings(home=Path(home)))
            for b in range(history):
                add_batch(layout, f"h{b:04d}", b * args.images, args.images, rng)
            tags = {VersionTag.EMBEDDER_ID.value: WHO.model_id}
            champion = ModelVersionInfo("crawlr-collection-1", "1", ("champion",), tags, None,
                                        datetime.now(UTC) + timedelta(seconds=1))  # fmt: skip
            time.sleep(1.1)
            add_batch(layout, "new", 10**7, args.images, rng)
            cold = [per_batch(layout, "new", champion, cached=False) for _ in range(3)]
            warm = [per_batch(layout, "new", champion, cached=True) for _ in range(3)]
            cells = [f"{np.median([t for t, _ in r]):.3f} ({r[0][1]})" for r in (cold, warm)]
            print(f"| {history} | {cells[0]} | {cells[1]} |")


if __name__ == "__main__":
    main()
