"""Memory freed by unloaded models goes back to the system (`memory_release`)."""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest

from ml_platform.serving.metrics import ServingMetrics
from ml_platform.serving.model_budget import ModelBudget

glibc = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="malloc_trim is glibc's")

# Fills the heap with 50 KB blocks (under malloc's mmap threshold), frees all but the last
# (which pins the heap's top), then prints the RSS (KB) before and after the release.
FREED = """
from ml_platform.serving.memory_release import release_freed_memory
def rss():
    return int(next(l for l in open('/proc/self/status') if l.startswith('VmRSS')).split()[1])
blocks = [bytearray(50_000) for _ in range(3000)]
last = blocks[-1]
del blocks
before = rss()
assert release_freed_memory()
print(before, rss())
"""


@glibc
def test_release_hands_freed_heap_pages_back() -> None:
    out = subprocess.run([sys.executable, "-c", FREED], check=True, capture_output=True,
                         text=True).stdout  # fmt: skip
    before, after = (int(kb) for kb in out.split())
    assert before - after > 100_000, (before, after)  # of the ~150 MB freed


@glibc
def test_the_budget_releases_only_after_an_unload() -> None:
    budget = ModelBudget(100, 0.0, ServingMetrics())
    budget.admit("classifier", "a", 60, lambda: None)
    assert not budget.release()  # nothing unloaded yet
    budget.admit("classifier", "b", 60, lambda: None)  # a is unloaded
    assert budget.release()
    assert not budget.release()  # released already
