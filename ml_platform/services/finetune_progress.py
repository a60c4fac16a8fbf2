"""Per-epoch progress of fine-tuning runs in this process, for whoever listens (the CLI's bar).

The `finetuned_classifier` asset reports every epoch here; `ml-platform finetune` runs the
asset in-process and draws a progress bar from these events. Nothing listens in a daemon.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol

from ml_platform.learning.finetune.train import EpochMetrics


class EpochListener(Protocol):
    def started(self, dataset: str, epochs: int) -> None: ...

    def epoch(self, dataset: str, metrics: EpochMetrics) -> None: ...


_listeners: list[EpochListener] = []
_lock = threading.Lock()


@contextmanager
def listening(listener: EpochListener) -> Iterator[None]:
    with _lock:
        _listeners.append(listener)
    try:
        yield
    finally:
        with _lock:
            _listeners.remove(listener)


def notify_started(dataset: str, epochs: int) -> None:
    for listener in list(_listeners):
        listener.started(dataset, epochs)


def notify_epoch(dataset: str, metrics: EpochMetrics) -> None:
    for listener in list(_listeners):
        listener.epoch(dataset, metrics)
