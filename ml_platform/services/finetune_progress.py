"""Per-epoch progress of fine-tuning runs in this process, for whoever listens (the CLI's bar).

The `finetuned_classifier` asset reports every epoch here; `ml-platform finetune` runs the
asset in-process and draws a progress bar from these events. Nothing listens in a daemon.
"""

from __future__ import annotations

from typing import Protocol

from ml_platform.learning.finetune.train import EpochMetrics
from ml_platform.services.progress_listeners import Listeners


class EpochListener(Protocol):
    def started(self, dataset: str, epochs: int) -> None: ...

    def epoch(self, dataset: str, metrics: EpochMetrics) -> None: ...


_listeners: Listeners[EpochListener] = Listeners()
listening = _listeners.listening


def notify_started(dataset: str, epochs: int) -> None:
    for listener in _listeners.current():
        listener.started(dataset, epochs)


def notify_epoch(dataset: str, metrics: EpochMetrics) -> None:
    for listener in _listeners.current():
        listener.epoch(dataset, metrics)
