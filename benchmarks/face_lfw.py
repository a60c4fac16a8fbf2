"""LFW's verification protocol through the platform's face path, its view sets, and dlib's own
reference pipeline, in one run (``python benchmarks/face_verification.py --lfw``).

Platform: the Detector (YuNet, the HOG person detector), the `prominent_face` crop, the
`embed_face_dlib_resnet_v1` embedder (what `serve`'s embed operation calls). Each photo's chip
is cut once; every view of every set in `faces.views.VIEW_SETS` goes through the network
(`DlibFaceEmbedder.descriptors`) and is cached as a unit vector under the chip's code and the
view's parameters, so each view is computed once. A view set's option is the unit mean of its
views (what `embed_preprocessed` returns; `embedder.embed` is checked equal to the default's
option on the first photos, and a few photos' views are recomputed and checked against the
cache). With ``--jitters N``: dlib's random ``num_jitters=N`` on the same chip, its ms per face
and how far two calls on one chip land apart (its LFW accuracy only with ``--jitter-accuracy``).
Euclidean and cosine distances rank unit vectors alike (d^2 = 2 - 2 cos): one figure.

The rule choosing the view set (written before any LFW run of the new views):
- candidates, cheapest first: `mirror` (2 views, the default before), `zoom4` (4), `turn8` (8);
- each is scored on the pairs of folds 1-3 alone, each fold's threshold chosen on the other
  two of those folds; folds 4-5 take no part in the choice;
- the best is the highest mean accuracy; the cheapest candidate whose mean is within one
  standard error of the best (the paired fold difference to the best, best - it <= its
  standard error over the 3 folds) is chosen;
- folds 4-5 are the check: their accuracy in the protocol (threshold from the other 4 folds),
  printed beside the choice.

dlib's reference: its python example face_recognition.py (`get_frontal_face_detector`
upsampling once, the 5-point predictor, `compute_face_descriptor` with its defaults: 150 px
chip, padding 0.25, no jitter; of several faces the most central, where LFW puts the person).
"""

from __future__ import annotations

import logging
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from lfw import (
    JsonCache,
    LfwPair,
    Pipeline,
    Vector,
    cached_vectors,
    load_lfw_pairs,
    paired_difference,
    photos_of,
    score_folds,
    source_key,
    summary,
    unit,
)
from PIL import Image
from serve_latency import shared_dir

FACE = "embed_face_dlib_resnet_v1"
REPO = Path(__file__).resolve().parent.parent
PLATFORM_SOURCES = [
    *sorted((REPO / "ml_platform" / "vision" / "faces").glob("*.py")),
    *sorted((REPO / "ml_platform" / "vision" / "detectors").glob("*.py")),
    REPO / "ml_platform" / "vision" / "embedders" / "dlib_face.py",
    REPO / "ml_platform" / "vision" / "crops.py",
]
DETECTOR_SOURCES = [
    *sorted((REPO / "ml_platform" / "vision" / "detectors").glob("*.py")),
    REPO / "ml_platform" / "vision" / "decode.py",
]
CHECKED = 20  # photos on which `embedder.embed` is compared with the mirror-average option
TIMED = 40  # photos on which each option's ms per face is measured, the options interleaved


@dataclass
class PlatformPath:
    """What `serve` does for `prominent_face`, one photo at a time: the Detector's face box
    (cached under the detector's code), `crop_for`, the embedder's chip."""

    embedder: Any
    crop: Callable[[Path], Image.Image | None]

    def chip(self, path: Path) -> np.ndarray | None:
        """The aligned chip [1, 150, 150, 3] of the photo's face (None: no face)."""
        found = self.crop(path)
        return None if found is None else np.asarray(self.embedder.preprocess([found]))


