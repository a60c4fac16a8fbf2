"""Static INT8 recipes for EfficientNet-Lite0, compared on real pet photos.

Quantises ../shared/models/efficientnet_lite0_features.onnx with each recipe (calibration
method, per-channel weights, reduce_range, symmetric activations, which nodes stay fp32),
calibrated on images disjoint from the ones it is judged on, and prints per recipe: the mean
and minimum cosine of INT8 to fp32 embeddings on the pet photos not used for calibration,
and images/s of the model alone (batch 32), alternating with fp32 batch by batch.
Prints; never asserts. The winner is `static_int8.DEFAULT_RECIPE` on a CPU with INT8 dot
products (VNNI); `recipe_for` adds reduce_range on one without. The first line names this
CPU's INT8 class and the recipe the platform uses on it: compare runs on the same class only.

    python benchmarks/int8_recipes.py [--calibration faces|pets-first] [--recipes all|quick]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
from numpy.typing import NDArray
from shared_models import EFFICIENTNET_ONNX, SHARED, efficientnet_embedder

from ml_platform.vision.decode import load_rgb
from ml_platform.vision.embedders.base import l2_normalize
from ml_platform.vision.embedders.calibration import sample_images
from ml_platform.vision.embedders.int8_cpu import this_cpu
from ml_platform.vision.embedders.onnx_memory import session_options
from ml_platform.vision.embedders.static_int8 import (
    CalibrationMethod,
    StaticRecipe,
    platform_recipe,
    quantize_static_recipe,
)

P, E = CalibrationMethod.PERCENTILE, CalibrationMethod.ENTROPY
QUICK = [
    StaticRecipe(keep_first=1),
    StaticRecipe(),
    StaticRecipe(reduce_range=True),
    StaticRecipe(method=P),
    StaticRecipe(method=E),
]
ALL = [
    *QUICK,
    StaticRecipe(keep_first=0, keep_last=0),
    StaticRecipe(keep_first=1, keep_depthwise=True),
    StaticRecipe(keep_first=2),
    StaticRecipe(keep_first=3),
    StaticRecipe(keep_first=9),
    StaticRecipe(keep_last=3),
    StaticRecipe(per_channel=False),
    StaticRecipe(symmetric_activations=True),
]


def pets(first: int) -> tuple[list[Path], list[Path]]:
    """(the first `first` photos of each breed, the others)."""
    calibration, evaluation = [], []
    for breed in sorted(d for d in (SHARED / "data" / "pets").iterdir() if d.is_dir()):
        photos = sorted(breed.glob("*.jpg"))
        calibration += photos[:first]
        evaluation += photos[first:]
    return calibration, evaluation


def run(session: ort.InferenceSession, pixels: NDArray[np.float32]) -> NDArray[np.float32]:
    outputs = [session.run(["embedding"], {"pixel_values": pixels[i : i + 32]})[0]
               for i in range(0, len(pixels), 32)]  # fmt: skip
    return np.concatenate(outputs).astype(np.float32)


def speed(
    int8: ort.InferenceSession, fp32: ort.InferenceSession, pixels: NDArray[np.float32]
) -> tuple[float, float]:
    """(INT8 images/s, INT8 / fp32 speed), the two alternating batch by batch."""
    feed = {"pixel_values": pixels[:32]}
    seconds = {"int8": 0.0, "fp32": 0.0}
    int8.run(["embedding"], feed)
    for _ in range(3):
        for name, model in (("int8", int8), ("fp32", fp32)):
            start = time.perf_counter()
            model.run(["embedding"], feed)
            seconds[name] += time.perf_counter() - start
    return 3 * len(feed["pixel_values"]) / seconds["int8"], seconds["fp32"] / seconds["int8"]


def session(path: Path) -> ort.InferenceSession:
    return ort.InferenceSession(str(path), session_options(), providers=["CPUExecutionProvider"])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--calibration", default="faces", choices=["faces", "pets-first"])
    p.add_argument("--first", type=int, default=2, help="pets-first: photos per breed")
    p.add_argument("--recipes", default="all", choices=["all", "quick"])
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        embedder = efficientnet_embedder(EFFICIENTNET_ONNX, Path(tmp))
        calibration_paths, evaluation = pets(args.first if args.calibration != "faces" else 0)
        if args.calibration == "faces":
            images, source = sample_images(SHARED / "data" / "faces")
        else:
            images = [load_rgb(p) for p in calibration_paths]
            source = f"{len(images)} pet photos (first {args.first} of each breed)"
        sample = embedder.preprocess(images)
        pixels = embedder.preprocess([load_rgb(p) for p in evaluation])
        fp32 = session(EFFICIENTNET_ONNX)
        reference = l2_normalize(run(fp32, pixels))
        print(f"CPU: {this_cpu().label}; the platform's recipe here: {platform_recipe().label}")
        print(f"calibration: {source}; judged on {len(pixels)} other pet photos")
        print("speed: model only, batch 32, alternating with fp32 batch by batch\n")
        for recipe in ALL if args.recipes == "all" else QUICK:
            out = Path(tmp) / "int8.onnx"
            start = time.perf_counter()
            quantize_static_recipe(EFFICIENTNET_ONNX, out, "pixel_values", sample, recipe)
            made = time.perf_counter() - start
            int8 = session(out)
            cosine = (l2_normalize(run(int8, pixels)) * reference).sum(axis=1)
            rate, ratio = speed(int8, fp32, pixels)
            print(
                f"{recipe.label:<52} mean cos {cosine.mean():.4f} min {cosine.min():.4f}  "
                f"{rate:6.1f} img/s (x{ratio:.2f} fp32)  made in {made:.0f}s",
                flush=True,
            )


if __name__ == "__main__":
    main()
