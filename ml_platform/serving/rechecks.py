"""Re-checks in batches: a batch waits `window_s` for the keys that fall due with it, the
keys that fall due while it is read wait for the next, and each batch is handed to one call
(`RegistryCache` reads a batch's champions in bulk), on one background thread that never
blocks a request.

The window is `WINDOW_SHARE` of the refresh interval, and a key falls due that much earlier
(`RegistryCache._due`), so a loaded champion's answer is still re-read within the interval.
Reloads after evictions then share searches of up to 100 names (~1-2.5 ms a name at 10,000
models) instead of one alias read each (~10 ms); per-key re-checks (~40 ms of the registry
client's Python each, two calls) made a reload after an eviction slow, not the load. The
searches themselves run in a worker process (`alias_reads`), off the requests' GIL.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import Generic, TypeVar

log = logging.getLogger(__name__)
K = TypeVar("K", int, str)
WINDOW_SHARE = 0.05  # of the refresh interval: 1.5 s at the default 30 s


class DueKeys(Generic[K]):
    """Keys due for a re-check, handed to `recheck` in sorted batches."""

    def __init__(self, recheck: Callable[[list[K]], None], window_s: float = 0.0) -> None:
        self._recheck: Callable[[list[K]], None] = recheck
        self.window_s = window_s
        self._stopped = threading.Event()
        self._due: set[K] = set()
        self._batch: Future[None] | None = None  # the batches being read, if any
        self._guard = threading.Lock()
        self.background = ThreadPoolExecutor(max_workers=1, thread_name_prefix="champion-check")

    def add(self, key: K) -> None:
        with self._guard:
            self._due.add(key)
            if self._batch is not None:
                return  # the running batches take it next
            try:
                self._batch = self.background.submit(self._run)
            except RuntimeError:  # shut down: keep serving what is loaded
                self._batch = None

    def drain(self, timeout_s: float | None = None) -> None:
        """Wait until every key added so far was re-checked (tests, shutdown)."""
        with self._guard:
            batch = self._batch
        if batch is not None:
            wait([batch], timeout=timeout_s)

    def shutdown(self) -> None:
        self._stopped.set()
        self.background.shutdown(wait=False, cancel_futures=True)

    def _run(self) -> None:
        self._stopped.wait(self.window_s)  # the keys due with the first one join its batch
        while True:
            with self._guard:
                keys = sorted(self._due)
                self._due.clear()
                if not keys:
                    self._batch = None
                    return
            try:
                self._recheck(keys)
            except Exception:  # a bug must not kill the background thread silently
                log.exception("re-check of %d champions failed", len(keys))
