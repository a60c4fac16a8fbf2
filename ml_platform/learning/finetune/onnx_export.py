"""A fine-tuned network's ONNX Runtime variants, made and checked once, at registration.

`export_variants` traces the network to ONNX (fp32) and quantises it to static INT8 with the
embedders' CPU-class recipe (`vision.embedders.static_int8.platform_recipe`), then checks
each variant on the validation split against the network it replaces (the drift check):

- fp32 ONNX against torch, INT8 against fp32 ONNX: top-1 agreement >= `MIN_AGREEMENT`;
- INT8 also keeps its validation accuracy within `MAX_ACCURACY_DROP` of fp32's.

The variant served is the first accepted in the embedders' CPU order (INT8, ONNX, torch:
`backends.CPU_PREFERENCE`, as benchmarks/embed_throughput.py and benchmarks/predict_throughput.py
measure them). Every check (agreement, accuracies, largest probability change, batch-1 speed
on this machine, recipe, CPU class) is recorded in `VARIANTS_ARTIFACT` beside the models.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from ml_platform.learning.finetune.evaluation import LabelledImages, pixel_batches, predict_proba
from ml_platform.learning.finetune.net import ClassifierNet
from ml_platform.learning.finetune.onnx_runtime import (
    INT8_ARTIFACT,
    ONNX_ARTIFACT,
    VARIANTS_ARTIFACT,
    OnnxClassifier,
)
from ml_platform.vision.embedders.backends import CPU_PREFERENCE, Backend
from ml_platform.vision.embedders.export import INPUT_NAME, export_onnx, quantize_static_int8
from ml_platform.vision.embedders.int8_cpu import this_cpu
from ml_platform.vision.embedders.static_int8 import platform_recipe
from ml_platform.vision.preprocess import PreprocessSpec

MIN_AGREEMENT = 0.98  # top-1 agreement with the network the variant replaces, on val
MAX_ACCURACY_DROP = 0.01  # INT8's validation accuracy may lose at most this against fp32
CALIBRATION_IMAGES = 64
SPEED_IMAGES = 16


@dataclass(frozen=True)
class VariantCheck:
    """One variant's drift check on the validation split."""

    backend: str
    accepted: bool
    val_accuracy: float
    agreement: float  # top-1 agreement with the reference (torch for fp32, fp32 for INT8)
    max_probability_change: float
    images_per_second: float  # batch 1, on the registering machine (a record, not a choice)
    reason: str = ""
    recipe: str = ""
    cpu: str = ""


@dataclass(frozen=True)
class Variants:
    """The served variant and every check; `files` are the accepted ONNX models by artifact."""

    served: Backend
    checks: tuple[VariantCheck, ...]
    files: dict[str, Path]

    def record(self) -> str:
        return json.dumps({"served": self.served.value, "checks": [asdict(c) for c in
                           self.checks]}, indent=2, sort_keys=True)  # fmt: skip

    def artifacts(self, directory: Path) -> dict[str, str]:
        """What to log beside the weights: the accepted models and the checks' record."""
        record = directory / "variants.json"
        record.write_text(self.record())
        return {**{k: str(v) for k, v in self.files.items()}, VARIANTS_ARTIFACT: str(record)}

    def metrics(self) -> dict[str, float]:
        return {f"{c.backend}_{k}": float(getattr(c, k)) for c in self.checks
                for k in ("val_accuracy", "agreement", "images_per_second")}  # fmt: skip


def export_variants(
    net: ClassifierNet,
    spec: PreprocessSpec,
    val: LabelledImages,
    calibration: Sequence[Image.Image],
    directory: Path,
) -> Variants:
    """fp32 ONNX and static INT8 of `net` in `directory`, checked on `val`."""
    net.eval()
    reference = predict_proba(net, val.images, spec)
    torch_check = drift_check(Backend.TORCH, reference, reference, val.labels, _speed(
        lambda im: predict_proba(net, im, spec), val.images))  # fmt: skip
    fp32_path = directory / "model.onnx"
    export_onnx(net, lambda m, x: m(x), (3, spec.crop_height, spec.crop_width), fp32_path)
    fp32 = OnnxClassifier(fp32_path, Backend.ONNX)
    fp32_check = _run_check(fp32, spec, val, reference)
    checks, files = [torch_check, fp32_check], {ONNX_ARTIFACT: fp32_path}
    if fp32_check.accepted:
        int8_check, int8_path = _int8(fp32_path, spec, val, calibration, fp32_check)
        checks.append(int8_check)
        if int8_check.accepted:
            files[INT8_ARTIFACT] = int8_path
    else:
        files = {}
    accepted = {Backend(c.backend) for c in checks if c.accepted}
    served = next(b for b in CPU_PREFERENCE if b in accepted)
    return Variants(served, tuple(checks), files)


def _int8(
    fp32_path: Path,
    spec: PreprocessSpec,
    val: LabelledImages,
    calibration: Sequence[Image.Image],
    fp32_check: VariantCheck,
) -> tuple[VariantCheck, Path]:
    sample = np.concatenate([b.numpy() for b in pixel_batches(calibration[:CALIBRATION_IMAGES],
                                                               spec)])  # fmt: skip
    out = fp32_path.with_name("model-int8.onnx")
    quantize_static_int8(fp32_path, out, INPUT_NAME, sample)  # the embedders' recipe
    int8 = OnnxClassifier(out, Backend.ONNX_INT8)
    fp32 = OnnxClassifier(fp32_path, Backend.ONNX).predict_proba(val.images, spec)
    check = _run_check(int8, spec, val, fp32, fp32_check.val_accuracy - MAX_ACCURACY_DROP)
    return replace(check, recipe=platform_recipe().label, cpu=this_cpu().label), out


def _run_check(
    model: OnnxClassifier,
    spec: PreprocessSpec,
    val: LabelledImages,
    reference: NDArray[np.float32],
    min_accuracy: float | None = None,
) -> VariantCheck:
    probabilities = model.predict_proba(val.images, spec)
    speed = _speed(lambda im: model.predict_proba(im, spec), val.images)
    return drift_check(model.backend, probabilities, reference, val.labels, speed, min_accuracy)


def drift_check(
    backend: Backend,
    probabilities: NDArray[np.float32],
    reference: NDArray[np.float32],
    labels: NDArray[np.int64],
    speed: float,
    min_accuracy: float | None = None,
) -> VariantCheck:
    """Accepted when top-1 agreement with `reference` is >= MIN_AGREEMENT and (given
    `min_accuracy`) the accuracy on `labels` is at least that."""
    agreement = float((probabilities.argmax(1) == reference.argmax(1)).mean())
    accuracy = float((probabilities.argmax(1) == labels).mean())
    problems = [f"top-1 agreement {agreement:.4f} < {MIN_AGREEMENT}"] * (agreement < MIN_AGREEMENT)
    if min_accuracy is not None and accuracy < min_accuracy:
        problems.append(f"val accuracy {accuracy:.4f} < fp32's - {MAX_ACCURACY_DROP}")
    change = float(np.abs(probabilities - reference).max()) if len(labels) else 0.0
    return VariantCheck(backend.value, not problems, accuracy, agreement, change, speed,
                        "; ".join(problems))  # fmt: skip


def _speed(predict: object, images: Sequence[Image.Image]) -> float:
    """Images per second, one image a call (as `/v1/predict` runs them)."""
    sample = list(images[:SPEED_IMAGES])
    if not sample:
        return 0.0
    assert callable(predict)
    predict(sample[:1])  # warm up
    started = time.perf_counter()
    for image in sample:
        predict([image])
    return len(sample) / max(time.perf_counter() - started, 1e-9)
