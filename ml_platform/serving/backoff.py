"""Remembered failures: a failed load is answered from memory until its retry time.

The first failure waits `base_s` before the next attempt, each further one twice as long, up
to `max_s`. Without this, an unreachable model hub costs every request the full timeout (and
a page of logs) while holding the load lock.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from ml_platform.serving.errors import ServingError

BACKOFF_BASE_S = 10.0
BACKOFF_MAX_S = 300.0


@dataclass(frozen=True)
class Failure:
    error: ServingError
    attempts: int
    retry_at: float


class FailureMemory:
    """Failures by key with their retry time (thread-safe enough: one dict, whole values)."""

    def __init__(
        self,
        base_s: float = BACKOFF_BASE_S,
        max_s: float = BACKOFF_MAX_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.base_s, self.max_s, self._clock = base_s, max_s, clock
        self._failures: dict[str, Failure] = {}

    def check(self, key: str) -> None:
        """Raise the remembered error while `key` is within its backoff."""
        failure = self._failures.get(key)
        if failure is not None and self._clock() < failure.retry_at:
            raise failure.error.fresh()  # a copy: re-raising one object grows its traceback

    def record(self, key: str, error: ServingError) -> Failure:
        previous = self._failures.get(key)
        attempts = 1 if previous is None else previous.attempts + 1
        delay = min(self.base_s * 2 ** (attempts - 1), self.max_s)
        retry_in = f"; retried in {delay:.0f} s (attempt {attempts})"
        remembered = ServingError(error.kind, error.message + retry_in)
        failure = Failure(remembered, attempts, self._clock() + delay)
        self._failures[key] = failure
        return failure

    def clear(self, key: str) -> None:
        self._failures.pop(key, None)

    def items(self) -> list[tuple[str, Failure]]:
        return sorted(self._failures.items())
