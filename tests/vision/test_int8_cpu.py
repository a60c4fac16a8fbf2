"""The INT8 recipe follows the CPU: 7-bit weights where u8s8 products can saturate."""

from __future__ import annotations

import pytest

from ml_platform.vision.embedders.int8_cpu import Int8Cpu, parse_cpu, this_cpu
from ml_platform.vision.embedders.static_int8 import DEFAULT_RECIPE, platform_recipe, recipe_for

EPYC_AVX2 = "processor\t: 0\nflags\t\t: fpu sse4_2 avx avx2 fma bmi2\nmodel name\t: AMD EPYC\n"
SAPPHIRE = "flags\t\t: avx2 avx512f avx512bw avx512_vnni amx_int8 amx_tile\n"
GRAVITON = "processor\t: 0\nFeatures\t: fp asimd evtstrm aes crc32 asimddp i8mm\n"


@pytest.mark.parametrize(
    ("cpuinfo", "machine", "dot_flags"),
    [
        (EPYC_AVX2, "x86_64", ()),
        (SAPPHIRE, "x86_64", ("amx_int8", "avx512_vnni")),
        (GRAVITON, "aarch64", ("asimddp", "i8mm")),
        ("", "x86_64", ()),
    ],
)
def test_the_int8_dot_product_flags_are_read_from_cpuinfo(
    cpuinfo: str, machine: str, dot_flags: tuple[str, ...]
) -> None:
    cpu = parse_cpu(cpuinfo, machine)
    assert cpu.dot_flags == dot_flags
    assert cpu.saturates is (not dot_flags)
    assert cpu.label.startswith(machine + " ")


def test_a_cpu_without_int8_dot_products_gets_reduce_range() -> None:
    avx2 = recipe_for(parse_cpu(EPYC_AVX2, "x86_64"))
    assert avx2.reduce_range and "reduce-range" in avx2.label
    assert recipe_for(parse_cpu(SAPPHIRE, "x86_64")) == DEFAULT_RECIPE
    assert avx2.label != DEFAULT_RECIPE.label  # so a model made on the other kind is remade


def test_this_machine_gets_the_recipe_of_its_own_class() -> None:
    cpu = this_cpu()
    assert isinstance(cpu, Int8Cpu)
    assert platform_recipe() == recipe_for(cpu)
