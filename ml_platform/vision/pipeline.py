"""Embed many images with decoding and preprocessing overlapped with inference.

While the model runs on batch k, batch k+1 is loaded (JPEG draft decode at the size the
model needs, crop) and preprocessed, by ``loader_threads`` threads where the machine has
the cores for it; PIL, torch and onnxruntime release the GIL, so the stages overlap. Each
image is normalised straight into its row of one contiguous float32 batch buffer, which
goes to the model as it is (no copies between preprocessing and the session).
"""

from __future__ import annotations

import itertools
import logging
import os
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, TypedDict, TypeVar, Unpack, cast

import numpy as np
from PIL import Image

from ml_platform.vision.decode import ImageDecodeError, load_rgb
from ml_platform.vision.embedders.base import Embedder
from ml_platform.vision.preprocess import PreprocessSpec, batch_shape, preprocess_into

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


def default_loader_threads() -> int:
    """One loader per four cores (at least one, at most four): decode keeps up without
    taking the cores inference runs on."""
    return max(1, min(4, (os.cpu_count() or 1) // 4))


def iter_embedded_batches(
    items: Iterable[T],
    embedder: Embedder,
    *,
    load: Loader[T] | None = None,
    batch_size: int | None = None,
    prefetch: bool = True,
    loader_threads: int | None = None,
) -> Iterator[EmbeddedBatch[T]]:
    """Embed ``items`` batch by batch; ``load`` turns an item into an image (None: skip it).

    Without ``load`` the items must be paths of stored images. Items whose load returns
    None, or raises ImageDecodeError/OSError, are reported in ``skipped`` with the reason.
    """
    loader = load if load is not None else cast(Loader[T], path_loader(draft_size_for(embedder)))
    size = batch_size or int(getattr(embedder, "batch_size", 32))
    batches = _chunks(items, size)
    threads = loader_threads or default_loader_threads()
    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="embed-load") as workers:
        preparer = _Preparer(loader, embedder, workers if threads > 1 else None)
        if not prefetch:
            for chunk in batches:
                yield _run(embedder, preparer(chunk))
            return
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="embed-prefetch") as ahead:
            pending = _submit(ahead, next(batches, None), preparer)
            while pending is not None:
                prepared = pending.result()
                pending = _submit(ahead, next(batches, None), preparer)
                yield _run(embedder, prepared)


class BatchOptions(TypedDict, Generic[T], total=False):
    """The keyword arguments of `iter_embedded_batches`, for callers that pass them on."""

    load: Loader[T] | None
    batch_size: int | None
    prefetch: bool
    loader_threads: int | None


def embed_images(
    items: Iterable[T], embedder: Embedder, **options: Unpack[BatchOptions[T]]
) -> EmbeddedBatch[T]:
    """All of ``iter_embedded_batches`` in one result."""
    parts = list(iter_embedded_batches(items, embedder, **options))
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
    pool: ThreadPoolExecutor, chunk: tuple[T, ...] | None, preparer: _Preparer[T]
) -> Future[_Prepared[T]] | None:
    return None if chunk is None else pool.submit(preparer, chunk)


class _Loaded(Generic[T]):
    """One item after loading: its image, or why it has none."""

    __slots__ = ("item", "ok", "skipped")

    def __init__(self, item: T, ok: bool, skipped: Skipped[T] | None) -> None:
        self.item, self.ok, self.skipped = item, ok, skipped


class _Preparer(Generic[T]):
    """Loads a chunk (in ``workers`` when given) into one contiguous float32 batch buffer."""

    def __init__(
        self, loader: Loader[T], embedder: Embedder, workers: ThreadPoolExecutor | None
    ) -> None:
        self._loader = loader
        self._embedder = embedder
        self._workers = workers
        spec = getattr(embedder, "spec", None)
        by_spec = getattr(embedder, "PREPROCESS_BY_SPEC", False) and isinstance(
            spec, PreprocessSpec
        )
        self._spec = spec if by_spec else None  # else the embedder's own preprocess (alignment)

    def __call__(self, chunk: tuple[T, ...]) -> _Prepared[T]:
        if self._spec is None:
            return self._prepare_with_embedder(chunk)
        buffer = np.empty(batch_shape(len(chunk), self._spec), dtype=np.float32)
        rows = range(len(chunk))
        if self._workers is None:
            loaded = [self._load_into(chunk[i], buffer, i) for i in rows]
        else:
            loaded = list(self._workers.map(lambda i: self._load_into(chunk[i], buffer, i), rows))
        kept = [i for i, entry in enumerate(loaded) if entry.ok]
        skipped = tuple(e.skipped for e in loaded if e.skipped is not None)
        pixels = buffer if len(kept) == len(chunk) else buffer[kept]  # copy only when skipping
        items = tuple(chunk[i] for i in kept)
        return _Prepared(items, pixels if kept else None, skipped)

    def _load_into(self, item: T, buffer: np.ndarray, row: int) -> _Loaded[T]:
        assert self._spec is not None
        image = self._load(item)
        if isinstance(image, Skipped):
            return _Loaded(item, False, image)
        preprocess_into(image, self._spec, buffer[row])
        return _Loaded(item, True, None)

    def _load(self, item: T) -> Image.Image | Skipped[T]:
        try:
            image = self._loader(item)
        except ITEM_ERRORS as exc:
            log.warning("skipping %s: %s", item, exc)
            return Skipped(item, f"{type(exc).__name__}: {exc}")
        return Skipped(item, NO_DERIVATIVE) if image is None else image

    def _prepare_with_embedder(self, chunk: tuple[T, ...]) -> _Prepared[T]:
        """Embedders without a PreprocessSpec preprocess whole batches themselves."""
        loaded = [(item, self._load(item)) for item in chunk]
        images = [image for _, image in loaded if not isinstance(image, Skipped)]
        kept = tuple(item for item, image in loaded if not isinstance(image, Skipped))
        skipped = tuple(image for _, image in loaded if isinstance(image, Skipped))
        pixels = self._embedder.preprocess(images) if images else None
        return _Prepared(kept, pixels, skipped)


def _run(embedder: Embedder, prepared: _Prepared[T]) -> EmbeddedBatch[T]:
    if prepared.pixels is None:
        empty = np.zeros((0, embedder.dim), dtype=np.float32)
        return EmbeddedBatch(prepared.items, empty, prepared.skipped)
    vectors = embedder.embed_preprocessed(prepared.pixels)
    return EmbeddedBatch(prepared.items, vectors, prepared.skipped)
