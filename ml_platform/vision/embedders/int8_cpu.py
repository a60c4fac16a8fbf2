"""What this CPU's INT8 kernels can do, as far as quantisation must know.

onnxruntime runs u8s8 INT8 products with VNNI (``vpdpbusd``) where the CPU has it and with
AVX2's ``vpmaddubsw`` where it does not; the latter adds pairs of products in 16 bits and
can saturate, so onnxruntime advises ``reduce_range`` (7-bit weights) on CPUs without VNNI.
The same INT8 model therefore drifts differently on different CPUs: the recipe is chosen for
the CPU (`static_int8.recipe_for`) and the CPU's class is recorded with every INT8 model, so
a cache made on another kind of CPU is remade rather than trusted.
"""

from __future__ import annotations

import functools
import platform
from dataclasses import dataclass
from pathlib import Path

CPUINFO = Path("/proc/cpuinfo")
# x86: VNNI in AVX-512 or AVX (Alder Lake and later), AMX; Arm: the SDOT/UDOT and I8MM dot
# products. Each adds four 8-bit products into 32 bits, so none of them saturates.
INT8_DOT_FLAGS = ("avx512_vnni", "avx_vnni", "amx_int8", "asimddp", "i8mm")


@dataclass(frozen=True)
class Int8Cpu:
    """The CPU's architecture and the INT8 dot-product flags it has (sorted)."""

    machine: str
    dot_flags: tuple[str, ...]

    @property
    def saturates(self) -> bool:
        """True where u8s8 products go through a 16-bit intermediate (no dot product)."""
        return not self.dot_flags

    @property
    def label(self) -> str:
        """A short, stable class name, recorded with each INT8 model (``x86_64 vnni`` ...)."""
        kernels = "+".join(self.dot_flags) if self.dot_flags else "no-int8-dot"
        return f"{self.machine} {kernels}"


def parse_cpu(cpuinfo: str, machine: str) -> Int8Cpu:
    """The class of the CPU ``cpuinfo`` (the text of /proc/cpuinfo) describes."""
    words: set[str] = set()
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip().lower() in ("flags", "features"):
            words.update(value.split())
    return Int8Cpu(machine, tuple(sorted(words.intersection(INT8_DOT_FLAGS))))


@functools.cache
def this_cpu() -> Int8Cpu:
    """This machine's class; without /proc/cpuinfo (not Linux) the CPU counts as saturating,
    the safe side (reduce_range costs a little accuracy, never a saturated product)."""
    machine = platform.machine() or "unknown"
    try:
        text = CPUINFO.read_text(errors="replace")
    except OSError:
        return Int8Cpu(machine, ())
    return parse_cpu(text, machine)
