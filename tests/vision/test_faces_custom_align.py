"""`align: five_point` in the custom types file: ArcFace alignment before a custom ONNX model.

The real EfficientNet-Lite0 ONNX model stands in for a face model (no ArcFace ONNX file is
available offline): what is tested is the alignment step in front of any custom model.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ml_platform.vision.decode import load_rgb
from ml_platform.vision.embedders import (
    EmbedderOptions,
    build_embedder,
    load_custom_types,
)
from ml_platform.vision.embedders.custom_types import AlignMode
from ml_platform.vision.embedders.face_aligned import REVISION_SUFFIX, FivePointAlignedEmbedder
from ml_platform.vision.faces.align import arcface_reference, similarity_transform
from ml_platform.vision.faces.landmarks import arcface_points, crop_face_box

pytest.importorskip("dlib", reason="the [faces] extra (dlib-bin) is not installed")

ENTRY = """
  embed_face_custom:
    onnx: {onnx}
    input_size: 224
    pixel_offset: 127.0
    pixel_scale: 128.0
    input_name: pixel_values
    output_name: embedding
{align}
"""


def types_file(directory: Path, onnx: Path, align: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "embedding_types.yaml"
    path.write_text("embedding_types:\n" + ENTRY.format(onnx=onnx, align=align))
    return path


@pytest.fixture
def face_crop(shared_dir: Path) -> Image.Image:
    return load_rgb(shared_dir / "data" / "faces" / "img1.jpg").crop((293, 36, 1148, 1184))


def test_align_option_parses_and_defaults_to_none(tmp_path: Path) -> None:
    aligned = types_file(tmp_path, Path("/m.onnx"), "    align: five_point")
    assert load_custom_types(aligned)["embed_face_custom"].align is AlignMode.FIVE_POINT
    plain = types_file(tmp_path, Path("/m.onnx"), "")
    assert load_custom_types(plain)["embed_face_custom"].align is AlignMode.NONE


def test_align_with_a_resize_is_rejected_with_the_reason(tmp_path: Path) -> None:
    path = types_file(
        tmp_path, Path("/m.onnx"), "    align: five_point\n    resize_short_side: 256"
    )
    with pytest.raises(ValueError, match="drop resize_short_side"):
        load_custom_types(path)


def test_aligned_custom_type_feeds_the_model_the_arcface_chip(
    tmp_path: Path, efficientnet_onnx: Path, face_crop: Image.Image
) -> None:
    aligned_file = types_file(tmp_path / "aligned", efficientnet_onnx, "    align: five_point")
    aligned_options = EmbedderOptions(custom_types_file=aligned_file)
    plain_options = EmbedderOptions(custom_types_file=types_file(tmp_path, efficientnet_onnx, ""))
    aligned = build_embedder("embed_face_custom", aligned_options)
    plain = build_embedder("embed_face_custom", plain_options)
    assert isinstance(aligned, FivePointAlignedEmbedder) and aligned.dim == plain.dim == 1280
    assert aligned.revision == plain.revision + REVISION_SUFFIX  # stored vectors re-embed
    chip = aligned.aligned(face_crop)
    assert chip.size == (224, 224)
    assert np.array_equal(aligned.preprocess([face_crop]), plain.preprocess([chip]))
    vectors = aligned.embed([face_crop])
    assert vectors.shape == (1, 1280) and not np.allclose(vectors, plain.embed([face_crop]))


def test_the_chip_puts_the_landmarks_on_the_reference(face_crop: Image.Image) -> None:
    rgb = np.asarray(face_crop)
    points = arcface_points(rgb, crop_face_box(rgb))
    reference = arcface_reference(224, 224)
    matrix = similarity_transform(points, reference)
    mapped = points @ matrix[:, :2].T + matrix[:, 2]
    assert np.abs(mapped - reference).max() < 224 * 0.05  # a 5-point fit, not exact
    assert points[0, 0] < points[1, 0] and points[3, 0] < points[4, 0]  # ArcFace order
