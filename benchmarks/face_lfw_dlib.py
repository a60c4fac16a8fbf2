"""dlib's own LFW pipelines beside the platform's (benchmarks/face_lfw.py): its python example's
reference pipeline, and its random ``num_jitters`` on the platform's chip (not reproducible: its
seed cannot be set, so it is measured, not offered)."""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from lfw import Pipeline, Vector, unit
from PIL import Image

if TYPE_CHECKING:
    from face_lfw import PlatformPath

TIMED = 40  # photos on which the jitter's spread is measured


def dlib_reference_pipeline() -> Pipeline:
    """dlib's python example face_recognition.py on one photo (the most central face)."""
    import dlib

    from ml_platform.vision.faces.model_files import FaceModelFile, load_model

    detector = dlib.get_frontal_face_detector()
    predictor = load_model(FaceModelFile.LANDMARKS_5)
    net = load_model(FaceModelFile.RESNET_V1)

    def run(path: Path) -> Vector | None:
        rgb = np.asarray(Image.open(path).convert("RGB"), dtype=np.uint8)
        faces = detector(rgb, 1)
        if not len(faces):
            return None
        cx, cy = rgb.shape[1] / 2, rgb.shape[0] / 2
        face = min(faces, key=lambda r: (r.center().x - cx) ** 2 + (r.center().y - cy) ** 2)
        return unit(np.asarray(net.compute_face_descriptor(rgb, predictor(rgb, face))))

    return run


def jitter_pipeline(path: PlatformPath, jitters: int) -> Pipeline:
    """Photo -> dlib's ``num_jitters`` raw descriptor of the platform's chip."""
    from ml_platform.vision.faces.model_files import FaceModelFile, load_model

    net = load_model(FaceModelFile.RESNET_V1)

    def run(photo: Path) -> Vector | None:
        pixels = path.chip(photo)
        if pixels is None:
            return None
        return np.asarray(net.compute_face_descriptor(pixels[0], jitters), np.float32)

    return run


def jitter_spread(names: list[str], path: PlatformPath, jitters: int, lfw: Path) -> None:
    """Distance between two ``num_jitters`` calls on the same chip, beside the distance between
    the one-run vector and the default's vector of that chip."""
    from ml_platform.vision.faces.model_files import FaceModelFile, load_model

    net, run = load_model(FaceModelFile.RESNET_V1), jitter_pipeline(path, jitters)
    repeat, default = [], []
    for name in names[:TIMED]:
        pixels, first, second = path.chip(lfw / name), run(lfw / name), run(lfw / name)
        if pixels is None or first is None or second is None:
            continue
        repeat.append(float(np.linalg.norm(unit(first) - unit(second))))
        plain = unit(np.asarray(net.compute_face_descriptor(pixels[0])))
        default.append(float(np.linalg.norm(plain - path.embedder.embed_preprocessed(pixels)[0])))
    print(f"dlib num_jitters={jitters}, two calls on the same chip: distance median "
          f"{statistics.median(repeat):.4f}, max {max(repeat):.4f} (one run to the default: "
          f"median {statistics.median(default):.4f}; {len(repeat)} LFW photos)")  # fmt: skip
