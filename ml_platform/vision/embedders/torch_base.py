"""What the transformers-based embedders (CLIP, DINOv2) share: loading, random init, inference."""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import threading
from collections.abc import Callable
from typing import TypeVar

import numpy as np
import torch

from ml_platform.vision.embedders.backends import Backend
from ml_platform.vision.embedders.base import EmbedderUnavailableError
from ml_platform.vision.embedders.identity import EmbedderIdentity
from ml_platform.vision.embedders.onnx_direct import weights_revision
from ml_platform.vision.embedders.spec_embedder import SpecEmbedder
from ml_platform.vision.preprocess import PreprocessSpec

log = logging.getLogger(__name__)

M = TypeVar("M", bound=torch.nn.Module)
Forward = Callable[[torch.nn.Module, torch.Tensor], torch.Tensor]
RANDOM_SEED = 0
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_malloc_lock = threading.Lock()
_malloc_tuned = False


class TorchEmbedder(SpecEmbedder):
    """A transformers vision model behind the ``Embedder`` protocol (inference mode, no grad)."""

    def __init__(
        self,
        identity: EmbedderIdentity,
        *,
        model: torch.nn.Module,
        forward: Forward,
        dim: int,
        spec: PreprocessSpec,
        batch_size: int,
        device: str,
    ) -> None:
        super().__init__(identity, spec, batch_size)
        self.dim = dim
        self._device = torch.device(device)
        self._model = model.to(self._device).eval()
        self._forward = forward
        self.backend = Backend.TORCH
        if self._device.type == "cpu":
            tune_cpu_allocator()

    @property
    def model(self) -> torch.nn.Module:
        """The torch module (what ONNX export traces)."""
        return self._model

    @property
    def forward(self) -> Forward:
        """``forward(model, pixels)`` giving the embedding."""
        return self._forward

    @property
    def device(self) -> str:
        return str(self._device)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, {self.model_id!r}, {self.weights.value})"

    def embed_preprocessed(self, pixels: np.ndarray) -> np.ndarray:
        expected = (3, self.spec.crop_height, self.spec.crop_width)
        if pixels.ndim != 4 or tuple(pixels.shape[1:]) != expected:
            raise ValueError(f"{self.name} expects pixels [n, *{expected}], got {pixels.shape}")
        tensor = torch.from_numpy(np.ascontiguousarray(pixels, dtype=np.float32))
        with torch.inference_mode():
            output = self._forward(self._model, tensor.to(self._device))
        return output.float().cpu().numpy()


def seeded_random_model(build: Callable[[], torch.nn.Module]) -> torch.nn.Module:
    """Build a randomly initialised model reproducibly (same weights in every process)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(RANDOM_SEED)
        return build().eval()


def load_pretrained(
    load: Callable[[str], M], model_id: str, *, name: str, setting: str
) -> tuple[M, str]:
    """``load(model_id)`` (a ``from_pretrained``) and its revision; EmbedderUnavailableError."""
    try:
        model = load(model_id)
    except (OSError, ValueError) as exc:
        raise EmbedderUnavailableError(unavailable_message(name, model_id, setting, exc)) from exc
    return model, model_revision(model, model_id)


def unavailable_message(name: str, model_id: str, setting: str, exc: BaseException) -> str:
    return (
        f"{name}: cannot load pretrained weights from {model_id!r} ({type(exc).__name__}: "
        f"{exc}). Provide them by setting {setting} to a local directory written with "
        f"save_pretrained, by pre-populating the Hugging Face cache (HF_HOME) with "
        f"{model_id!r}, or set ML_PLATFORM_ALLOW_RANDOM_WEIGHTS=1 to run with random weights "
        "(outputs are then tagged weights=random)."
    )


def model_revision(model: torch.nn.Module, model_id: str) -> str:
    """The hub commit hash, else a sha256 prefix of a local directory's weight files."""
    commit = getattr(getattr(model, "config", None), "_commit_hash", None)
    if isinstance(commit, str) and commit:
        return commit
    return weights_revision(model_id) or "unknown"


def random_fallback_warning(name: str, model_id: str, reason: BaseException) -> None:
    log.warning(
        "%s: using RANDOMLY INITIALISED weights (architecture of %s); embeddings carry no "
        "meaning and are tagged weights=random. Reason: %s",
        name,
        model_id,
        reason,
    )


def tune_cpu_allocator() -> None:
    """Keep large freed blocks in glibc's heap instead of unmapping them (once per process).

    Transformer activations at batch 32 are tens of MB; by default glibc returns each to the
    kernel and the next forward pays page faults on fresh memory: 190k (CLIP ViT-B/32) and
    430k (DINOv2-S) minor faults per batch-32 forward, none with the raised mmap and trim
    thresholds, which cut the CPU time per forward by 15-20 %. No-op without glibc.
    """
    global _malloc_tuned
    with _malloc_lock:
        if _malloc_tuned:
            return
        _malloc_tuned = True
        libc_name = ctypes.util.find_library("c")
        libc = ctypes.CDLL(libc_name) if libc_name else None
        mallopt = getattr(libc, "mallopt", None)
        if mallopt is None:
            log.debug("mallopt not available; CPU allocator left as it is")
            return
        mallopt(_M_MMAP_THRESHOLD, 1 << 30)
        mallopt(_M_TRIM_THRESHOLD, 1 << 30)
        log.info("raised glibc mmap/trim thresholds for torch CPU inference")
