"""Custom embedding types: an ONNX image model run with onnxruntime."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import onnxruntime as ort

from ml_platform.vision.embedders.backends import Backend
from ml_platform.vision.embedders.base import (
    EmbedderOptions,
    EmbedderUnavailableError,
    file_sha256,
    l2_normalize,
)
from ml_platform.vision.embedders.custom_types import CustomEmbeddingType
from ml_platform.vision.embedders.identity import EmbedderIdentity
from ml_platform.vision.embedders.onnx_memory import session_options
from ml_platform.vision.embedders.spec_embedder import SpecEmbedder
from ml_platform.vision.preprocess import Layout, PreprocessSpec

log = logging.getLogger(__name__)


class OrtEmbedder(SpecEmbedder):
    """An ONNX image model run with onnxruntime behind the ``Embedder`` protocol.

    Used for custom ONNX types and for the ONNX/INT8 backends of the built-in types; the
    batch goes to the session as it is (contiguous float32, no copy).
    """

    def __init__(
        self,
        identity: EmbedderIdentity,
        *,
        backend: Backend,
        path: Path,
        spec: PreprocessSpec,
        options: EmbedderOptions,
        tensors: tuple[str | None, str | None] = (None, None),
        normalize: bool = False,
    ) -> None:
        super().__init__(identity, spec, options.batch_size)
        self.backend = backend
        self.path = path
        self._normalize = normalize
        self._session = ort.InferenceSession(
            str(path), sess_options=session_options(), providers=_providers(options.device)
        )
        self._input = _pick(tensors[0], [i.name for i in self._session.get_inputs()])
        self._output = _pick(tensors[1], [o.name for o in self._session.get_outputs()])
        self._check_input_shape()
        self.dim = self._output_dim()
        # Dynamic INT8 quantises each activation tensor with one scale for the whole batch, so
        # an image's vector depends (by ~1e-3) on the others in its forward pass. Only the
        # platform's INT8 files are read for it (parsing a large fp32 graph costs ~0.7 s).
        dynamic = backend is Backend.ONNX_INT8 and quantises_dynamically(path)
        self.batch_invariant = not dynamic

    @property
    def input_name(self) -> str:
        return self._input

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, {self.model_id!r}, {self.backend.value})"

    def embed_preprocessed(self, pixels: np.ndarray) -> np.ndarray:
        feed = {self._input: np.ascontiguousarray(pixels, dtype=np.float32)}  # no-op if ready
        output = np.asarray(self._session.run([self._output], feed)[0], dtype=np.float32)
        vectors = output.reshape(output.shape[0], -1)
        return l2_normalize(vectors) if self._normalize else vectors

    def _expected_input(self) -> tuple[int, int, int]:
        height, width = self.spec.crop_height, self.spec.crop_width
        return (3, height, width) if self.spec.layout is Layout.NCHW else (height, width, 3)

    def _check_input_shape(self) -> None:
        declared = next(i.shape for i in self._session.get_inputs() if i.name == self._input)
        expected = self._expected_input()
        static = [
            (d, e) for d, e in zip(declared[1:], expected, strict=False) if isinstance(d, int)
        ]
        if len(declared) != 4 or any(d != e for d, e in static):
            raise ValueError(
                f"{self.name}: model input {self._input!r} has shape {declared}; the declared "
                f"input_size/layout give [batch, {', '.join(map(str, expected))}]"
            )

    def _output_dim(self) -> int:
        shape = next(o.shape for o in self._session.get_outputs() if o.name == self._output)
        tail = shape[1:]
        if tail and all(isinstance(d, int) for d in tail):
            return int(np.prod(tail))
        probe = np.zeros((1, *self._expected_input()), dtype=np.float32)
        return int(self.embed_preprocessed(probe).shape[1])


class OnnxEmbedder(OrtEmbedder):
    """A custom embedding type: the ONNX file declared in the types file (its own weights)."""

    def __init__(
        self,
        custom: CustomEmbeddingType,
        options: EmbedderOptions,
        *,
        path: Path | None = None,
        backend: Backend = Backend.ONNX,
    ) -> None:
        if not custom.onnx_path.is_file():
            raise EmbedderUnavailableError(
                f"{custom.name}: ONNX file {custom.onnx_path} does not exist; fix 'onnx:' "
                "in the custom embedding types file (relative paths are from that file)"
            )
        checkpoint = f"sha256:{file_sha256([custom.onnx_path])}"
        identity = EmbedderIdentity(custom.name, str(custom.onnx_path), checkpoint)
        super().__init__(
            identity.on(backend, native=Backend.ONNX),
            backend=backend,
            path=path or custom.onnx_path,
            spec=custom.spec,
            options=options,
            tensors=(custom.input_name, custom.output_name),
            normalize=custom.l2_normalize,
        )
        if custom.dim is not None and custom.dim != self.dim:
            raise ValueError(f"{self.name}: declared dim {custom.dim}, the model gives {self.dim}")
        log.info(
            "loaded %s from %s (%s, dim %d)", self.name, self.model_id, self.revision, self.dim
        )


def _pick(wanted: str | None, available: list[str]) -> str:
    if wanted is None:
        if not available:
            raise ValueError("the ONNX model declares no tensors where one is needed")
        return available[0]
    if wanted not in available:
        raise ValueError(f"ONNX model has no tensor {wanted!r}; it has {available}")
    return wanted


def _providers(device: str) -> list[str]:
    if device.startswith("cuda") and "CUDAExecutionProvider" in ort.get_available_providers():
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    if device.startswith("cuda"):
        log.warning("onnxruntime has no CUDA provider here; running on CPU")
    return ["CPUExecutionProvider"]


DYNAMIC_QUANTIZE_OPS = frozenset({"DynamicQuantizeLinear", "DynamicQuantizeMatMul"})


def quantises_dynamically(path: Path) -> bool:
    """Whether the ONNX model quantises activations at run time (onnxruntime dynamic INT8)."""
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    return any(node.op_type in DYNAMIC_QUANTIZE_OPS for node in graph.node)
