"""Custom ONNX types opt into INT8: the real EfficientNet-Lite0 from ../shared/models."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from ml_platform.vision.decode import load_rgb
from ml_platform.vision.embedders import (
    EmbedderOptions,
    build_embedder,
    l2_normalize,
)
from ml_platform.vision.embedders.backends import Backend
from ml_platform.vision.embedders.int8_cpu import this_cpu
from ml_platform.vision.embedders.onnx_cache import ExportRecord
from ml_platform.vision.embedders.static_int8 import (
    DEFAULT_RECIPE,
    StaticRecipe,
    kept_in_fp32,
    platform_recipe,
)

NAME = "embed_efficientnet_lite0"
ENTRY = """embedding_types:
  embed_efficientnet_lite0:
    onnx: {onnx}
    input_size: 224
    resize_short_side: 256
    pixel_offset: 127.0
    pixel_scale: 128.0
    dim: 1280
{extra}"""


def types_file(directory: Path, onnx_path: Path, extra: str = "") -> Path:
    path = directory / "types.yaml"
    path.write_text(ENTRY.format(onnx=onnx_path, extra=extra))
    return path


def opts(types: Path, cache: Path, backend: str, calibration: Path) -> EmbedderOptions:
    return EmbedderOptions(
        custom_types_file=types, backend=backend, onnx_cache_dir=cache, calibration_dir=calibration
    )


def test_static_int8_of_efficientnet_is_kept_only_when_it_agrees_with_fp32_on_pet_photos(
    efficientnet_onnx: Path, shared_dir: Path, tmp_path: Path
) -> None:
    """INT8 numerics depend on the CPU (int8_cpu): what holds everywhere is that the INT8
    model serves only when its drift check passed, and then agrees with fp32 on pet photos."""
    pets = shared_dir / "data" / "pets"
    types = types_file(tmp_path, efficientnet_onnx, "    int8: static\n")
    int8 = build_embedder(NAME, opts(types, tmp_path / "cache", "onnx-int8", pets))
    fp32 = build_embedder(NAME, opts(types, tmp_path / "cache", "onnx", pets))
    record = only_int8_record(tmp_path / "cache")
    assert record.cpu == this_cpu().label and record.recipe == platform_recipe().label
    if not record.accepted:
        assert_fell_back_to_fp32(int8, efficientnet_onnx)
        return
    assert getattr(int8, "backend", None) is Backend.ONNX_INT8
    assert int8.revision == f"{fp32.revision}+onnx-int8"
    photos = [load_rgb(p) for p in sorted(pets.rglob("*.jpg"))[1::15]]
    cosine = (l2_normalize(int8.embed(photos)) * l2_normalize(fp32.embed(photos))).sum(axis=1)
    assert cosine.mean() >= 0.99


def only_int8_record(cache: Path) -> ExportRecord:
    (record_path,) = cache.rglob("onnx-int8.json")
    return ExportRecord.from_json(record_path.read_text())


def assert_fell_back_to_fp32(embedder: object, onnx_path: Path) -> None:
    assert getattr(embedder, "backend", None) is Backend.ONNX
    assert getattr(embedder, "path", None) == onnx_path.resolve()
    assert not str(getattr(embedder, "revision", "")).endswith("+onnx-int8")


def test_dynamic_int8_of_a_cnn_is_refused_and_the_fp32_model_kept(
    efficientnet_onnx: Path, shared_dir: Path, tmp_path: Path
) -> None:
    """Dynamic quantisation of EfficientNet drifts (mean cosine about 0.92): refused."""
    types = types_file(tmp_path, efficientnet_onnx, "    int8: dynamic\n")
    options = opts(types, tmp_path / "cache", "onnx-int8", shared_dir / "data" / "pets")
    embedder = build_embedder(NAME, options)
    assert getattr(embedder, "backend", None) is Backend.ONNX
    assert not embedder.revision.endswith("+onnx-int8")
    records = list((tmp_path / "cache").rglob("onnx-int8.json"))
    assert len(records) == 1 and '"accepted": false' in records[0].read_text()


def test_without_opting_in_a_custom_type_stays_on_its_own_model(
    efficientnet_onnx: Path, tmp_path: Path
) -> None:
    types = types_file(tmp_path, efficientnet_onnx)
    embedder = build_embedder(NAME, opts(types, tmp_path / "cache", "auto", tmp_path))
    assert getattr(embedder, "backend", None) is Backend.ONNX
    assert getattr(embedder, "path", None) == efficientnet_onnx.resolve()
    assert not (tmp_path / "cache").exists()
    assert np.isfinite(embedder.embed_preprocessed(np.zeros((1, 3, 224, 224), np.float32))).all()


def test_the_default_recipe_keeps_the_stem_blocks_and_the_head_in_fp32(
    efficientnet_onnx: Path,
) -> None:
    kept = kept_in_fp32(efficientnet_onnx, DEFAULT_RECIPE)
    assert kept[:1] == ["/_blocks.0/_depthwise_conv/Conv"]  # sorted names
    assert "/_conv_stem/Conv" in kept and "/_conv_head/Conv" in kept
    assert "/_blocks.1/_project_conv/Conv" in kept and "/_blocks.2/_expand_conv/Conv" not in kept
    assert len(kept) == DEFAULT_RECIPE.keep_first + DEFAULT_RECIPE.keep_last


def test_keeping_depthwise_convs_adds_every_grouped_conv(efficientnet_onnx: Path) -> None:
    recipe = StaticRecipe(keep_first=0, keep_last=0, keep_depthwise=True)
    kept = kept_in_fp32(efficientnet_onnx, recipe)
    assert len(kept) == 16 and all("_depthwise_conv" in name for name in kept)
    assert kept_in_fp32(efficientnet_onnx, StaticRecipe(keep_first=0, keep_last=0)) == []


def test_a_static_int8_model_made_with_another_recipe_is_remade(
    efficientnet_onnx: Path, shared_dir: Path, tmp_path: Path
) -> None:
    """Whether the remade model passes its drift check depends on the CPU; that it is remade
    with this CPU's recipe, and serves only when accepted (else fp32 serves), does not."""
    types = types_file(tmp_path, efficientnet_onnx, "    int8: static\n")
    options = opts(types, tmp_path / "cache", "onnx-int8", shared_dir / "data" / "faces")
    build_embedder(NAME, options)
    (record_path,) = (tmp_path / "cache").rglob("onnx-int8.json")
    record = ExportRecord.from_json(record_path.read_text())
    record_path.write_text(dataclasses.replace(record, recipe="an older recipe").to_json())
    embedder = build_embedder(NAME, options)
    remade = ExportRecord.from_json(record_path.read_text())
    assert remade.recipe == platform_recipe().label and remade.cpu == this_cpu().label
    if remade.accepted:
        assert getattr(embedder, "backend", None) is Backend.ONNX_INT8
    else:
        assert_fell_back_to_fp32(embedder, efficientnet_onnx)
