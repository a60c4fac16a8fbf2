"""Give the memory an unloaded model freed back to the operating system.

glibc's malloc keeps freed blocks for reuse: after a model is unloaded the process's resident
memory does not drop (a fine-tuned dataset network run in torch left ~34 MB that only
`malloc_trim` returned, benchmarks/serve_memory.py --trim). `malloc_trim(0)` returns the free
pages of every malloc arena; it takes tens of ms on a large heap (~65 ms at ~800 MB), so the
model budget calls it from its background thread, never on a request. On a C library without
it (musl, macOS) it does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
from collections.abc import Callable
from functools import cache

log = logging.getLogger(__name__)


@cache
def _malloc_trim() -> Callable[[int], int] | None:
    name = ctypes.util.find_library("c")
    try:
        trim: Callable[[int], int] = ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError, TypeError):
        log.info("no malloc_trim in this C library: freed model memory stays with the process")
        return None
    return trim


def release_freed_memory() -> bool:
    """Return malloc's free pages to the system; False where the C library cannot."""
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True
