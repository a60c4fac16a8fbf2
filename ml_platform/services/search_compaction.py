"""Compacting a focus's batch shards into one approximate (IVF) segment of the search index.

Shards stay exact and searchable; compaction only moves their rows into a faster structure.
It runs when the shards no compacted generation covers hold at least `min_new_vectors`
(the knob). The IVF lists are trained again when the index has grown past `retrain_growth`
times the vectors it was trained on (or on the first run); otherwise the new rows are added
to the previous generation's trained lists, which is proportional to the new work.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import faiss
import numpy as np

from ml_platform.domain import Focus
from ml_platform.learning.ann_search import Attributes, Segment, build_ivf, default_nlist
from ml_platform.store.layout import Layout
from ml_platform.store.search_index import (
    Manifest,
    batch_vectors,
    latest_manifest,
    read_compacted,
    uncovered_batches,
    write_compacted,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CompactionConfig:
    """When and how shards are compacted (the asset's and the CLI's run config)."""

    min_new_vectors: int = 50_000
    codec: str = "fp16"
    nlist: int | None = None  # None: about 4 sqrt(n)
    retrain_growth: float = 2.0


@dataclass(frozen=True)
class CompactionOutcome:
    focus: Focus
    manifest: Manifest | None  # None: nothing to do
    new_batches: int
    new_vectors: int
    retrained: bool
    seconds: float
    reason: str


def compact(layout: Layout, focus: Focus, config: CompactionConfig) -> CompactionOutcome:
    """Write a new compacted generation of `focus` when enough uncovered rows wait."""
    start = time.perf_counter()
    previous = latest_manifest(layout, focus)
    batches = uncovered_batches(layout, focus, previous)
    parts = [batch_vectors(layout, focus, b) for b in batches]
    new_vectors = sum(len(a) for a, _ in parts)
    if new_vectors < config.min_new_vectors:
        reason = f"{new_vectors} uncovered vectors < min_new_vectors={config.min_new_vectors}"
        return CompactionOutcome(focus, None, len(batches), new_vectors, False, 0.0, reason)
    total = new_vectors + (previous.vectors if previous else 0)
    retrain = previous is None or total > config.retrain_growth * previous.trained_on
    if retrain:
        segment = _trained(layout, focus, previous, parts, config)
    else:
        assert previous is not None
        segment = _extended(read_compacted(layout, focus, previous), parts)
    covered = [*(previous.batches if previous else ()), *batches]
    trained_on = total if retrain else previous.trained_on  # type: ignore[union-attr]
    manifest = write_compacted(layout, focus, segment, covered, config.codec, trained_on)
    seconds = time.perf_counter() - start
    log.info("compacted %s: %d vectors, %d new batches", focus.key, total, len(batches))
    return CompactionOutcome(focus, manifest, len(batches), new_vectors, retrain, seconds,
                             "retrained" if retrain else "extended")  # fmt: skip


def _trained(
    layout: Layout, focus: Focus, previous: Manifest | None,
    parts: list[tuple[Attributes, np.ndarray]], config: CompactionConfig,
) -> Segment:  # fmt: skip
    """A new IVF over every row: the covered batches' shards are read again (exact vectors)."""
    if previous is not None:
        parts[:0] = [batch_vectors(layout, focus, b) for b in previous.batches]
    attrs = Attributes.concat([a for a, _ in parts])
    vectors = np.concatenate([v for _, v in parts]).astype(np.float32, copy=False)
    parts.clear()  # the caller's list too: one copy of the vectors while training
    nlist = config.nlist or default_nlist(len(vectors))
    return Segment(build_ivf(vectors, nlist, config.codec), attrs)


def _extended(segment: Segment, parts: list[tuple[Attributes, np.ndarray]]) -> Segment:
    """The previous generation's IVF with the new rows added to its trained lists."""
    index: faiss.Index = segment.index
    for _, vectors in parts:
        if len(vectors):
            index.add(np.ascontiguousarray(vectors, np.float32))
    return Segment(index, Attributes.concat([segment.attrs, *(a for a, _ in parts)]))
