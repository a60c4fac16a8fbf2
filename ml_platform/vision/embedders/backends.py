"""Inference backends of an embedding type: torch, ONNX Runtime fp32, ONNX Runtime INT8.

The backend is part of the embedder's identity. It is written into the revision as a
suffix (``<checkpoint revision>+onnx-int8``) whenever it is not the type's native backend
(torch for CLIP/DINOv2, onnx for custom types), so it reaches every place an identity
goes without new columns: the Parquet ``embedder_revision`` column, the ``embedder_revision``
tag of a classifier in MLflow, the re-embed check, and serving's compatibility check.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

AUTO = "auto"
REVISION_SEPARATOR = "+"
DRIFT_THRESHOLD = 0.99


class Backend(StrEnum):
    """How an embedder runs: the checkpoint in torch, or an exported ONNX model."""

    TORCH = "torch"
    ONNX = "onnx"
    ONNX_INT8 = "onnx-int8"


class Int8Mode(StrEnum):
    """How INT8 models are made: ``auto`` tries both and keeps the faster that passes drift."""

    AUTO = "auto"
    DYNAMIC = "dynamic"
    STATIC = "static"


CHOICES = (AUTO, *(b.value for b in Backend))
# Fastest first, as benchmarks/embed_throughput.py measures them on CPU; on a GPU the torch
# checkpoint stays the default (ONNX Runtime INT8 kernels are CPU kernels).
CPU_PREFERENCE = (Backend.ONNX_INT8, Backend.ONNX, Backend.TORCH)
GPU_PREFERENCE = (Backend.TORCH,)


def parse_choice(value: str, where: str = "backend") -> Backend | None:
    """A backend setting: one of ``Backend``, or ``auto`` (None)."""
    if value == AUTO:
        return None
    try:
        return Backend(value)
    except ValueError:
        raise ValueError(f"{where} must be one of {list(CHOICES)}, got {value!r}") from None


def candidates(choice: Backend | None, native: Backend, device: str) -> tuple[Backend, ...]:
    """Backends to try in order: the chosen one, then the slower ones down to ``native``.

    ``auto`` (None) starts from the fastest for ``device``. A custom ONNX type (native onnx)
    cannot run on torch: it has no torch checkpoint.
    """
    if native is Backend.ONNX and choice is Backend.TORCH:
        raise ValueError("a custom ONNX embedding type has no torch backend; use onnx or onnx-int8")
    gpu = device.startswith("cuda")
    order = GPU_PREFERENCE if gpu and choice is None else CPU_PREFERENCE
    tried = order[order.index(choice) :] if choice is not None else order
    if native is Backend.ONNX:
        tried = tuple(b for b in tried if b is not Backend.TORCH)
    if native not in tried:
        tried = (*tried, native)
    return tried[: tried.index(native) + 1]


def suffixed_revision(revision: str, backend: Backend | None) -> str:
    """``revision`` with ``+<backend>`` (None: the native backend, no suffix)."""
    return revision if backend is None else f"{revision}{REVISION_SEPARATOR}{backend.value}"


@dataclass(frozen=True)
class RevisionParts:
    """A revision split into the checkpoint's revision and the backend suffix (None: native)."""

    checkpoint: str
    backend: Backend | None


def split_revision(revision: str) -> RevisionParts:
    """Inverse of ``suffixed_revision``. Other ``+`` suffixes (e.g. ``+align-five-point``)
    stay in the checkpoint part, wherever they sit (revisions written before
    ``EmbedderIdentity`` put ``+align-five-point`` after the backend); an unknown suffix is
    not a backend."""
    head, *suffixes = revision.split(REVISION_SEPARATOR)
    names = [s for s in suffixes if s in CHOICES and s != AUTO]
    if not names:
        return RevisionParts(revision, None)
    rest = [s for s in suffixes if s != names[-1]]
    return RevisionParts(REVISION_SEPARATOR.join([head, *rest]), Backend(names[-1]))


def backend_of_revision(revision: str, native: Backend = Backend.TORCH) -> Backend:
    """The backend an identity revision names (the native one when it has no suffix)."""
    return split_revision(revision).backend or native


def backend_label(embedder: object) -> str:
    """The backend an embedder runs on, for tables and logs (``native`` when it cannot say:
    an embedder type that predates backends, e.g. one with its own runtime)."""
    backend = getattr(embedder, "backend", None)
    if isinstance(backend, Backend):
        return backend.value
    suffix = split_revision(str(getattr(embedder, "revision", ""))).backend
    return suffix.value if suffix is not None else "native"
