"""Custom ONNX embedding types: the YAML format, and the real EfficientNet-Lite0 example."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

from ml_platform.domain import WeightsStatus
from ml_platform.vision.embedders import (
    EmbedderOptions,
    EmbedderUnavailableError,
    build_embedder,
    known_embedding_types,
    l2_normalize,
    load_custom_types,
)
from ml_platform.vision.pipeline import embed_images
from ml_platform.vision.preprocess import ChannelOrder, Layout, Resample

EFFICIENTNET_ENTRY = """
  embed_efficientnet_lite0:
    onnx: {onnx}
    input_size: 224
    resize_short_side: 256
    resample: bicubic
    pixel_offset: 127.0
    pixel_scale: 128.0
    input_name: pixel_values
    output_name: embedding
    dim: 1280
"""


def write_types(directory: Path, body: str) -> Path:
    path = directory / "embedding_types.yaml"
    path.write_text("embedding_types:\n" + body)
    return path


def test_entry_parses_into_a_preprocess_spec(tmp_path: Path) -> None:
    path = write_types(tmp_path, EFFICIENTNET_ENTRY.format(onnx="models/effnet.onnx"))
    custom = load_custom_types(path)["embed_efficientnet_lite0"]
    assert custom.onnx_path == (tmp_path / "models" / "effnet.onnx").resolve()
    spec = custom.spec
    assert (spec.crop_height, spec.crop_width, spec.resize_short_side) == (224, 224, 256)
    assert (spec.rescale, spec.mean, spec.std) == (1.0, (127.0,) * 3, (128.0,) * 3)
    assert (spec.resample, spec.channel_order, spec.layout) == (
        Resample.BICUBIC,
        ChannelOrder.RGB,
        Layout.NCHW,
    )
    assert (custom.input_name, custom.output_name, custom.dim) == (
        "pixel_values",
        "embedding",
        1280,
    )


def test_mean_std_form_with_bgr_nhwc_and_rectangular_input(tmp_path: Path) -> None:
    body = """
  embed_custom_bgr:
    onnx: /models/x.onnx
    input_size: [192, 256]
    mean: [0.5, 0.5, 0.5]
    std: [0.25, 0.25, 0.25]
    channel_order: bgr
    layout: nhwc
    l2_normalize: true
"""
    custom = load_custom_types(write_types(tmp_path, body))["embed_custom_bgr"]
    assert (custom.spec.crop_height, custom.spec.crop_width) == (192, 256)
    assert custom.spec.resize_short_side is None
    assert custom.spec.rescale == pytest.approx(1 / 255)
    assert custom.spec.layout is Layout.NHWC
    assert custom.l2_normalize


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("  embed_x:\n    onnx: a.onnx\n    input_size: 224\n", "either mean and std"),
        (
            "  embed_x:\n    onnx: a.onnx\n    input_size: 224\n    mean: [0, 0, 0]\n"
            "    std: [1, 1, 1]\n    pixel_offset: 127\n    pixel_scale: 128\n",
            "either mean and std",
        ),
        ("  embed_x:\n    onnx: a.onnx\n    input_size: 224\n    pixel_offset: 1\n", "together"),
        ("  embed_x:\n    onnx: a.onnx\n    input_size: 224\n    colour: red\n", "colour"),
        ("  embed_dino_v2:\n    onnx: a.onnx\n    input_size: 224\n", "built-in"),
        ("  Bad-Name:\n    onnx: a.onnx\n    input_size: 224\n", "must match"),
        (
            "  embed_x:\n    onnx: a.onnx\n    input_size: 224\n    mean: [0, 0, 0]\n"
            "    std: [1, 0, 1]\n",
            "std > 0",
        ),
    ],
)
def test_invalid_entries_name_the_file_and_the_problem(
    tmp_path: Path, body: str, message: str
) -> None:
    path = write_types(tmp_path, body)
    with pytest.raises(ValueError, match=message) as error:
        load_custom_types(path)
    assert str(path) in str(error.value)


def test_a_file_without_the_embedding_types_mapping_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "types.yaml"
    path.write_text("- just\n- a list\n")
    with pytest.raises(ValueError, match="embedding_types"):
        load_custom_types(path)


def test_missing_onnx_file_is_unavailable_not_a_crash(tmp_path: Path) -> None:
    path = write_types(tmp_path, EFFICIENTNET_ENTRY.format(onnx="missing.onnx"))
    options = EmbedderOptions(custom_types_file=path)
    with pytest.raises(EmbedderUnavailableError, match="missing.onnx"):
        build_embedder("embed_efficientnet_lite0", options)


@pytest.fixture(scope="module")
def effnet_options(
    efficientnet_onnx: Path, tmp_path_factory: pytest.TempPathFactory
) -> EmbedderOptions:
    directory = tmp_path_factory.mktemp("types")
    path = write_types(directory, EFFICIENTNET_ENTRY.format(onnx=efficientnet_onnx))
    return EmbedderOptions(custom_types_file=path)


def test_custom_types_are_known_after_the_builtins(effnet_options: EmbedderOptions) -> None:
    assert known_embedding_types(effnet_options) == [
        "embed_clip_vit_b_32",
        "embed_dino_v2",
        "embed_face_dlib_resnet_v1",
        "embed_efficientnet_lite0",
    ]


def test_efficientnet_custom_type_loads_as_pretrained(effnet_options: EmbedderOptions) -> None:
    embedder = build_embedder("embed_efficientnet_lite0", effnet_options)
    assert (embedder.dim, embedder.weights) == (1280, WeightsStatus.PRETRAINED)
    assert embedder.revision == "sha256:4fd9d4f4e7b6"  # models/README.md


def test_efficientnet_same_breed_pets_are_closer_than_other_breeds(
    effnet_options: EmbedderOptions, pet_photos: dict[str, list[Path]]
) -> None:
    embedder = build_embedder("embed_efficientnet_lite0", effnet_options)
    paths = [p for files in pet_photos.values() for p in files[:5]]
    result = embed_images(paths, embedder)
    assert result.items == tuple(paths)
    vectors = l2_normalize(result.vectors)
    breeds = np.array([p.parent.name for p in paths])
    similarity = vectors @ vectors.T
    same = breeds[:, None] == breeds[None, :]
    off_diagonal = ~np.eye(len(paths), dtype=bool)
    same_breed = similarity[same & off_diagonal].mean()
    cross_breed = similarity[~same].mean()
    assert same_breed > cross_breed + 0.05, (same_breed, cross_breed)


def test_efficientnet_l2_normalize_flag_gives_unit_vectors(
    efficientnet_onnx: Path, tmp_path: Path, pet_photos: dict[str, list[Path]]
) -> None:
    body = EFFICIENTNET_ENTRY.format(onnx=efficientnet_onnx) + "    l2_normalize: true\n"
    options = EmbedderOptions(custom_types_file=write_types(tmp_path, body))
    embedder = build_embedder("embed_efficientnet_lite0", options)
    paths = list(itertools.islice(pet_photos["beagle"], 2))
    vectors = embed_images(paths, embedder).vectors
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
