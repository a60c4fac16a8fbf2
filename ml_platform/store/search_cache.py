"""The search index of each focus held in memory, refreshed from the Store incrementally.

A process (a serving replica, the CLI, a benchmark) keeps per focus: the newest compacted
generation, and the exact rows of every batch shard that generation does not cover, merged
into one flat segment. A refresh (at most every `refresh_s` seconds, on the next search)
lists the focus's objects, reads only what is new, and drops the shards a new generation
covers. Everything comes from the Store, so a replica needs no local home.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from ml_platform.domain import Focus
from ml_platform.learning.ann_search import Attributes, Segment, flat_segment
from ml_platform.store.layout import Layout
from ml_platform.store.search_index import (
    Manifest,
    batch_vectors,
    latest_manifest,
    read_compacted,
    uncovered_batches,
)

log = logging.getLogger(__name__)


@dataclass
class _FocusIndex:
    manifest: Manifest | None = None
    compacted: Segment | None = None
    tail: dict[str, tuple[Attributes, np.ndarray]] = field(default_factory=dict)
    tail_segment: Segment | None = None
    checked_at: float = float("-inf")

    @property
    def segments(self) -> list[Segment]:
        return [s for s in (self.compacted, self.tail_segment) if s is not None]


class IndexCache:
    """Segments per focus, shared by the threads of one process."""

    def __init__(
        self, layout: Layout, refresh_s: float = 5.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.layout = layout
        self.refresh_s = refresh_s
        self._clock = clock
        self._lock = threading.Lock()
        self._foci: dict[Focus, _FocusIndex] = {}

    def segments(self, focus: Focus) -> list[Segment]:
        """The focus's segments, refreshed when the last look is older than `refresh_s`."""
        with self._lock:
            state = self._foci.setdefault(focus, _FocusIndex())
            if self._clock() - state.checked_at >= self.refresh_s:
                self._refresh(focus, state)
                state.checked_at = self._clock()
            return state.segments

    def describe(self, focus: Focus) -> dict[str, object]:
        """What is loaded for `focus` (for timings and the benchmark)."""
        state = self._foci.get(focus, _FocusIndex())
        return {
            "compacted": state.manifest.generation if state.manifest else None,
            "compacted_vectors": len(state.compacted.attrs) if state.compacted else 0,
            "tail_batches": len(state.tail),
            "tail_vectors": len(state.tail_segment.attrs) if state.tail_segment else 0,
        }

    def _refresh(self, focus: Focus, state: _FocusIndex) -> None:
        manifest = latest_manifest(self.layout, focus)
        if manifest != state.manifest:
            log.info("loading compacted %s index %s", focus.key, manifest and manifest.generation)
            state.compacted = (
                None if manifest is None else read_compacted(self.layout, focus, manifest)
            )
            state.manifest = manifest
        wanted = uncovered_batches(self.layout, focus, manifest)
        if set(wanted) == set(state.tail):
            return
        tail = {b: state.tail.get(b) or batch_vectors(self.layout, focus, b) for b in wanted}
        state.tail = tail
        state.tail_segment = _merged(list(tail.values()))


def _merged(parts: list[tuple[Attributes, np.ndarray]]) -> Segment | None:
    parts = [p for p in parts if len(p[0])]
    if not parts:
        return None
    vectors = np.concatenate([v for _, v in parts]).astype(np.float32, copy=False)
    return flat_segment(vectors, Attributes.concat([a for a, _ in parts]))
