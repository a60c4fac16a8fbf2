"""Listeners for progress events of runs in this process (the CLI's progress line and bars).
One mechanism for every kind of event (`ingest_progress`, `finetune_progress`); nothing
listens in a daemon or a worker, where notifying is a no-op."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Generic, TypeVar

L = TypeVar("L")


class Listeners(Generic[L]):
    """Who listens right now; safe to register from one thread and notify from another."""

    def __init__(self) -> None:
        self._items: list[L] = []
        self._lock = threading.Lock()

    @contextmanager
    def listening(self, listener: L) -> Iterator[None]:
        with self._lock:
            self._items.append(listener)
        try:
            yield
        finally:
            with self._lock:
                self._items.remove(listener)

    def current(self) -> list[L]:
        with self._lock:
            return list(self._items)
