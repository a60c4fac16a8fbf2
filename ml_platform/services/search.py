"""Search the catalog: the images nearest to a text, an example image, a stored image or a
collection, among the indexed images of one focus, with filters.

One query kind per search: `text` (the focus's text tower), `image` (bytes, embedded with
the focus's embedder and crop), `image_id` (its stored vector; the image itself is left out
of its results) or `collection_id` (its champion's linear direction, else its members'
centroid). Filters become a row mask over the index's attribute columns and the collection
labels (`ml_platform.learning.ann_search`), applied inside the scan. The serving route and
`ml-platform search` call `search`, passing how to embed text and images (`Encoders`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

import numpy as np

from ml_platform.domain import Focus
from ml_platform.learning.ann_index import FloatArray, l2_normalise
from ml_platform.learning.ann_search import RowFilter, search_segments
from ml_platform.services.search_vectors import Encoded as Encoded
from ml_platform.services.search_vectors import SearchError as SearchError
from ml_platform.services.search_vectors import centroid, stored_vector
from ml_platform.store.collections_file import has_collections, read_collections
from ml_platform.store.label_sets import labelled_ids
from ml_platform.store.layout import Layout
from ml_platform.store.search_cache import IndexCache

MAX_LIMIT = 200
DEFAULT_LIMIT = 20


class QueryKind(StrEnum):
    TEXT = "text"
    IMAGE = "image"
    IMAGE_ID = "image_id"
    COLLECTION = "collection_id"


@dataclass(frozen=True)
class Query:
    """Exactly one of the fields is set (checked by `kind`)."""

    text: str | None = None
    image: bytes | None = None
    image_id: int | None = None
    collection_id: int | None = None

    @property
    def kind(self) -> QueryKind:
        values = {
            QueryKind.TEXT: self.text,
            QueryKind.IMAGE: self.image,
            QueryKind.IMAGE_ID: self.image_id,
            QueryKind.COLLECTION: self.collection_id,
        }
        given = [kind for kind, value in values.items() if value is not None]  # fmt: skip
        if len(given) != 1:
            named = ", ".join(k.value for k in given) or "none"
            raise SearchError(
                f"send exactly one query: text, an image, image_id or collection_id (got {named})"
            )
        return given[0]


@dataclass(frozen=True)
class Filters:
    pet_id: int | None = None
    collection_id: int | None = None  # members only
    exclude_collection_id: int | None = None  # neither members nor rejected
    batch: str | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None


@dataclass(frozen=True)
class Encoders:
    """How this caller embeds text and images for a focus, and reads a champion's direction:
    each raises SearchError when it cannot (no text tower for the focus: a 422 naming it)."""

    text: Callable[[Focus, str], Encoded]
    image: Callable[[Focus, bytes], Encoded]
    champion: Callable[[int], tuple[Focus, Encoded | None] | None]


@dataclass(frozen=True)
class Hit:
    image_id: int
    score: float


@dataclass(frozen=True)
class SearchResult:
    focus: Focus
    query: dict[str, object]
    hits: list[Hit]
    timings_ms: dict[str, float]


def search(
    layout: Layout, indexes: IndexCache, encoders: Encoders, query: Query, *,
    focus: Focus | None = None, default_focus: Focus, limit: int = DEFAULT_LIMIT,
    filters: Filters = Filters(), nprobe: int | None = None,
) -> SearchResult:  # fmt: skip
    """The `limit` images most similar to `query` that pass `filters`, best first."""
    clock = _Clock()
    kind = query.kind
    if not 1 <= limit <= MAX_LIMIT:
        raise SearchError(f"limit must be between 1 and {MAX_LIMIT}, got {limit}")
    with clock("query"):
        chosen, encoded = _encode(
            layout, indexes, encoders, query, kind, focus, filters, default_focus
        )
    with clock("index"):
        segments = indexes.segments(chosen)
    if not segments:
        raise SearchError(
            f"focus {chosen.key} has no search index yet: materialize similarity_index for a "
            "batch embedded with it", 404,
        )  # fmt: skip
    with clock("filter"):
        row_filter = _row_filter(layout, filters)
    with clock("search"):
        vector = _checked(encoded.vector, segments[0].index.d, chosen)
        extra = 1 if kind is QueryKind.IMAGE_ID else 0
        ids, sims = search_segments(segments, vector, limit + extra, row_filter, nprobe)
    hits = [Hit(int(i), round(float(s), 6)) for i, s in zip(ids, sims, strict=True)
            if i != query.image_id][:limit]  # fmt: skip
    described = {"kind": kind.value, **_described(query, kind), **encoded.details}
    return SearchResult(chosen, described, hits, clock.timings)


def resolve_focus(
    layout: Layout, query_collection: int | None, filters: Filters, default: Focus
) -> Focus:
    """The collection's focus (the query's, else the filter's), else `default`."""
    cid = query_collection if query_collection is not None else filters.collection_id
    if cid is None or not has_collections(layout):
        return default
    found = {c.id: c.focus for c in read_collections(layout)}
    return found.get(cid) or default


