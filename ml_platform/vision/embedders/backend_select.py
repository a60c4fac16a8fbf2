"""Give an embedding type the backend its settings ask for (vision/embedders/backends.py)."""

from __future__ import annotations

import logging
from pathlib import Path

from ml_platform.vision.embedders.backends import Backend, Int8Mode
from ml_platform.vision.embedders.base import Embedder, EmbedderOptions
from ml_platform.vision.embedders.custom_types import CustomEmbeddingType
from ml_platform.vision.embedders.identity import EmbedderIdentity
from ml_platform.vision.embedders.onnx import OnnxEmbedder
from ml_platform.vision.embedders.onnx_cache import cache_entry, fingerprint
from ml_platform.vision.embedders.onnx_direct import write_source
from ml_platform.vision.embedders.variants import Reference, VariantMaker, first_accepted

log = logging.getLogger(__name__)


def torch_with_backend(
    source: Embedder, options: EmbedderOptions, maker: VariantMaker | None = None
) -> Embedder:
    """``source`` (a TorchEmbedder) itself, or its accepted ONNX / INT8 variant."""
    if options.backend_for(source.name) is Backend.TORCH:
        return source
    maker = maker or torch_maker(source, options)
    chosen = first_accepted(source.name, maker, source, Backend.TORCH, options)
    if chosen is not source:  # a later build may load it without torch (onnx_direct)
        write_source(options.resolved_onnx_cache_dir, EmbedderIdentity.of(source),
                     architecture(source))  # fmt: skip
    return chosen


def torch_maker(source: Embedder, options: EmbedderOptions) -> VariantMaker:
    """How to export, quantise, check and load the variants of a TorchEmbedder."""
    from ml_platform.vision.embedders.export import export_onnx
    from ml_platform.vision.embedders.onnx import OrtEmbedder
    from ml_platform.vision.embedders.torch_base import TorchEmbedder

    if not isinstance(source, TorchEmbedder):
        raise TypeError(f"{source.name}: ONNX export needs a TorchEmbedder, got {source!r}")
    spec = source.spec
    arch = architecture(source)
    cache = options.resolved_onnx_cache_dir

    def load(backend: Backend, path: Path) -> Embedder:
        return OrtEmbedder(
            EmbedderIdentity.of(source).on(backend, native=Backend.TORCH),
            backend=backend,
            path=path,
            spec=spec,
            options=options,
        )

    def export(path: Path) -> None:
        shape = (3, spec.crop_height, spec.crop_width)
        export_onnx(source.model, source.forward, shape, path)

    return VariantMaker(
        reference=Reference(source, options.calibration_dir),
        entry=lambda b: cache_entry(cache, source.model_id, source.revision, arch, b),
        load=load,
        export_fp32=export,
        int8_mode=Int8Mode(options.int8_mode),
        first_passing_mode=True,
    )


def architecture(source: Embedder) -> str:
    """The fingerprint of a TorchEmbedder's architecture (its transformers config)."""
    model = getattr(source, "model")  # noqa: B009 - a TorchEmbedder (checked by the caller)
    config = getattr(model, "config", None)
    return fingerprint(config.to_json_string() if config is not None else repr(model))


def custom_with_backend(
    custom: CustomEmbeddingType, options: EmbedderOptions, maker: VariantMaker | None = None
) -> OnnxEmbedder:
    """The custom type's own ONNX model, or its INT8 variant when the type opts in."""
    native = OnnxEmbedder(custom, options)
    choice = options.backend_for(custom.name)
    if custom.int8 is None:
        if choice is Backend.ONNX_INT8:
            log.warning("%s: INT8 asked for, but the type does not opt in (int8:)", custom.name)
        return native
    maker = maker or custom_maker(custom, native, options)
    allowed = (Backend.ONNX_INT8, Backend.ONNX)
    chosen = first_accepted(custom.name, maker, native, Backend.ONNX, options, allowed)
    if not isinstance(chosen, OnnxEmbedder):
        raise TypeError(f"{custom.name}: expected an ONNX embedder, got {chosen!r}")
    return chosen


def custom_maker(
    custom: CustomEmbeddingType, native: Embedder, options: EmbedderOptions
) -> VariantMaker:
    from ml_platform.vision.embedders.onnx import OnnxEmbedder

    revision = native.revision
    mode = custom.int8 or Int8Mode.AUTO
    cache = options.resolved_onnx_cache_dir

    def load(backend: Backend, path: Path) -> Embedder:
        return OnnxEmbedder(custom, options, path=path, backend=backend)

    return VariantMaker(
        reference=Reference(native, options.calibration_dir),
        entry=lambda b: cache_entry(cache, custom.name, revision, mode.value, b),
        load=load,
        export_fp32=None,
        fp32_path=custom.onnx_path,
        int8_mode=mode,
    )
