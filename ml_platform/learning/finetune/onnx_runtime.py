"""Running a fine-tuned network's ONNX variant (`onnx_export`) where a model version is loaded.

`load_variant` reads the variants record logged with the model version and opens the served
variant's session; a version registered before variants existed (no record) or one whose
check kept torch returns None, and the caller runs the network in torch. An INT8 model checked
on another CPU class (`vision.embedders.int8_cpu`) may drift differently here, so the fp32
ONNX model is served instead, saying why.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch
from numpy.typing import NDArray
from PIL import Image

from ml_platform.learning.finetune.evaluation import pixel_batches
from ml_platform.vision.embedders.backends import Backend
from ml_platform.vision.embedders.int8_cpu import this_cpu
from ml_platform.vision.embedders.onnx_memory import session_options
from ml_platform.vision.preprocess import PreprocessSpec

log = logging.getLogger(__name__)

ONNX_ARTIFACT = "onnx"
INT8_ARTIFACT = "onnx_int8"
VARIANTS_ARTIFACT = "variants"


class OnnxClassifier:
    """Class probabilities from an ONNX classifier (input pixels, output logits). The session
    is safe to call from several threads at once (no lock, unlike a torch module)."""

    def __init__(self, path: Path, backend: Backend) -> None:
        self.backend = backend
        self._session = ort.InferenceSession(
            str(path), sess_options=session_options(), providers=["CPUExecutionProvider"]
        )
        self._input = self._session.get_inputs()[0].name

    def predict_proba(
        self, images: Sequence[Image.Image], spec: PreprocessSpec
    ) -> NDArray[np.float32]:
        logits = [self._session.run(None, {self._input: b.numpy()})[0]
                  for b in pixel_batches(images, spec)]  # fmt: skip
        if not logits:
            return np.zeros((0, 0), np.float32)
        stacked = torch.from_numpy(np.concatenate(logits).astype(np.float32))
        return np.asarray(stacked.softmax(dim=-1).numpy(), dtype=np.float32)


def load_variant(artifacts: Mapping[str, str]) -> OnnxClassifier | None:
    """The served ONNX variant of a model version; None: run it in torch."""
    if VARIANTS_ARTIFACT not in artifacts:
        return None
    record = json.loads(Path(artifacts[VARIANTS_ARTIFACT]).read_text())
    served = Backend(record["served"])
    if served is Backend.ONNX_INT8:
        checked = next(c["cpu"] for c in record["checks"] if c["backend"] == served.value)
        if checked == this_cpu().label:
            return OnnxClassifier(Path(artifacts[INT8_ARTIFACT]), Backend.ONNX_INT8)
        log.warning("INT8 variant was checked on CPU class %r, this is %r: serving fp32 ONNX",
                    checked, this_cpu().label)  # fmt: skip
        served = Backend.ONNX
    if served is Backend.ONNX:
        return OnnxClassifier(Path(artifacts[ONNX_ARTIFACT]), Backend.ONNX)
    return None