def platform_path() -> PlatformPath:
    from ml_platform.domain import Box, DerivativeType
    from ml_platform.vision.crops import crop_for
    from ml_platform.vision.decode import load_rgb
    from ml_platform.vision.detectors import DetectionResult, get_detector
    from ml_platform.vision.embedders import EmbedderOptions, build_embedder

    yunet = shared_dir() / "models" / "face_detection_yunet_2023mar.onnx"
    detector = get_detector(yunet_model=yunet if yunet.is_file() else None, person_onnx=None)
    embedder = build_embedder(FACE, EmbedderOptions())
    boxes = JsonCache(f"faces_{detector.face_detector_name}_{source_key(*DETECTOR_SOURCES)}")
    print(f"platform: face detector {detector.face_detector_name}, person detector "
          f"{detector.person_detector_name}, embedder {embedder!r}")  # fmt: skip

    def detect(image: Image.Image) -> list[float] | None:
        face = detector.detect(image).face
        return None if face is None else [face.x0, face.y0, face.x1, face.y1, face.score]

    def crop(path: Path) -> Image.Image | None:
        image = load_rgb(path)
        face = boxes.get(str(path), lambda: detect(image))
        box = None if face is None else Box(*face)  # type: ignore[misc]
        result = DetectionResult(None, box, detector.person_detector_name, "", 0)
        return crop_for(image, DerivativeType.PROMINENT_FACE, result)

    return PlatformPath(embedder, crop)


def view_pipeline(path: PlatformPath, mirrored: bool) -> Pipeline:
    """Photo -> the unit descriptor of its chip (or of the chip's mirror): one view of
    `DlibFaceEmbedder.view_descriptors`, the network run once."""
    from ml_platform.vision.embedders import EmbedderOptions
    from ml_platform.vision.embedders.dlib_face import DlibFaceEmbedder

    single = DlibFaceEmbedder(EmbedderOptions(), mirror=False)

    def run(photo: Path) -> Vector | None:
        pixels = path.chip(photo)
        if pixels is None:
            return None
        chip = np.ascontiguousarray(pixels[:, :, ::-1]) if mirrored else pixels
        return unit(single.view_descriptors(chip)[0, 0])

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


Vectors = dict[str, Vector | None]


def derive(vectors: Vectors, fn: Callable[[Vector], Vector]) -> Vectors:
    return {n: None if v is None else fn(v) for n, v in vectors.items()}


def options_of(plain: Vectors, mirror: Vectors) -> dict[str, Vectors]:
    """The options read from each photo's two views (unit vectors)."""
    both = {n: None if v is None or mirror[n] is None else (v, mirror[n]) for n, v in plain.items()}
    return {
        "platform, plain chip (before)": plain,
        "platform, mirror average (now)": {
            n: None if p is None else unit(p[0] + p[1]) for n, p in both.items()
        },
        "  the mirrored chip alone": mirror,
    }


def check_default(option: Vectors, path: PlatformPath, lfw: Path) -> None:
    """`embedder.embed` (what `serve` runs) against the mirror-average option."""
    names = [n for n, v in option.items() if v is not None][:CHECKED]
    diffs = []
    for name in names:
        vector, crop = option[name], path.crop(lfw / name)
        assert vector is not None and crop is not None
        served = path.embedder.embed([crop])[0]
        diffs.append(float(np.abs(served - vector).max()))
    print(f"embedder.embed vs the mirror-average option on {len(names)} photos: max component "
          f"difference {max(diffs):.1e}")  # fmt: skip


def time_options(names: list[str], path: PlatformPath, jitters: int, lfw: Path) -> None:
    """CPU ms per face (this process only) for each option, on the same chips, interleaved."""
    from ml_platform.vision.embedders import EmbedderOptions
    from ml_platform.vision.embedders.dlib_face import DlibFaceEmbedder
    from ml_platform.vision.faces.model_files import FaceModelFile, load_model

    net = load_model(FaceModelFile.RESNET_V1)
    runs: dict[str, Callable[[np.ndarray], object]] = {
        "plain": DlibFaceEmbedder(EmbedderOptions(), mirror=False).embed_preprocessed,
        "mirror average": DlibFaceEmbedder(EmbedderOptions(), mirror=True).embed_preprocessed,
    }
    if jitters > 1:
        runs[f"dlib num_jitters={jitters}"] = lambda c: net.compute_face_descriptor(c[0], jitters)
    ms: dict[str, list[float]] = {"crop + landmarks + chip": [], **{k: [] for k in runs}}
    for name in names[:TIMED]:
        start = time.process_time()
        pixels = path.chip(lfw / name)
        ms["crop + landmarks + chip"].append((time.process_time() - start) * 1000)
        for label, run in runs.items():
            start = time.process_time()
            if pixels is not None:
                run(pixels)
            ms[label].append((time.process_time() - start) * 1000)
    print(
        f"CPU ms per face, median over {len(names[:TIMED])} LFW photos (this process): "
        + ", ".join(f"{label} {statistics.median(v):.1f}" for label, v in ms.items())
    )


