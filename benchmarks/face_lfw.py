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
  `turn8` (zoom4 + the zoomed chip turned by +-2 degrees, mirrored) was dropped at 23:58 UTC,
  before any accuracy was computed, when the shared machine's load made its 6 new views run
  at 2.4 s a photo; restored at 00:05, still before any accuracy was seen, when the load fell
  (0.3 s a photo). If its views are not all computed by 01:05 UTC it is dropped again (for
  the time, not for its figures) and the choice is between `mirror` and `zoom4`;
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
from face_lfw_dlib import dlib_reference_pipeline, jitter_pipeline, jitter_spread
from face_lfw_report import choose_view_set, reference_gap, report
from lfw import (
    JsonCache,
    Vector,
    ViewsPipeline,
    cached_vectors,
    cached_views,
    load_lfw_pairs,
    photos_of,
    source_key,
    unit,
)
from PIL import Image
from serve_latency import shared_dir

FACE = "embed_face_dlib_resnet_v1"
REPO = Path(__file__).resolve().parent.parent
VISION = REPO / "ml_platform" / "vision"
DETECTOR_SOURCES = [*sorted((VISION / "detectors").glob("*.py")), VISION / "decode.py"]
# The code that cuts a photo's chip (a view's cache key adds the view's parameters).
CHIP_SOURCES = [
    *DETECTOR_SOURCES,
    *(VISION / "faces" / f for f in ("align.py", "landmarks.py", "model_files.py")),
    VISION / "crops.py",
]
CHECKED = 20  # photos on which `embedder.embed` is compared with the default's option
RECOMPUTED = 5  # photos whose views are recomputed and compared with the cache
TIMED = 40  # photos on which each option's ms per face is measured, the options interleaved
Vectors = dict[str, Vector | None]


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


def all_views() -> dict[str, Any]:
    """Every view of every set, by cache label."""
    from ml_platform.vision.faces.views import VIEW_SETS

    return {f"platform_view_{v.name}": v for views in VIEW_SETS.values() for v in views}


def views_pipeline(path: PlatformPath) -> ViewsPipeline:
    """Photo -> the unit descriptors of the asked views of its chip (the chip cut once, one
    network call)."""
    from ml_platform.vision.faces.views import view_chip

    views = all_views()

    def run(photo: Path, labels: list[str]) -> dict[str, Vector | None]:
        pixels = path.chip(photo)
        if pixels is None:
            return {label: None for label in labels}
        raw = path.embedder.descriptors([view_chip(pixels[0], views[lb]) for lb in labels])
        return {label: unit(r) for label, r in zip(labels, raw, strict=True)}

    return run


def view_vectors(path: PlatformPath, lfw: Path, names: list[str]) -> dict[str, Vectors]:
    """Each view's unit vectors, by view name (cached under the chip's code and the view)."""
    import dlib

    keys = {lb: source_key(*CHIP_SOURCES, extra=f"{v!r} dlib {dlib.__version__}")
            for lb, v in all_views().items()}  # fmt: skip
    found = cached_views(keys, lfw, names, views_pipeline(path))
    recompute_check(found, path, lfw, names[:RECOMPUTED])
    return {all_views()[label].name: vectors for label, vectors in found.items()}


def recompute_check(found: dict[str, Vectors], path: PlatformPath, lfw: Path,
                    names: list[str]) -> None:  # fmt: skip
    """The cached views of ``names`` against views computed now (a stale cache shows)."""
    run, diffs = views_pipeline(path), [0.0]
    for name in names:
        fresh = run(lfw / name, list(found))
        diffs += [float(np.abs(fresh[lb] - found[lb][name]).max()) for lb in found
                  if fresh[lb] is not None and found[lb][name] is not None]  # fmt: skip
    print(f"views recomputed on {len(names)} photos vs the cache: max component difference "
          f"{max(diffs):.1e}")  # fmt: skip


def options_of(views: dict[str, Vectors]) -> dict[str, Vectors]:
    """Each view set's option: the unit mean of its views' unit vectors."""
    from ml_platform.vision.faces.views import VIEW_SETS

    options = {}
    for name, members in VIEW_SETS.items():
        per_view = [views[v.name] for v in members]
        options[name] = {
            photo: None if any(p[photo] is None for p in per_view)
            else unit(np.sum([p[photo] for p in per_view], axis=0))
            for photo in per_view[0]
        }  # fmt: skip
    return options


def check_default(options: dict[str, Vectors], path: PlatformPath, lfw: Path) -> None:
    """`embedder.embed` (what `serve` runs) against the option of its view set."""
    option = options[path.embedder.views]
    names = [n for n, v in option.items() if v is not None][:CHECKED]
    diffs = []
    for name in names:
        vector, crop = option[name], path.crop(lfw / name)
        assert vector is not None and crop is not None
        diffs.append(float(np.abs(path.embedder.embed([crop])[0] - vector).max()))
    print(f"embedder.embed ({path.embedder.views}) vs its option on {len(names)} photos: max "
          f"component difference {max(diffs):.1e}")  # fmt: skip


def time_options(names: list[str], path: PlatformPath, jitters: int, lfw: Path) -> None:
    """CPU ms per face (this process only) for each option, on the same chips, interleaved."""
    from ml_platform.vision.embedders import EmbedderOptions
    from ml_platform.vision.embedders.dlib_face import DlibFaceEmbedder
    from ml_platform.vision.faces.model_files import FaceModelFile, load_model
    from ml_platform.vision.faces.views import VIEW_SETS

    net = load_model(FaceModelFile.RESNET_V1)
    runs: dict[str, Callable[[np.ndarray], object]] = {
        name: DlibFaceEmbedder(EmbedderOptions(), views=name).embed_preprocessed
        for name in VIEW_SETS
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
    options = options_of(view_vectors(path, lfw, names))
    choose_view_set(options, pairs)
    if jitters > 1 and jitter_accuracy:
        jittered = cached_vectors(f"platform_jitter{jitters}", source_key(*CHIP_SOURCES), lfw,
                                  names, jitter_pipeline(path, jitters))  # fmt: skip
        options[f"plain chip, dlib num_jitters={jitters}"] = {
            n: None if v is None else unit(v) for n, v in jittered.items()
        }
    reference = cached_vectors("dlib", source_key(extra=f"dlib {dlib.__version__} v1"), lfw,
                               names, dlib_reference_pipeline())  # fmt: skip
    report({**options, "dlib reference (HOG + 5 points + chip)": reference}, pairs)
    reference_gap(options["plain"], reference)
    check_default(options, path, lfw)
    time_options(names, path, jitters, lfw)
    if jitters > 1:
        jitter_spread(names, path, jitters, lfw)
