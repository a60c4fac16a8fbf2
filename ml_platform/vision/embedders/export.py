"""Export a transformers embedder (CLIP, DINOv2) to ONNX, and quantise ONNX models to INT8."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch

from ml_platform.vision.embedders.backends import Int8Mode
from ml_platform.vision.embedders.int8_cpu import this_cpu
from ml_platform.vision.embedders.static_int8 import platform_recipe, quantize_static_recipe

log = logging.getLogger(__name__)

INPUT_NAME = "pixel_values"
OUTPUT_NAME = "embedding"
OPSET = 17
Forward = Callable[[torch.nn.Module, torch.Tensor], torch.Tensor]
Quantizer = Callable[[Path, Path, str, np.ndarray], None]


class _Wrapped(torch.nn.Module):
    """``forward(model, pixels)`` as a module with one tensor in and one tensor out."""

    def __init__(self, model: torch.nn.Module, forward: Forward) -> None:
        super().__init__()
        self.model = model
        self._forward = forward

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self._forward(self.model, pixels)


def export_onnx(
    model: torch.nn.Module, forward: Forward, input_shape: tuple[int, int, int], out: Path
) -> None:
    """Trace ``forward`` into ``out`` (batch axis dynamic, input ``pixel_values``)."""
    example = torch.zeros((2, *input_shape), dtype=torch.float32)
    axes = {INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}}
    with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
        warnings.simplefilter("ignore")  # tracer warnings about python-side shape checks
        torch.onnx.export(
            _Wrapped(model, forward).eval(),
            (example,),
            str(out),
            dynamo=False,
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            dynamic_axes=axes,
            opset_version=OPSET,
        )
    log.info("exported ONNX model to %s", out)


def quantize_dynamic_int8(source: Path, out: Path, input_name: str, sample: np.ndarray) -> None:
    """Weights INT8, activations quantised per batch at run time (MatMul-heavy models);
    7-bit weights on a CPU whose u8s8 products can saturate (int8_cpu)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    del input_name, sample  # dynamic quantisation needs no calibration data
    with quiet_quantization():
        quantize_dynamic(
            str(source),
            str(out),
            weight_type=QuantType.QInt8,
            reduce_range=this_cpu().saturates,
        )


def quantize_static_int8(source: Path, out: Path, input_name: str, sample: np.ndarray) -> None:
    """QDQ INT8 with activation ranges calibrated on ``sample`` (convolutional models), by
    the platform's recipe for this CPU (static_int8.platform_recipe)."""
    with quiet_quantization():
        quantize_static_recipe(source, out, input_name, sample, platform_recipe())


class _DropOnnxruntimeChatter(logging.Filter):
    """onnxruntime.quantization logs progress on the root logger; keep it out of ours."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.ERROR or "onnxruntime" not in record.pathname


@contextmanager
def quiet_quantization() -> Iterator[None]:
    root = logging.getLogger()
    chatter = _DropOnnxruntimeChatter()
    root.addFilter(chatter)
    try:
        yield
    finally:
        root.removeFilter(chatter)


QUANTIZERS: dict[Int8Mode, Quantizer] = {
    Int8Mode.DYNAMIC: quantize_dynamic_int8,
    Int8Mode.STATIC: quantize_static_int8,
}


def int8_modes(mode: Int8Mode) -> tuple[Int8Mode, ...]:
    """The quantisation modes to try for a setting (``auto``: both, fastest passing wins)."""
    return (Int8Mode.DYNAMIC, Int8Mode.STATIC) if mode is Int8Mode.AUTO else (mode,)
