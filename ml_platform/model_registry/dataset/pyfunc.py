"""The MLflow pyfunc model every fine-tuned dataset classifier is logged as.

Input: a DataFrame with an `image` column of encoded image bytes (JPEG, PNG, ...).
Output: a DataFrame with one probability column per class, in the order of `class_names`.
The network is rebuilt from its architecture and the `weights` artifact (a torch state
dict) when the model is loaded; `ml_platform` must be installed wherever it is loaded.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch
from mlflow.models import ModelSignature
from mlflow.pyfunc.model import PythonModel
from mlflow.types import ColSpec, Schema
from numpy.typing import NDArray
from PIL import Image

from ml_platform.learning.finetune.architectures import Architecture, rebuild
from ml_platform.learning.finetune.net import ClassifierNet
from ml_platform.learning.finetune.onnx_runtime import OnnxClassifier, load_variant
from ml_platform.learning.finetune.preprocessing import spec_from_json
from ml_platform.learning.finetune.train import predict_proba
from ml_platform.vision.decode import decode_image

IMAGE_COLUMN = "image"
WEIGHTS_ARTIFACT = "weights"
MAX_PIXELS = 50_000_000


class FinetunedClassifierModel(PythonModel):
    """Architecture, preprocessing and class names; the weights load with the model."""

    def __init__(self, architecture: str, preprocessing: str, class_names: Sequence[str]):
        if Architecture.from_json(architecture).num_classes != len(class_names):
            raise ValueError(f"{len(class_names)} class names for architecture {architecture}")
        self.architecture = architecture
        self.preprocessing = preprocessing
        self.class_names = list(class_names)
        self._net: ClassifierNet | None = None
        self._onnx: OnnxClassifier | None = None
        self._lock = threading.Lock()

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k not in ("_net", "_onnx", "_lock")}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._net, self._onnx, self._lock = None, None, threading.Lock()

    def load_context(self, context: Any) -> None:
        self.attach_weights(torch.load(context.artifacts[WEIGHTS_ARTIFACT], weights_only=True))
        self._onnx = load_variant(context.artifacts)  # None: registered before ONNX variants

    @property
    def variant(self) -> str:
        """The runtime of the forward pass: torch, onnx or onnx-int8 (part of its identity)."""
        return "torch" if self._onnx is None else self._onnx.backend.value

    def attach_weights(self, state_dict: dict[str, torch.Tensor]) -> None:
        net = rebuild(Architecture.from_json(self.architecture))
        net.load_state_dict(state_dict)
        self._net = net.eval()

    def state_dict(self) -> dict[str, torch.Tensor]:
        """The loaded network's weights (for the sanity checks of a stored version)."""
        if self._net is None:
            raise RuntimeError("weights are not loaded; load the model with mlflow.pyfunc")
        return dict(self._net.state_dict())

    def predict(
        self,
        context: Any,
        model_input: pd.DataFrame,
        params: dict[str, Any] | None = None,
    ) -> pd.DataFrame:
        """Class probabilities for each row's encoded image."""
        if not isinstance(model_input, pd.DataFrame) or IMAGE_COLUMN not in model_input:
            raise ValueError(f"expected a DataFrame with an {IMAGE_COLUMN!r} column of bytes")
        images = [
            decode_image(bytes(v), max_pixels=MAX_PIXELS).image for v in model_input[IMAGE_COLUMN]
        ]
        return pd.DataFrame(self.predict_images(images), columns=self.class_names)

    def predict_images(self, images: Sequence[Image.Image]) -> NDArray[np.float32]:
        """Probabilities `[n, num_classes]` for decoded RGB images."""
        if self._net is None:
            raise RuntimeError("weights are not loaded; load the model with mlflow.pyfunc")
        if self._onnx is not None:
            return self._onnx.predict_proba(images, spec_from_json(self.preprocessing))
        with self._lock:
            return predict_proba(self._net, images, spec_from_json(self.preprocessing))


def signature(class_names: Sequence[str]) -> ModelSignature:
    inputs = Schema([ColSpec("binary", IMAGE_COLUMN)])
    outputs = Schema([ColSpec("double", name) for name in class_names])
    return ModelSignature(inputs=inputs, outputs=outputs)


def input_example() -> pd.DataFrame:
    buffer = io.BytesIO()
    Image.new("RGB", (32, 32), (120, 90, 60)).save(buffer, "PNG")
    return pd.DataFrame({IMAGE_COLUMN: [buffer.getvalue()]})
