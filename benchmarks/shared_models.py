"""What the benchmarks share: where ../shared is, and the EfficientNet-Lite0 custom type."""

from __future__ import annotations

import os
from pathlib import Path

from ml_platform.vision.embedders import Embedder, EmbedderOptions, build_embedder

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("ML_PLATFORM_SHARED_DIR", REPO.parent / "shared"))
EFFICIENTNET_TYPE = "embed_efficientnet_lite0"
EFFICIENTNET_ONNX = SHARED / "models" / "efficientnet_lite0_features.onnx"
# The preprocessing ../shared/models/README.md gives for this model (docs/embedding_types.md).
TYPES_YAML = """embedding_types:
  {name}:
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


def efficientnet_embedder(
    model: Path,
    scratch: Path,
    backend: str = "onnx",
    int8_mode: str = "auto",
    calibration_dir: Path | None = None,
) -> Embedder:
    """EfficientNet-Lite0 as a custom ONNX embedding type, declared in `scratch`; with
    backend onnx-int8 it opts into INT8 (quantised in `scratch`, calibrated on the images
    under `calibration_dir`, default the pets)."""
    types_file = scratch / "embedding_types.yaml"
    entry = TYPES_YAML.format(name=EFFICIENTNET_TYPE, onnx=model.resolve())
    types_file.write_text(entry + (f"    int8: {int8_mode}\n" if backend == "onnx-int8" else ""))
    options = EmbedderOptions(
        custom_types_file=types_file,
        backend=backend,
        onnx_cache_dir=scratch / "onnx",
        calibration_dir=calibration_dir or SHARED / "data" / "pets",
    )
    return build_embedder(EFFICIENTNET_TYPE, options)
