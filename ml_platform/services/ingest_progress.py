"""Per-image progress of ingest runs in this process, for whoever listens (the CLI's progress
line). `ingest_batch` reports each image; `demo` and `run` execute in-process and show
`n/total images`. Nothing listens in a daemon or a worker: reporting is then a no-op.
"""

from __future__ import annotations

from collections.abc import Callable

from ml_platform.services.progress_listeners import Listeners

ImagesListener = Callable[[int, int], None]  # (images done, images in the batch)

_listeners: Listeners[ImagesListener] = Listeners()
listening = _listeners.listening


def notify_images(done: int, total: int) -> None:
    for listener in _listeners.current():
        listener(done, total)
