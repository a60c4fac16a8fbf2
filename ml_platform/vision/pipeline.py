"""Embed many images with decoding and preprocessing overlapped with inference.

While the model runs on batch k, a background thread loads (decode, crop) and preprocesses
batch k+1; PIL and torch both release the GIL, so the two overlap on separate cores.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, TypeVar, cast

import numpy as np
from PIL import Image

from ml_platform.vision.decode import ImageDecodeError, load_rgb
from ml_platform.vision.embedders.base import Embedder

log = logging.getLogger(__name__)

T = TypeVar("T")
Loader = Callable[[T], Image.Image | None]
DEFAULT_DRAFT_SIZE = (256, 256)
# Per-item failures that skip the item; anything else is a bug and propagates.
ITEM_ERRORS = (ImageDecodeError, OSError)
NO_DERIVATIVE = "no such derivative"  # the reason given when the loader returns None


@dataclass(frozen=True)
class Skipped(Generic[T]):
    """An item that was not embedded, and why (no such derivative, undecodable file, ...)."""

    item: T
    reason: str


@dataclass(frozen=True)
class EmbeddedBatch(Generic[T]):
    """Embedded items in input order with their vectors ([len(items), dim] float32)."""

    items: tuple[T, ...]
    vectors: np.ndarray
    skipped: tuple[Skipped[T], ...] = ()


@dataclass(frozen=True)
class _Prepared(Generic[T]):
    items: tuple[T, ...]
    pixels: np.ndarray | None
    skipped: tuple[Skipped[T], ...]


def path_loader(
    draft_size: tuple[int, int] | None = DEFAULT_DRAFT_SIZE,
) -> Callable[[Path], Image.Image]:
    """Load a stored image as oriented RGB; JPEGs decode at a reduced scale >= ``draft_size``."""

    def load(path: Path) -> Image.Image:
        return load_rgb(path, draft_size=draft_size)

    return load


def draft_size_for(embedder: Embedder) -> tuple[int, int]:
    """The JPEG draft size that loses nothing for ``embedder``'s preprocessing."""
    spec = getattr(embedder, "spec", None)
    size = getattr(spec, "draft_size", None)
    return cast(tuple[int, int], size) if size is not None else DEFAULT_DRAFT_SIZE


def iter_embedded_batches(
    items: Iterable[T],
    embedder: Embedder,
    *,
    load: Loader[T] | None = None,
    batch_size: int | None = None,
    prefetch: bool = True,
) -> Iterator[EmbeddedBatch[T]]:
    """Embed ``items`` batch by batch; ``load`` turns an item into an image (None: skip it).

    Without ``load`` the items must be paths of stored images. Items whose load returns
    None, or raises ImageDecodeError/OSError, are reported in ``skipped`` with the reason.
    """
    loader = load if load is not None else cast(Loader[T], path_loader(draft_size_for(embedder)))
    size = batch_size or int(getattr(embedder, "batch_size", 32))
    batches = _chunks(items, size)
    if not prefetch:
        for chunk in batches:
            yield _run(embedder, _prepare(chunk, loader, embedder))
        return
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="embed-prefetch") as pool:
        pending = _submit(pool, next(batches, None), loader, embedder)
        while pending is not None:
            prepared = pending.result()
            pending = _submit(pool, next(batches, None), loader, embedder)
            yield _run(embedder, prepared)


def embed_images(
    items: Iterable[T],
    embedder: Embedder,
    *,
    load: Loader[T] | None = None,
    batch_size: int | None = None,
    prefetch: bool = True,
) -> EmbeddedBatch[T]:
    """All of ``iter_embedded_batches`` in one result."""
    parts = list(
        iter_embedded_batches(items, embedder, load=load, batch_size=batch_size, prefetch=prefetch)
    )
    vectors = [p.vectors for p in parts if len(p.items)]
    return EmbeddedBatch(
        items=tuple(i for p in parts for i in p.items),
        vectors=np.concatenate(vectors) if vectors else np.zeros((0, embedder.dim), np.float32),
        skipped=tuple(s for p in parts for s in p.skipped),
    )


def _chunks(items: Iterable[T], size: int) -> Iterator[tuple[T, ...]]:
    iterator = iter(items)
    while chunk := tuple(itertools.islice(iterator, size)):
        yield chunk


def _submit(
    pool: ThreadPoolExecutor, chunk: tuple[T, ...] | None, loader: Loader[T], embedder: Embedder
) -> Future[_Prepared[T]] | None:
    return None if chunk is None else pool.submit(_prepare, chunk, loader, embedder)


def _prepare(chunk: tuple[T, ...], loader: Loader[T], embedder: Embedder) -> _Prepared[T]:
    kept: list[T] = []
    images: list[Image.Image] = []
    skipped: list[Skipped[T]] = []
    for item in chunk:
        try:
            image = loader(item)
        except ITEM_ERRORS as exc:
            log.warning("skipping %s: %s", item, exc)
            skipped.append(Skipped(item, f"{type(exc).__name__}: {exc}"))
            continue
        if image is None:
            skipped.append(Skipped(item, NO_DERIVATIVE))
            continue
        kept.append(item)
        images.append(image)
    pixels = embedder.preprocess(images) if images else None
    return _Prepared(tuple(kept), pixels, tuple(skipped))


def _run(embedder: Embedder, prepared: _Prepared[T]) -> EmbeddedBatch[T]:
    if prepared.pixels is None:
        empty = np.zeros((0, embedder.dim), dtype=np.float32)
        return EmbeddedBatch(prepared.items, empty, prepared.skipped)
    vectors = embedder.embed_preprocessed(prepared.pixels)
    return EmbeddedBatch(prepared.items, vectors, prepared.skipped)
