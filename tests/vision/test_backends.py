"""ONNX and INT8 backends: shapes, identity, the drift check's refusal, the export cache."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import onnx
import pytest
from PIL import Image
from transformers import CLIPVisionConfig, Dinov2Config

from ml_platform.defs.resources.vision_models import embedder_options
from ml_platform.settings import Settings
from ml_platform.vision.embedders import (
    Embedder,
    EmbedderOptions,
    build_random_embedder,
    l2_normalize,
)
from ml_platform.vision.embedders.backend_select import torch_maker, torch_with_backend
from ml_platform.vision.embedders.backends import (
    Backend,
    Int8Mode,
    RevisionParts,
    backend_of_revision,
    candidates,
    split_revision,
    suffixed_revision,
)
from ml_platform.vision.embedders.export import QUANTIZERS, quantize_dynamic_int8
from ml_platform.vision.embedders.onnx_cache import ExportRecord
from ml_platform.vision.embedders.variants import VariantMaker

CLIP = "embed_clip_vit_b_32"
DINO = "embed_dino_v2"


def tiny_clip() -> CLIPVisionConfig:
    return CLIPVisionConfig(
        hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
        projection_dim=24, image_size=64, patch_size=16,
    )  # fmt: skip


def tiny_dino() -> Dinov2Config:
    return Dinov2Config(
        hidden_size=32, num_hidden_layers=2, num_attention_heads=2, mlp_ratio=2, patch_size=14
    )


CONFIGS = {CLIP: tiny_clip, DINO: tiny_dino}


@pytest.fixture(scope="module")
def images() -> list[Image.Image]:
    rng = np.random.default_rng(1)
    sizes = [(96, 80), (80, 120), (64, 64)]
    return [Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)) for w, h in sizes]


def options(cache: Path, backend: str, **more: object) -> EmbedderOptions:
    return EmbedderOptions(backend=backend, onnx_cache_dir=cache, **more)  # type: ignore[arg-type]


def build(name: str, cache: Path, backend: str, **more: object) -> Embedder:
    return build_random_embedder(name, CONFIGS[name](), options(cache, backend, **more))


def mean_cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float((l2_normalize(a) * l2_normalize(b)).sum(axis=1).mean())


@pytest.mark.parametrize("name", [CLIP, DINO])
@pytest.mark.parametrize("backend", [Backend.ONNX, Backend.ONNX_INT8])
def test_onnx_backends_give_the_torch_shapes_and_close_vectors(
    name: str, backend: Backend, images: list[Image.Image], tmp_path: Path
) -> None:
    reference = build(name, tmp_path, "torch")
    variant = build(name, tmp_path, backend.value, int8_mode="dynamic")
    assert getattr(variant, "backend", None) is backend
    vectors = variant.embed(images)
    assert vectors.shape == (3, reference.dim) and vectors.dtype == np.float32
    assert mean_cosine(vectors, reference.embed(images)) >= 0.99


def test_the_backend_is_part_of_the_identity(tmp_path: Path) -> None:
    torch_one = build(CLIP, tmp_path, "torch")
    int8 = build(CLIP, tmp_path, "onnx-int8", int8_mode="dynamic")
    assert torch_one.revision == "random-init"
    assert int8.revision == "random-init+onnx-int8"
    assert (int8.model_id, int8.weights) == (torch_one.model_id, torch_one.weights)
    assert split_revision(int8.revision).checkpoint == torch_one.revision
    assert backend_of_revision(int8.revision) is Backend.ONNX_INT8
    assert backend_of_revision(torch_one.revision) is Backend.TORCH


@pytest.mark.parametrize("revision", ["abc123", "sha256:0f0f", "random-init", "a+b"])
@pytest.mark.parametrize("backend", list(Backend))
def test_suffixed_revisions_split_back(revision: str, backend: Backend) -> None:
    aligned = f"{suffixed_revision(revision, backend)}+align-five-point"  # the pre-identity order
    assert split_revision(aligned) == RevisionParts(f"{revision}+align-five-point", backend)
    assert split_revision(suffixed_revision(revision, backend)) == RevisionParts(revision, backend)
    assert split_revision(suffixed_revision(revision, None)) == RevisionParts(revision, None)


@pytest.mark.parametrize(
    ("choice", "native", "device", "expected"),
    [
        (None, Backend.TORCH, "cpu", (Backend.ONNX_INT8, Backend.ONNX, Backend.TORCH)),
        (None, Backend.TORCH, "cuda", (Backend.TORCH,)),
        (Backend.ONNX, Backend.TORCH, "cpu", (Backend.ONNX, Backend.TORCH)),
        (Backend.TORCH, Backend.TORCH, "cpu", (Backend.TORCH,)),
        (None, Backend.ONNX, "cpu", (Backend.ONNX_INT8, Backend.ONNX)),
        (Backend.ONNX_INT8, Backend.ONNX, "cpu", (Backend.ONNX_INT8, Backend.ONNX)),
        (None, Backend.ONNX, "cuda", (Backend.ONNX,)),
    ],
)
def test_backends_are_tried_fastest_first_down_to_the_native_one(
    choice: Backend | None, native: Backend, device: str, expected: tuple[Backend, ...]
) -> None:
    assert candidates(choice, native, device) == expected


def test_a_custom_onnx_type_has_no_torch_backend() -> None:
    with pytest.raises(ValueError, match="no torch backend"):
        candidates(Backend.TORCH, Backend.ONNX, "cpu")


def test_an_unknown_backend_setting_is_refused_with_the_choices() -> None:
    with pytest.raises(ValueError, match="onnx-int8"):
        EmbedderOptions(backend="tensorrt")


def perturbing_quantizer(source: Path, out: Path, input_name: str, sample: np.ndarray) -> None:
    """A deliberately broken INT8 model: quantise, then scramble every weight tensor."""
    quantize_dynamic_int8(source, out, input_name, sample)
    model = onnx.load(str(out))
    rng = np.random.default_rng(0)
    for tensor in model.graph.initializer:
        array = onnx.numpy_helper.to_array(tensor)
        if array.size > 16 and array.dtype.kind in "fiu":
            noise = rng.permutation(array.reshape(-1)).reshape(array.shape)
            tensor.CopyFrom(onnx.numpy_helper.from_array(noise.astype(array.dtype), tensor.name))
    onnx.save(model, str(out))


def test_drift_check_refuses_a_broken_quantisation_and_falls_back(tmp_path: Path) -> None:
    source = build(DINO, tmp_path, "torch")
    opts = options(tmp_path, "onnx-int8", int8_mode="dynamic")
    broken = {**QUANTIZERS, Int8Mode.DYNAMIC: perturbing_quantizer}
    maker = dataclasses.replace(torch_maker(source, opts), quantizers=broken)
    embedder = torch_with_backend(source, opts, maker)
    assert getattr(embedder, "backend", None) is Backend.ONNX  # the next slower backend
    assert embedder.revision == "random-init+onnx"
    entry = maker.entry(Backend.ONNX_INT8)
    record = ExportRecord.from_json(entry.record_path.read_text())
    assert not record.accepted and record.mean_cosine < 0.99
    assert "below 0.99" in record.reason
    assert not entry.model_path.exists()  # a refused model is not kept


def test_a_recorded_refusal_is_reused_without_quantising_again(tmp_path: Path) -> None:
    source = build(DINO, tmp_path, "torch")
    opts = options(tmp_path, "onnx-int8", int8_mode="dynamic")
    calls: list[Path] = []

    def counting_broken(source: Path, out: Path, input_name: str, sample: np.ndarray) -> None:
        calls.append(out)
        perturbing_quantizer(source, out, input_name, sample)

    broken = {**QUANTIZERS, Int8Mode.DYNAMIC: counting_broken}
    maker = dataclasses.replace(torch_maker(source, opts), quantizers=broken)
    torch_with_backend(source, opts, maker)
    again = torch_with_backend(source, opts, maker)
    assert len(calls) == 1
    assert getattr(again, "backend", None) is Backend.ONNX


def counting_dynamic_maker(
    tmp_path: Path,
) -> tuple[Embedder, EmbedderOptions, list[Path], VariantMaker]:
    """A tiny DINO, INT8 options, and a maker whose dynamic quantiser counts its calls."""
    source = build(DINO, tmp_path, "torch")
    opts = options(tmp_path, "onnx-int8", int8_mode="dynamic")
    calls: list[Path] = []

    def counting(source: Path, out: Path, input_name: str, sample: np.ndarray) -> None:
        calls.append(out)
        quantize_dynamic_int8(source, out, input_name, sample)

    maker = dataclasses.replace(torch_maker(source, opts), quantizers={Int8Mode.DYNAMIC: counting})
    return source, opts, calls, maker


def test_a_dynamic_int8_model_is_not_remade_when_the_static_recipe_changes(
    tmp_path: Path,
) -> None:
    source, opts, calls, maker = counting_dynamic_maker(tmp_path)
    torch_with_backend(source, opts, maker)
    again = torch_with_backend(source, opts, dataclasses.replace(maker, recipe="another"))
    assert len(calls) == 1
    assert getattr(again, "backend", None) is Backend.ONNX_INT8


def test_an_int8_model_checked_on_another_kind_of_cpu_is_remade(tmp_path: Path) -> None:
    source, opts, calls, maker = counting_dynamic_maker(tmp_path)
    torch_with_backend(source, opts, maker)
    entry = maker.entry(Backend.ONNX_INT8)
    record = ExportRecord.from_json(entry.record_path.read_text())
    assert record.cpu == maker.cpu
    entry.write_record(dataclasses.replace(record, cpu="x86_64 no-int8-dot-elsewhere"))
    torch_with_backend(source, opts, maker)
    assert len(calls) == 2
    assert ExportRecord.from_json(entry.record_path.read_text()).cpu == maker.cpu


def test_an_export_record_ignores_keys_a_newer_version_wrote() -> None:
    record = ExportRecord("onnx", True, 0.999, 0.998, 10.0, "synthetic")
    text = record.to_json().replace('"accepted"', '"from_the_future": 1, "accepted"')
    assert ExportRecord.from_json(text) == record


def test_the_export_cache_is_reused_per_model_revision_and_backend(tmp_path: Path) -> None:
    source = build(CLIP, tmp_path, "torch")
    opts = options(tmp_path, "onnx")
    exports: list[Path] = []
    maker = torch_maker(source, opts)
    assert maker.export_fp32 is not None
    real_export = maker.export_fp32

    def counting_export(path: Path) -> None:
        exports.append(path)
        real_export(path)

    counting = dataclasses.replace(maker, export_fp32=counting_export)
    first = torch_with_backend(source, opts, counting)
    second = torch_with_backend(source, opts, counting)
    assert len(exports) == 1
    assert getattr(first, "path", None) == getattr(second, "path", None)
    other = build_random_embedder(CLIP, dataclasses.replace(tiny_clip(), projection_dim=8), opts)
    assert getattr(other, "path", None) != getattr(first, "path", None)  # another architecture
    assert other.dim == 8


def test_settings_choose_the_backend_per_embedding_type(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path, embed_backend="onnx-int8", embed_backends=f" {DINO}=torch, ")
    opts = embedder_options(settings)
    assert opts.backend_for(CLIP) is Backend.ONNX_INT8
    assert opts.backend_for(DINO) is Backend.TORCH
    assert opts.resolved_onnx_cache_dir == tmp_path.resolve() / "models" / "onnx"
    assert opts.with_backend(CLIP, Backend.ONNX).backend_for(CLIP) is Backend.ONNX


def test_a_malformed_per_type_backend_setting_says_the_format(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="type=backend"):
        embedder_options(Settings(home=tmp_path, embed_backends="embed_dino_v2:torch"))


def test_dynamic_int8_vectors_depend_on_batch_mates_and_say_so(
    images: list[Image.Image], tmp_path: Path
) -> None:
    int8 = build(CLIP, tmp_path, "onnx-int8", int8_mode="dynamic")
    fp32 = build(CLIP, tmp_path, "onnx")
    assert getattr(int8, "batch_invariant", True) is False
    assert getattr(fp32, "batch_invariant", False) is True
    pixels = int8.preprocess(images)
    alone = int8.embed_preprocessed(pixels[:1])[0]
    bright = np.clip(pixels * 4.0, -10, 10).astype(np.float32)  # other activation ranges
    with_others = int8.embed_preprocessed(np.concatenate([pixels[:1], bright]))[0]
    assert not np.array_equal(alone, with_others)  # why serving runs such a model per image
