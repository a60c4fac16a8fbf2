"""Static (calibrated) INT8 quantisation of an ONNX model: the recipe and the node choice.

`StaticRecipe` holds every knob onnxruntime's ``quantize_static`` offers that changes the
result on a CNN; `DEFAULT_RECIPE` is the one the platform uses on a CPU with INT8 dot products
(VNNI), picked by measurement (benchmarks/int8_recipes.py on EfficientNet-Lite0 and the pet
photos, docs/embedding_types.md); `recipe_for` adds ``reduce_range`` on a CPU without them,
as onnxruntime advises (see `int8_cpu`). `platform_recipe()` is the one for this machine.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from enum import StrEnum
from pathlib import Path

import numpy as np

from ml_platform.vision.embedders.int8_cpu import Int8Cpu, this_cpu

STATIC_CALIBRATION_BATCH = 8
WEIGHTED_OPS = ("Conv", "MatMul", "Gemm")


class CalibrationMethod(StrEnum):
    """How activation ranges are estimated from the calibration sample."""

    MINMAX = "minmax"
    PERCENTILE = "percentile"
    ENTROPY = "entropy"


@dataclass(frozen=True)
class StaticRecipe:
    """One way to quantise statically; the defaults are the platform's choice.

    ``keep_first``/``keep_last``: how many of the first and last weighted nodes (Conv, MatMul,
    Gemm in graph order) stay fp32; ``keep_depthwise``: every grouped conv stays fp32 too.
    On EfficientNet-Lite0 the first six (the stem and blocks 0-1, at 112 px) carry most of
    the INT8 error: mean cosine to fp32 0.9958 keeping 1, 0.9978 keeping 6, at the same speed.
    """

    method: CalibrationMethod = CalibrationMethod.MINMAX
    per_channel: bool = True
    reduce_range: bool = False
    symmetric_activations: bool = False
    keep_first: int = 6
    keep_last: int = 1
    keep_depthwise: bool = False
    percentile: float = 99.999

    @property
    def label(self) -> str:
        """A short, stable description (recorded with each INT8 model in the cache)."""
        flags = [
            self.method.value,
            "per-channel" if self.per_channel else "per-tensor",
            *(["reduce-range"] if self.reduce_range else []),
            *(["symmetric-act"] if self.symmetric_activations else []),
            f"fp32:first{self.keep_first}+last{self.keep_last}",
            *(["+depthwise"] if self.keep_depthwise else []),
        ]
        return " ".join(flags)


DEFAULT_RECIPE = StaticRecipe()


def recipe_for(cpu: Int8Cpu) -> StaticRecipe:
    """The platform's recipe on ``cpu``: 7-bit weights where u8s8 products can saturate."""
    return replace(DEFAULT_RECIPE, reduce_range=cpu.saturates)


def platform_recipe() -> StaticRecipe:
    """The recipe for this machine's CPU."""
    return recipe_for(this_cpu())


def quantize_static_recipe(
    source: Path, out: Path, input_name: str, sample: np.ndarray, recipe: StaticRecipe
) -> None:
    """QDQ INT8 of ``source`` into ``out``, activation ranges calibrated on ``sample``."""
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    prepared = out.with_name(out.stem + ".pre.onnx")
    try:
        quant_pre_process(str(source), str(prepared))
        quantize_static(
            str(prepared),
            str(out),
            _Calibration(input_name, sample, _calibration_batch(recipe.method)),
            nodes_to_exclude=kept_in_fp32(prepared, recipe),
            quant_format=QuantFormat.QDQ,
            per_channel=recipe.per_channel,
            reduce_range=recipe.reduce_range,
            activation_type=QuantType.QInt8 if recipe.symmetric_activations else QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            calibrate_method=_ort_method(recipe.method),
            extra_options=_extra_options(recipe),
        )
    finally:
        prepared.unlink(missing_ok=True)


def kept_in_fp32(path: Path, recipe: StaticRecipe) -> list[str]:
    """The names of the weighted nodes ``recipe`` leaves in fp32."""
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    weighted = [n for n in graph.node if n.op_type in WEIGHTED_OPS and n.name]
    kept = weighted[: recipe.keep_first] + weighted[len(weighted) - recipe.keep_last :]
    if recipe.keep_depthwise:
        kept += [n for n in weighted if _group(n) > 1]
    return sorted({n.name for n in kept})


def _group(node: object) -> int:
    import onnx

    attributes = getattr(node, "attribute", [])
    groups = [onnx.helper.get_attribute_value(a) for a in attributes if a.name == "group"]
    return int(groups[0]) if groups else 1


def _ort_method(method: CalibrationMethod) -> object:
    from onnxruntime.quantization import CalibrationMethod as OrtMethod

    return {
        CalibrationMethod.MINMAX: OrtMethod.MinMax,
        CalibrationMethod.PERCENTILE: OrtMethod.Percentile,
        CalibrationMethod.ENTROPY: OrtMethod.Entropy,
    }[method]


def _extra_options(recipe: StaticRecipe) -> dict[str, object]:
    options: dict[str, object] = {"ActivationSymmetric": recipe.symmetric_activations}
    if recipe.method is CalibrationMethod.PERCENTILE:
        options["CalibPercentile"] = recipe.percentile
    return options


def _calibration_batch(method: CalibrationMethod) -> int:
    """Histogram calibrators stack every step's tensors, so their steps must be equal: one
    image each (onnxruntime fails on a ragged last batch)."""
    return STATIC_CALIBRATION_BATCH if method is CalibrationMethod.MINMAX else 1


class _Calibration:
    """onnxruntime's CalibrationDataReader over a preprocessed sample, a few images a step."""

    def __init__(self, input_name: str, sample: np.ndarray, batch: int) -> None:
        self._input_name = input_name
        self._sample = sample
        self._batch = batch
        self._batches = self._iterate()

    def _iterate(self) -> Iterator[dict[str, np.ndarray]]:
        for start in range(0, len(self._sample), self._batch):
            yield {self._input_name: self._sample[start : start + self._batch]}

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._batches, None)

    def rewind(self) -> None:
        self._batches = self._iterate()