def parse_focus(key: str) -> Focus:
    try:
        return Focus.from_key(key)
    except ValueError as exc:
        raise SearchError(
            f"focus {key!r} is not <derivative>__<embedding type>, e.g. "
            "whole_image__embed_clip_vit_b_32"
        ) from exc


def _encode(
    layout: Layout, indexes: IndexCache, encoders: Encoders, query: Query, kind: QueryKind,
    focus: Focus | None, filters: Filters, default: Focus,
) -> tuple[Focus, Encoded]:  # fmt: skip
    if kind is QueryKind.COLLECTION:
        assert query.collection_id is not None
        return _collection_query(layout, encoders, query.collection_id, focus, filters, default)
    chosen = focus or resolve_focus(layout, None, filters, default)
    if kind is QueryKind.TEXT:
        assert query.text is not None
        if not query.text.strip():
            raise SearchError("text is empty; say what to look for")
        return chosen, encoders.text(chosen, query.text)
    if kind is QueryKind.IMAGE:
        assert query.image is not None
        return chosen, encoders.image(chosen, query.image)
    assert query.image_id is not None
    return chosen, Encoded(stored_vector(layout, chosen, query.image_id, indexes))


def _collection_query(
    layout: Layout, encoders: Encoders, cid: int, focus: Focus | None, filters: Filters,
    default: Focus,
) -> tuple[Focus, Encoded]:  # fmt: skip
    champion = encoders.champion(cid)
    if champion is not None and champion[1] is not None and focus in (None, champion[0]):
        return champion[0], champion[1]
    chosen = focus or (champion[0] if champion else resolve_focus(layout, cid, filters, default))
    return chosen, centroid(layout, chosen, cid)


def _row_filter(layout: Layout, filters: Filters) -> RowFilter:
    allowed = denied = None
    if filters.collection_id is not None:
        allowed, _ = labelled_ids(layout.metadata(), filters.collection_id)
    if filters.exclude_collection_id is not None:
        members, rejected = labelled_ids(layout.metadata(), filters.exclude_collection_id)
        denied = np.concatenate([members, rejected])
    return RowFilter(
        pet_ids=None if filters.pet_id is None else frozenset({filters.pet_id}),
        batches=None if filters.batch is None else frozenset({filters.batch}),
        created_after=_seconds(filters.created_after),
        created_before=_seconds(filters.created_before),
        allowed_ids=allowed,
        denied_ids=denied,
    )


def _seconds(when: datetime | None) -> int | None:
    if when is None:
        return None
    if when.tzinfo is None:
        raise SearchError(f"{when.isoformat()} has no time zone; add one (e.g. Z or +00:00)")
    return int(when.timestamp())


def _checked(vector: FloatArray, dim: int, focus: Focus) -> FloatArray:
    x = np.asarray(vector, np.float32).reshape(1, -1)
    if x.shape[1] != dim:
        raise SearchError(
            f"the query vector is {x.shape[1]}-d but the {focus.key} index holds {dim}-d "
            "vectors; the query was embedded with another model than the indexed images", 409,
        )  # fmt: skip
    try:
        return l2_normalise(x)
    except ValueError as exc:
        raise SearchError(f"the query has no direction: {exc}") from exc


def _described(query: Query, kind: QueryKind) -> dict[str, object]:
    if kind is QueryKind.IMAGE:
        assert query.image is not None
        return {"image_bytes": len(query.image)}
    value = getattr(query, kind.value)
    return {kind.value: value}


class _Clock:
    def __init__(self) -> None:
        self.timings: dict[str, float] = {}

    @contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        yield
        self.timings[f"{name}_ms"] = round((time.perf_counter() - start) * 1000, 3)
