"""Filtered cosine search over index segments: a compacted IVF index plus exact tail shards.

A `Segment` is a faiss index whose ids are row positions (0..n-1) and an `Attributes` table
of the same rows (image id, pet, creation time, batch). A filter is a boolean mask over the
rows, computed from the attribute columns (never from the vectors) and handed to faiss as an
`IDSelectorBitmap`, so the vectors that fail it are skipped during the scan, not afterwards.
An IVF segment widens `nprobe` in proportion to how selective the mask is, so a narrow
filter still finds its k results. No file I/O here (the store persists segments).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from ml_platform.learning.ann_index import FloatArray, IdArray, l2_normalise

if TYPE_CHECKING:
    import faiss  # imported where used (see ann_index)

EXACT_BELOW = 20_000  # a filter keeping at most this many rows is searched exactly over them
NO_PET = -1
NO_TIME = np.iinfo(np.int64).min
CODECS = ("sq8", "fp16", "flat")  # faiss factory: SQ8, SQfp16, Flat


@dataclass(frozen=True)
class Attributes:
    """Per row: image id, pet id (NO_PET), creation time in epoch seconds (NO_TIME), batch."""

    ids: IdArray
    pets: IdArray
    created: IdArray
    batches: NDArray[np.object_]

    def __len__(self) -> int:
        return len(self.ids)

    @cached_property
    def batch_rows(self) -> dict[str, IdArray]:
        """Row positions per batch, computed once (a batch filter then costs its own rows)."""
        names, inverse = np.unique(self.batches.astype(str), return_inverse=True)
        order = np.argsort(inverse, kind="stable")
        bounds = np.searchsorted(inverse[order], np.arange(len(names) + 1))
        return {str(n): order[bounds[i] : bounds[i + 1]] for i, n in enumerate(names)}

    @classmethod
    def concat(cls, parts: Sequence[Attributes]) -> Attributes:
        if not parts:
            empty = np.zeros(0, np.int64)
            return cls(empty, empty, empty, np.zeros(0, object))
        return cls(*(np.concatenate([getattr(p, f) for p in parts]) for f in _FIELDS))


_FIELDS = ("ids", "pets", "created", "batches")


@dataclass(frozen=True)
class RowFilter:
    """Which rows may be returned; None fields do not filter."""

    pet_ids: frozenset[int] | None = None
    batches: frozenset[str] | None = None
    created_after: int | None = None
    created_before: int | None = None
    allowed_ids: IdArray | None = None
    denied_ids: IdArray | None = None

    @property
    def empty(self) -> bool:
        return all(getattr(self, f) is None for f in self.__dataclass_fields__)

    def mask(self, attrs: Attributes) -> NDArray[np.bool_]:
        keep = np.ones(len(attrs), bool)
        if self.pet_ids is not None:
            keep &= np.isin(attrs.pets, np.fromiter(self.pet_ids, np.int64))
        if self.batches is not None:
            in_batches = np.zeros(len(attrs), bool)
            for batch in self.batches:
                in_batches[attrs.batch_rows.get(batch, np.zeros(0, np.int64))] = True
            keep &= in_batches
        if self.created_after is not None:
            keep &= (attrs.created != NO_TIME) & (attrs.created >= self.created_after)
        if self.created_before is not None:
            keep &= (attrs.created != NO_TIME) & (attrs.created < self.created_before)
        if self.allowed_ids is not None:
            keep &= np.isin(attrs.ids, self.allowed_ids)
        if self.denied_ids is not None:
            keep &= ~np.isin(attrs.ids, self.denied_ids)
        return keep


@dataclass(frozen=True)
class Segment:
    """A faiss index over row positions and the attributes of those rows."""

    index: faiss.Index
    attrs: Attributes

    def __post_init__(self) -> None:
        if self.index.ntotal != len(self.attrs):
            raise ValueError(
                f"segment index holds {self.index.ntotal} vectors for {len(self.attrs)} "
                "attribute rows; they must pair up (rebuild the segment)"
            )

    @cached_property
    def _sorted_ids(self) -> tuple[IdArray, IdArray]:
        order = np.argsort(self.attrs.ids, kind="stable")
        return self.attrs.ids[order], order

    def vector_of(self, image_id: int) -> FloatArray | None:
        """The stored (normalised; for IVF, decoded) vector of an image, None if absent."""
        ids, order = self._sorted_ids
        pos = int(np.searchsorted(ids, image_id))
        if pos >= len(ids) or ids[pos] != image_id:
            return None
        ivf = _ivf(self.index)
        if ivf is not None and ivf.direct_map.no():
            ivf.make_direct_map()  # 8 bytes a row; done once, at load, by `with_direct_map`
        return np.asarray(self.index.reconstruct(int(order[pos])), np.float32).reshape(1, -1)

    def with_direct_map(self) -> Segment:
        """This segment, able to give back rows by position (IVF keeps a row -> list map)."""
        ivf = _ivf(self.index)
        if ivf is not None and ivf.direct_map.no():
            ivf.make_direct_map()
        return self

    @property
    def nlist(self) -> int | None:
        ivf = _ivf(self.index)
        return None if ivf is None else int(ivf.nlist)

    def search(
        self, queries: FloatArray, k: int, mask: NDArray[np.bool_] | None, nprobe: int | None
    ) -> tuple[IdArray, FloatArray]:
        """Image ids [m, k'] and cosines [m, k'] (-1 / -inf padding), best first."""
        import faiss

        m = len(queries)
        selected = len(self.attrs) if mask is None else int(mask.sum())
        k_eff = min(k, selected)
        if k_eff < 1:
            return np.full((m, 0), -1, np.int64), np.zeros((m, 0), np.float32)
        if mask is not None and selected <= EXACT_BELOW:
            return self._exact(queries, k_eff, np.flatnonzero(mask))
        bits = None if mask is None else np.packbits(mask, bitorder="little")
        selector = (
            None if bits is None else faiss.IDSelectorBitmap(len(self.attrs), faiss.swig_ptr(bits))
        )
        params = self._params(selector, selected, nprobe)
        # `bits` and `selector` stay referenced here until faiss is done with them
        sims, rows = self.index.search(queries, k_eff, params=params)
        ids = np.where(rows >= 0, self.attrs.ids[np.maximum(rows, 0)], -1)
        return ids.astype(np.int64), np.where(rows >= 0, sims, -np.inf).astype(np.float32)

    def _exact(self, queries: FloatArray, k: int, rows: IdArray) -> tuple[IdArray, FloatArray]:
        """Brute force over the kept rows only (a narrow filter: no list is worth probing)."""
        self.with_direct_map()
        vectors = self.index.reconstruct_batch(rows.astype(np.int64))
        sims = queries @ vectors.T
        top = np.argsort(-sims, axis=1, kind="stable")[:, :k]
        ids = self.attrs.ids[rows[top]]
        return ids.astype(np.int64), np.take_along_axis(sims, top, axis=1).astype(np.float32)

    def _params(
        self, selector: faiss.IDSelector | None, selected: int, nprobe: int | None
    ) -> faiss.SearchParameters | None:
        """The selector (which the caller keeps alive) and, for IVF, an nprobe (None: the
        default for the segment's lists) widened by the share of rows the filter keeps."""
        import faiss

        nlist = self.nlist
        if nlist is None and selector is None:
            return None
        params = faiss.SearchParameters()
        if nlist is not None:
            params = faiss.SearchParametersIVF()
            share = selected / max(len(self.attrs), 1)
            base = default_nprobe(nlist) if nprobe is None else nprobe
            params.nprobe = min(nlist, math.ceil(base / max(share, 1.0 / nlist)))
        if selector is not None:
            params.sel = selector
        return params


def search_segments(
    segments: Sequence[Segment],
    query: FloatArray,
    k: int,
    row_filter: RowFilter,
    nprobe: int | None = None,
) -> tuple[IdArray, FloatArray]:
    """The k best image ids and cosines over every segment for one normalised query [1, d]."""
    found_ids, found_sims = [], []
    for segment in segments:
        mask = None if row_filter.empty else row_filter.mask(segment.attrs)
        ids, sims = segment.search(query, k, mask, nprobe)
        found_ids.append(ids[0])
        found_sims.append(sims[0])
    if not found_ids:
        return np.zeros(0, np.int64), np.zeros(0, np.float32)
    ids, sims = np.concatenate(found_ids), np.concatenate(found_sims)
    keep = ids >= 0
    ids, sims = ids[keep], sims[keep]
    order = np.lexsort((ids, -sims))[:k]  # best first; ties by id, so replicas agree
    return ids[order], sims[order]


def flat_segment(vectors: FloatArray, attrs: Attributes) -> Segment:
    """An exact segment (what a batch's shard is searched with)."""
    import faiss

    index = faiss.IndexFlatIP(vectors.shape[1])
    if len(vectors):
        index.add(l2_normalise(vectors))
    return Segment(index, attrs)


def build_ivf(
    vectors: FloatArray, nlist: int, codec: str = "sq8", seed: int = 0, *,
    train_per_list: int = 40, niter: int = 10,
) -> faiss.Index:  # fmt: skip
    """An inverted-file index over normalised `vectors` with ids 0..n-1: k-means (`niter`
    rounds) on a sample of `train_per_list` points per list, then every vector added.
    `codec` stores each vector as 8-bit scalars (sq8, a quarter of float32), float16 (fp16)
    or float32 (flat)."""
    import faiss

    if codec not in CODECS:
        raise ValueError(f"unknown codec {codec!r}; known: {', '.join(CODECS)}")
    n, dim = vectors.shape
    if n < nlist:
        raise ValueError(f"{n} vectors cannot train {nlist} lists; lower nlist or wait")
    factory = {"sq8": "SQ8", "fp16": "SQfp16", "flat": "Flat"}[codec]
    index = faiss.index_factory(dim, f"IVF{nlist},{factory}", faiss.METRIC_INNER_PRODUCT)
    ivf = faiss.extract_index_ivf(index)
    ivf.cp.niter, ivf.cp.seed = niter, seed
    ivf.cp.max_points_per_centroid = train_per_list
    sample = np.random.default_rng(seed).permutation(n)[: nlist * train_per_list]
    index.train(l2_normalise(vectors[np.sort(sample)]))
    for start in range(0, n, 100_000):
        index.add(l2_normalise(vectors[start : start + 100_000]))
    return index


def default_nlist(n: int) -> int:
    """About 4 sqrt(n) lists (1M vectors: 4096), at least 1."""
    return int(max(1, min(n // 64, 2 ** round(math.log2(4 * math.sqrt(max(n, 1)))))))


def default_nprobe(nlist: int) -> int:
    """Lists probed per query: a 16th of them, between 32 and 512 (1M vectors: 256 of 4096).
    The benchmark (benchmarks/search.py) sweeps it against recall."""
    return min(nlist, max(32, min(512, nlist // 16)))


def _ivf(index: faiss.Index) -> faiss.IndexIVF | None:
    import faiss

    try:
        return faiss.extract_index_ivf(index)
    except RuntimeError:
        return None


def segment_near_duplicates(
    segments: Sequence[Segment], ids: IdArray, vectors: FloatArray, threshold: float, k: int = 10
) -> list[tuple[int, int, float]]:
    """Pairs (a, b, cosine) with a < b and cosine >= `threshold` between the query images and
    their `k` nearest rows in each segment; self-matches left out. Most similar first."""
    id_arr = np.asarray(ids, np.int64).reshape(-1)
    x = l2_normalise(vectors)
    pairs: dict[tuple[int, int], float] = {}
    for segment in segments:
        found, sims = segment.search(x, k + 1, None, None)
        for query, row_ids, row_sims in zip(id_arr.tolist(), found, sims, strict=True):
            for other, sim in zip(row_ids.tolist(), row_sims.tolist(), strict=True):
                if other != query and other >= 0 and sim >= threshold:
                    pairs[(min(query, other), max(query, other))] = float(sim)
    return sorted(((a, b, s) for (a, b), s in pairs.items()), key=lambda p: (-p[2], p[0], p[1]))
