"""Per-image progress of ingest runs in this process, for whoever listens (the CLI's progress
line). `ingest_batch` reports each image; `demo` and `run` execute in-process and show
`n/total images`. Nothing listens in a daemon or a worker: reporting is then a no-op.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

ImagesListener = Callable[[int, int], None]  # (images done, images in the batch)

_listeners: list[ImagesListener] = []
_lock = threading.Lock()


@contextmanager
def listening(listener: ImagesListener) -> Iterator[None]:
    with _lock:
        _listeners.append(listener)
    try:
        yield
    finally:
        with _lock:
            _listeners.remove(listener)


def notify_images(done: int, total: int) -> None:
    for listener in list(_listeners):
        listener(done, total)
