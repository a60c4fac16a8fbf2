"""Make, check, cache and load the ONNX and INT8 variants of an embedder.

A variant is made once per (model id, revision, architecture, backend) and kept under the
ONNX cache with a record of its drift check: the mean cosine between its embeddings and the
fp32 reference's on the calibration sample must reach 0.99, else it is refused, the refusal
is recorded, and the embedder falls back to the next slower backend, saying so. INT8 numerics
depend on the CPU (int8_cpu): an INT8 record names the CPU class and the static recipe it was
made with, and one made on another class or with another recipe is remade here.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from ml_platform.vision.embedders.backends import (
    DRIFT_THRESHOLD,
    Backend,
    Int8Mode,
    candidates,
)
from ml_platform.vision.embedders.base import Embedder, EmbedderOptions, l2_normalize
from ml_platform.vision.embedders.calibration import sample_pixels
from ml_platform.vision.embedders.export import QUANTIZERS, Quantizer, int8_modes
from ml_platform.vision.embedders.int8_cpu import this_cpu
from ml_platform.vision.embedders.onnx_cache import CacheEntry, ExportRecord
from ml_platform.vision.embedders.static_int8 import platform_recipe

log = logging.getLogger(__name__)
SPEED_TIE = 0.9  # speeds this close count as equal (timing on a shared machine is noisy)


@dataclass(frozen=True)
class Drift:
    """Row-wise cosine between a variant's embeddings and the reference's."""

    mean_cosine: float
    min_cosine: float

    @classmethod
    def between(cls, reference: np.ndarray, candidate: np.ndarray) -> Drift:
        if reference.shape != candidate.shape:
            raise ValueError(f"shapes differ: reference {reference.shape}, {candidate.shape}")
        cosine = (l2_normalize(reference) * l2_normalize(candidate)).sum(axis=1)
        if not np.isfinite(cosine).all():
            return cls(float("nan"), float("nan"))
        return cls(float(cosine.mean()), float(cosine.min()))

    def passes(self, threshold: float) -> bool:
        return bool(self.mean_cosine >= threshold)  # NaN fails


@dataclass
class Reference:
    """The fp32 embedder a variant must agree with, and its outputs on the sample (lazy)."""

    embedder: Embedder
    calibration_dir: Path | None
    _sample: tuple[np.ndarray, np.ndarray, str] | None = field(default=None, init=False)

    def sample(self) -> tuple[np.ndarray, np.ndarray, str]:
        """(pixels, reference vectors, description of the images)."""
        if self._sample is None:
            spec = getattr(self.embedder, "spec")  # noqa: B009 - every built embedder has one
            pixels, source = sample_pixels(spec, self.calibration_dir)
            self._sample = (pixels, self.embedder.embed_preprocessed(pixels), source)
        return self._sample


Loader = Callable[[Backend, Path], Embedder]
Exporter = Callable[[Path], None]


@dataclass(frozen=True)
class VariantMaker:
    """Everything needed to make the variants of one embedder."""

    reference: Reference
    entry: Callable[[Backend], CacheEntry]
    load: Loader
    export_fp32: Exporter | None  # None: the fp32 ONNX model already exists (custom types)
    fp32_path: Path | None = None
    int8_mode: Int8Mode = Int8Mode.AUTO
    # auto on transformers: dynamic first, static only when dynamic is refused (measured:
    # static is slower to make and drifts more on ViTs); custom types try both.
    first_passing_mode: bool = False
    quantizers: Mapping[Int8Mode, Quantizer] = field(default_factory=lambda: dict(QUANTIZERS))
    threshold: float = DRIFT_THRESHOLD
    # INT8 models made with another static recipe, or on another CPU class, are remade
    recipe: str = field(default_factory=lambda: platform_recipe().label)
    cpu: str = field(default_factory=lambda: this_cpu().label)

    def build(self, backend: Backend) -> Embedder | None:
        """The variant, made (and recorded) on first use; None when its drift was refused."""
        entry = self.entry(backend)
        record = entry.read_record()
        if record is not None and not self._current(record):
            log.info(
                "%s: %s was made with INT8 recipe %r on CPU %r; remaking it with %r on %r",
                self.reference.embedder.name, backend.value, record.recipe, record.cpu,
                self.recipe, self.cpu,
            )  # fmt: skip
            record = None
        if record is None:
            record = self._make(backend, entry)
            entry.write_record(record)
        if not record.accepted:
            log.warning(
                "%s: backend %s refused: %s (recorded in %s)",
                self.reference.embedder.name, backend.value, record.reason, entry.record_path,
            )  # fmt: skip
            return None
        return self.load(backend, entry.model_path)

    def _current(self, record: ExportRecord) -> bool:
        return record.is_current(self.recipe, self.cpu)

    def _make(self, backend: Backend, entry: CacheEntry) -> ExportRecord:
        if backend is Backend.ONNX:
            return self._make_fp32(entry)
        return self._make_int8(entry)

    def _source_fp32(self) -> Path:
        if self.export_fp32 is None:
            if self.fp32_path is None:
                raise ValueError("a variant maker needs an fp32 exporter or an fp32 model path")
            return self.fp32_path
        entry = self.entry(Backend.ONNX)
        if not entry.model_path.is_file():
            temporary = entry.temporary_model()
            self.export_fp32(temporary)
            temporary.replace(entry.model_path)
        return entry.model_path

    def _make_fp32(self, entry: CacheEntry) -> ExportRecord:
        path = self._source_fp32()
        return self._check(Backend.ONNX, path, entry, None)

    def _make_int8(self, entry: CacheEntry) -> ExportRecord:
        source = self._source_fp32()
        pixels, _, _ = self.reference.sample()
        input_name = self._input_name(source)
        trials: list[tuple[ExportRecord, Path]] = []
        for mode in int8_modes(self.int8_mode):
            out = entry.temporary_model(mode.value)
            self.quantizers[mode](source, out, input_name, pixels)
            trials.append((self._check(Backend.ONNX_INT8, out, entry, mode), out))
            if self.first_passing_mode and trials[-1][0].accepted:
                break
        return self._keep_best(trials, entry)

    def _keep_best(
        self, trials: list[tuple[ExportRecord, Path]], entry: CacheEntry
    ) -> ExportRecord:
        best = _best(trials)
        for _, path in trials:
            if best is not None and path == best[1]:
                path.replace(entry.model_path)
            else:
                path.unlink(missing_ok=True)
        summary = "; ".join(_describe(r, self.threshold) for r, _ in trials)
        chosen = best[0] if best is not None else min(trials, key=lambda t: t[0].mean_cosine)[0]
        return replace(chosen, reason=summary, recipe=self.recipe, cpu=self.cpu)

    def _check(
        self, backend: Backend, path: Path, entry: CacheEntry, mode: Int8Mode | None
    ) -> ExportRecord:
        pixels, expected, source = self.reference.sample()
        candidate = self.load(backend, path)
        candidate.embed_preprocessed(pixels[:2])  # warm up before timing
        started = time.perf_counter()
        vectors = candidate.embed_preprocessed(pixels)
        rate = len(pixels) / max(time.perf_counter() - started, 1e-9)
        drift = Drift.between(expected, vectors)
        accepted = drift.passes(self.threshold)
        verdict = "passes" if accepted else "is below"
        reason = f"mean cosine to fp32 {drift.mean_cosine:.4f} {verdict} {self.threshold}"
        log.info("%s %s (%s): %s on %s", entry.directory.name, backend.value, mode, reason, source)
        return ExportRecord(
            backend=backend.value,
            accepted=accepted,
            mean_cosine=drift.mean_cosine,
            min_cosine=drift.min_cosine,
            images_per_second=rate,
            calibration=source,
            int8_mode=mode.value if mode is not None else None,
            reason=reason,
        )

    @staticmethod
    def _input_name(path: Path) -> str:
        import onnxruntime as ort

        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        return str(session.get_inputs()[0].name)


def _best(trials: list[tuple[ExportRecord, Path]]) -> tuple[ExportRecord, Path] | None:
    """The fastest passing trial; within 10 % of the fastest, the one closest to fp32."""
    passing = [t for t in trials if t[0].accepted]
    if not passing:
        return None
    fastest = max(r.images_per_second for r, _ in passing)
    close = [t for t in passing if t[0].images_per_second >= SPEED_TIE * fastest]
    return max(close, key=lambda t: t[0].mean_cosine)


def _describe(record: ExportRecord, threshold: float) -> str:
    verdict = "passes" if record.accepted else "is below"
    return (
        f"{record.int8_mode}: mean cosine to fp32 {record.mean_cosine:.4f} {verdict} "
        f"{threshold}, {record.images_per_second:.1f} img/s on the sample"
    )


def first_accepted(
    name: str,
    maker: VariantMaker,
    native: Embedder,
    native_backend: Backend,
    options: EmbedderOptions,
    allowed: tuple[Backend, ...] | None = None,
) -> Embedder:
    """The first backend in preference order that is made and accepted, else ``native``."""
    choice = options.backend_for(name)
    for backend in candidates(choice, native_backend, options.device):
        if backend is native_backend:
            break
        if allowed is not None and backend not in allowed:
            log.info("%s: backend %s not enabled for this type", name, backend.value)
            continue
        variant = maker.build(backend)
        if variant is not None:
            return variant
    if choice is not None and choice is not native_backend:
        log.warning("%s: falling back to the %s backend", name, native_backend.value)
    return native
