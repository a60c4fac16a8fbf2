"""Cosine nearest-neighbour search over image embeddings: one index per embedding type.

`AnnIndex` wraps a faiss ``IndexIDMap2(IndexFlatIP)`` over L2-normalised vectors, so inner
product is cosine similarity and results carry image ids. It grows by `add` (ids already
present are skipped), never by a rebuild. Exact search: a flat index answers 100k x 512-d
queries in milliseconds; swap in an IVF/HNSW index behind the same class when that stops
being true. `to_bytes` / `from_bytes` serialise it; the Store persists those bytes
(`ml_platform.store.ann`), this module does no file I/O.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import ArrayLike, NDArray

FloatArray = NDArray[np.float32]
IdArray = NDArray[np.int64]

if TYPE_CHECKING:
    import faiss  # imported where used: a process that never searches never loads it


def l2_normalise(embeddings: ArrayLike) -> FloatArray:
    """Rows scaled to unit length, as a new float32 array; zero or non-finite rows are errors."""
    x = np.array(embeddings, dtype=np.float32, copy=True)
    if x.ndim != 2:
        raise ValueError(f"embeddings must be 2-D [n, d], got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError("embeddings contain NaN or infinite values; fix the embedder output")
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    zero = int(np.sum(norms == 0))
    if zero:
        raise ValueError(f"{zero} embeddings have zero norm and no direction; drop them first")
    x /= norms
    return x


class AnnIndex:
    """Image ids and their normalised embeddings, searchable by cosine similarity."""

    def __init__(self, index: faiss.IndexIDMap2) -> None:
        import faiss

        self._index = index
        self._ids: set[int] = set(faiss.vector_to_array(index.id_map).tolist())

    @classmethod
    def create(cls, dim: int) -> AnnIndex:
        import faiss

        if dim < 1:
            raise ValueError(f"index dimension must be >= 1, got {dim}")
        return cls(faiss.IndexIDMap2(faiss.IndexFlatIP(dim)))

    @classmethod
    def from_bytes(cls, data: bytes, source: str = "these bytes") -> AnnIndex:
        """An index serialised by `to_bytes`; `source` names where the bytes came from."""
        import faiss

        index = faiss.deserialize_index(np.frombuffer(data, dtype=np.uint8))
        if not isinstance(index, faiss.IndexIDMap2):
            raise ValueError(f"{source} holds a {type(index).__name__}, not an IndexIDMap2")
        return cls(index)

    def to_bytes(self) -> bytes:
        import faiss

        return bytes(faiss.serialize_index(self._index).tobytes())

    def merge(self, other: AnnIndex) -> int:
        """Add `other`'s rows whose ids are not yet present; returns how many."""
        if other.dim != self.dim:
            raise ValueError(f"cannot merge a d={other.dim} index into a d={self.dim} one")
        ids, vectors = other.rows()
        return self.add(ids, vectors) if len(ids) else 0

    def rows(self) -> tuple[IdArray, FloatArray]:
        """Every stored (id, normalised vector), in insertion order."""
        import faiss

        ids = faiss.vector_to_array(self._index.id_map).astype(np.int64)
        if not len(ids):
            return ids, np.zeros((0, self.dim), np.float32)
        return ids, np.asarray(self._index.index.reconstruct_n(0, len(ids)), np.float32)

    @property
    def dim(self) -> int:
        return int(self._index.d)

    def __len__(self) -> int:
        return int(self._index.ntotal)

    def __contains__(self, image_id: object) -> bool:
        return image_id in self._ids

    def add(self, ids: ArrayLike, embeddings: ArrayLike) -> int:
        """Add the rows whose ids are not yet present (first occurrence wins); returns how many."""
        id_arr = np.asarray(ids, dtype=np.int64).reshape(-1)
        x = self._checked(embeddings)
        if len(id_arr) != len(x):
            raise ValueError(f"{len(id_arr)} ids for {len(x)} embeddings; they must pair up")
        _, first = np.unique(id_arr, return_index=True)
        keep = np.array([i for i in sorted(first) if int(id_arr[i]) not in self._ids], dtype=int)
        if len(keep):
            self._index.add_with_ids(x[keep], id_arr[keep])
            self._ids.update(int(i) for i in id_arr[keep])
        return len(keep)

    def search(self, embeddings: ArrayLike, k: int) -> tuple[IdArray, FloatArray]:
        """The `k` most similar stored images per query row: ids [m, k'] and cosine [m, k'],
        best first, with k' = min(k, len(self))."""
        x = self._checked(embeddings)
        k_eff = min(k, len(self))
        if k_eff < 1:
            return np.zeros((len(x), 0), np.int64), np.zeros((len(x), 0), np.float32)
        sims, ids = self._index.search(x, k_eff)
        return ids.astype(np.int64), sims.astype(np.float32)

    def _checked(self, embeddings: ArrayLike) -> FloatArray:
        x = l2_normalise(embeddings)
        if x.shape[1] != self.dim:
            raise ValueError(f"embeddings have d={x.shape[1]}; this index holds d={self.dim}")
        return x


def near_duplicates(
    index: AnnIndex, ids: ArrayLike, embeddings: ArrayLike, threshold: float, k: int = 10
) -> list[tuple[int, int, float]]:
    """Pairs (a, b, cosine) with a < b, cosine >= `threshold`, between the query images and
    their `k` nearest indexed neighbours; self-matches are left out. Most similar first."""
    id_arr = np.asarray(ids, dtype=np.int64).reshape(-1)
    found_ids, sims = index.search(embeddings, k + 1)
    if len(id_arr) != len(found_ids):
        raise ValueError(f"{len(id_arr)} ids for {len(found_ids)} embeddings; they must pair up")
    pairs: dict[tuple[int, int], float] = {}
    for query, row_ids, row_sims in zip(id_arr.tolist(), found_ids, sims, strict=True):
        for other, sim in zip(row_ids.tolist(), row_sims.tolist(), strict=True):
            if other != query and other >= 0 and sim >= threshold:
                pairs[(min(query, other), max(query, other))] = float(sim)
    return sorted(((a, b, s) for (a, b), s in pairs.items()), key=lambda p: (-p[2], p[0], p[1]))
