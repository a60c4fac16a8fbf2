"""learning.finetune.onnx_export / onnx_runtime: a fine-tuned network's ONNX variants, their
drift check and which one a loaded model version runs (tiny random EfficientNet-Lite0)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ml_platform.learning.finetune import (
    FinetuneConfig,
    LabelledImages,
    ModelName,
    build_model,
    predict_proba,
)
from ml_platform.learning.finetune.architectures import BuiltModel
from ml_platform.learning.finetune.onnx_export import (
    MIN_AGREEMENT,
    Variants,
    drift_check,
    export_variants,
)
from ml_platform.learning.finetune.onnx_runtime import (
    INT8_ARTIFACT,
    ONNX_ARTIFACT,
    VARIANTS_ARTIFACT,
    load_variant,
)
from ml_platform.vision.embedders.backends import Backend

Exported = tuple[BuiltModel, Variants, dict[str, str]]


def coloured(n: int) -> LabelledImages:
    rng = np.random.default_rng(0)
    colours = [(200, 40, 40), (40, 40, 200)]
    images = [Image.fromarray(np.clip(np.asarray(colours[i % 2]) + rng.normal(0, 20, (40, 48, 3)),
                                      0, 255).astype(np.uint8)) for i in range(n)]  # fmt: skip
    return LabelledImages(images, np.arange(n, dtype=np.int64) % 2)


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Exported:
    config = FinetuneConfig(model_name=ModelName.EFFICIENTNET_LITE0, image_size=64,
                            allow_random_weights=True, weights="/nonexistent.pth")  # fmt: skip
    built = build_model(config, 2)
    val = coloured(12)
    directory = tmp_path_factory.mktemp("variants")
    variants = export_variants(built.net.eval(), built.preprocess, val, val.images, directory)
    return built, variants, variants.artifacts(directory)


def test_fp32_onnx_gives_the_networks_probabilities_and_every_check_is_recorded(
    exported: Exported, tmp_path: Path
) -> None:
    built, variants, artifacts = exported
    checks = {c.backend: c for c in variants.checks}
    assert set(checks) == {"torch", "onnx", "onnx-int8"}
    assert checks["onnx"].accepted and checks["onnx"].agreement == 1.0
    assert checks["onnx"].max_probability_change < 1e-4
    assert checks["onnx-int8"].recipe and checks["onnx-int8"].cpu  # the embedders' recipe
    record = json.loads(Path(artifacts[VARIANTS_ARTIFACT]).read_text())
    assert record["served"] == variants.served.value
    assert variants.served in (Backend.ONNX, Backend.ONNX_INT8)
    assert (INT8_ARTIFACT in artifacts) is checks["onnx-int8"].accepted
    fp32 = load_variant({**artifacts, VARIANTS_ARTIFACT: _record(tmp_path, record, "onnx")})
    assert fp32 is not None and fp32.backend is Backend.ONNX
    images = coloured(6).images
    expected = predict_proba(built.net, images, built.preprocess)
    np.testing.assert_allclose(fp32.predict_proba(images, built.preprocess), expected, atol=1e-4)


def test_a_variant_is_run_only_where_its_check_holds(exported: Exported, tmp_path: Path) -> None:
    artifacts = exported[2]
    record = json.loads(Path(artifacts[VARIANTS_ARTIFACT]).read_text())
    assert load_variant({k: v for k, v in artifacts.items() if k != VARIANTS_ARTIFACT}) is None
    assert load_variant({**artifacts, VARIANTS_ARTIFACT: _record(tmp_path, record, "torch")}) \
        is None  # fmt: skip
    if INT8_ARTIFACT not in artifacts:
        pytest.skip("INT8 was refused on this machine's tiny network (recorded, not served)")
    for check in record["checks"]:
        check["cpu"] = "another-cpu" if check["backend"] == "onnx-int8" else check["cpu"]
    elsewhere = load_variant({**artifacts, VARIANTS_ARTIFACT: _record(tmp_path, record,
                                                                       "onnx-int8")})  # fmt: skip
    assert elsewhere is not None and elsewhere.backend is Backend.ONNX  # checked on another CPU
    assert ONNX_ARTIFACT in artifacts


def test_the_drift_check_refuses_disagreement_and_lost_accuracy() -> None:
    labels = np.arange(100, dtype=np.int64) % 2
    reference = np.eye(2, dtype=np.float32)[labels]
    same = drift_check(Backend.ONNX, reference, reference, labels, 1.0)
    assert same.accepted and same.agreement == 1.0 and same.val_accuracy == 1.0
    flipped = reference.copy()
    flipped[:3] = flipped[:3, ::-1]  # 3 of 100 answers change: 0.97 < MIN_AGREEMENT
    changed = drift_check(Backend.ONNX_INT8, flipped, reference, labels, 1.0, min_accuracy=0.99)
    assert not changed.accepted and changed.agreement == pytest.approx(0.97)
    assert changed.agreement < MIN_AGREEMENT
    assert "agreement" in changed.reason and "val accuracy" in changed.reason


def _record(tmp_path: Path, record: dict[str, object], served: str) -> str:
    path = tmp_path / f"variants-{served}.json"
    path.write_text(json.dumps({**record, "served": served}))
    return str(path)