def reference_gap(platform: Vectors, reference: Vectors) -> None:
    both = [n for n, v in platform.items() if v is not None and reference.get(n) is not None]
    gaps = [float(np.linalg.norm(platform[n] - reference[n])) for n in both]  # type: ignore[operator]
    print(f"distance of the platform's plain vector to the reference's, same photo: mean "
          f"{np.mean(gaps):.4f}, median {np.median(gaps):.4f} ({len(both)} photos)")  # fmt: skip


def jitter_spread(names: list[str], path: PlatformPath, jitters: int, lfw: Path) -> None:
    """Distance between two ``num_jitters`` calls on the same chip, beside the distance between
    the plain and the mirror-average vector of that chip."""
    from ml_platform.vision.faces.model_files import FaceModelFile, load_model

    net, run = load_model(FaceModelFile.RESNET_V1), jitter_pipeline(path, jitters)
    repeat, mirror = [], []
    for name in names[:TIMED]:
        pixels, first, second = path.chip(lfw / name), run(lfw / name), run(lfw / name)
        if pixels is None or first is None or second is None:
            continue
        repeat.append(float(np.linalg.norm(unit(first) - unit(second))))
        plain = unit(np.asarray(net.compute_face_descriptor(pixels[0])))
        mirror.append(float(np.linalg.norm(plain - path.embedder.embed_preprocessed(pixels)[0])))
    print(f"dlib num_jitters={jitters}, two calls on the same chip: distance median "
          f"{statistics.median(repeat):.4f}, max {max(repeat):.4f} (plain to mirror average: "
          f"median {statistics.median(mirror):.4f}; {len(repeat)} LFW photos)")  # fmt: skip


def run_lfw(folds: int | None, jitters: int, jitter_accuracy: bool) -> None:
    import dlib

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    lfw = shared_dir() / "data" / "lfw"
    if not (lfw / "pairs.txt").is_file():
        raise SystemExit(f"{lfw}/pairs.txt not found (set ML_PLATFORM_SHARED_DIR)")
    pairs = [p for p in load_lfw_pairs(lfw) if folds is None or p.fold < folds]
    names = photos_of(pairs)
    print(f"LFW: {len(pairs)} pairs in {len(set(p.fold for p in pairs))} folds over "
          f"{len(names)} photos; threshold chosen on the other folds; mean ± std over folds; "
          "a pair with a photo without a face counts as an error")  # fmt: skip
    path = platform_path()
    key = source_key(*PLATFORM_SOURCES)
    plain = cached_vectors("platform_plain", key, lfw, names, view_pipeline(path, False))
    mirror = cached_vectors("platform_mirror", key, lfw, names, view_pipeline(path, True))
    results = options_of(plain, mirror)
    if jitters > 1 and jitter_accuracy:
        jittered = cached_vectors(f"platform_jitter{jitters}", key, lfw, names,
                                  jitter_pipeline(path, jitters))  # fmt: skip
        results[f"  plain chip, dlib num_jitters={jitters}"] = derive(jittered, unit)
    reference = cached_vectors("dlib", source_key(extra=f"dlib {dlib.__version__} v1"), lfw,
                               names, dlib_reference_pipeline())  # fmt: skip
    results["dlib reference (HOG + 5 points + chip)"] = reference
    report(results, pairs)
    reference_gap(results["platform, plain chip (before)"], reference)
    check_default(results["platform, mirror average (now)"], path, lfw)
    time_options(names, path, jitters, lfw)
    if jitters > 1:
        jitter_spread(names, path, jitters, lfw)


def report(results: dict[str, dict[str, Vector | None]], pairs: list[LfwPair]) -> None:
    scores = {label: score_folds(vectors, pairs) for label, vectors in results.items()}
    for label, score in scores.items():
        print(summary(label, score))
    base = scores["platform, plain chip (before)"]
    print("paired over folds against the plain chip (mean difference ± standard error):")
    for label, score in scores.items():
        print(f"  {label:<40} {paired_difference(score, base)}")
    found = [p for p in pairs if all(v[p.a] is not None and v[p.b] is not None
                                     for v in results.values())]  # fmt: skip
    print(f"the {len(found)} pairs whose faces every pipeline found:")
    for label, vectors in results.items():
        print(summary(f"  {label}", score_folds(vectors, found)))
    for label, vectors in results.items():
        missing = [n for n, v in vectors.items() if v is None]
        print(f"{label}: {len(missing)} photos without a face: {', '.join(missing) or '-'}")
