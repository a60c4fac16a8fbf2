"""Face verification on ../shared/data/faces/pairs.csv through the platform.

detect (the platform Detector: YuNet when the model file is present, else Haar) -> the
`prominent_face` crop -> `embed_face_dlib_resnet_v1` (dlib 5 landmarks on the face box,
found again on the box in dlib's own convention, dlib's 150 px chip, ResNet on the chip and its
mirror, averaged, L2-normalised). Distances are Euclidean between unit vectors. The alignment
alternatives below run the network once per face (no mirror).

Prints, never asserts:
- AUC over all pairs, and accuracy on held-out pairs: the pairs are split in two halves
  (stratified, seeded); the threshold is chosen on one half and tested on the other, both ways;
- ms per face for the embedding alone (the face already found): alignment and network apart;
- the same figures for the alignment alternatives: YuNet's own 5 points instead of dlib's,
  and dlib's points found once on YuNet's box (the alignment before the re-seating);
- the same through the real server (uvicorn on 127.0.0.1, `embed` operation over HTTP),
  with its server-side embedding time and whether its vectors equal the in-process ones.

With ``--lfw``: LFW's verification protocol on the folds in ../shared/data/lfw (benchmarks/
lfw.py), the platform's path and its options beside dlib's own reference pipeline in the same
run, and CPU ms per face of each option (benchmarks/face_lfw.py).

    python benchmarks/face_verification.py [--seed 0] [--no-server]
    nice -n 10 python benchmarks/face_verification.py --lfw [--jitters 4 [--jitter-accuracy]]
"""

from __future__ import annotations

import argparse
import base64
import csv
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parent.parent))  # this checkout's ml_platform
from lfw import unit
from serve_latency import ServerThread, free_port, shared_dir

FACE = "embed_face_dlib_resnet_v1"


@dataclass(frozen=True)
class Pair:
    a: str
    b: str
    same: bool


def load_pairs(faces: Path) -> list[Pair]:
    with (faces / "pairs.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    return [Pair(r["file_x"], r["file_y"], r["Decision"] == "Yes") for r in rows]


def halves(pairs: list[Pair], seed: int) -> tuple[list[Pair], list[Pair]]:
    """Two halves with the same share of same-person pairs."""
    rng = np.random.default_rng(seed)
    first: list[Pair] = []
    second: list[Pair] = []
    for same in (True, False):
        group = [p for p in pairs if p.same is same]
        order = rng.permutation(len(group))
        first += [group[i] for i in order[: len(group) // 2]]
        second += [group[i] for i in order[len(group) // 2 :]]
    return first, second


def distances(vectors: dict[str, np.ndarray], pairs: list[Pair]) -> tuple[np.ndarray, np.ndarray]:
    d = np.array([float(np.linalg.norm(vectors[p.a] - vectors[p.b])) for p in pairs])
    return d, np.array([p.same for p in pairs])


def best_threshold(d: np.ndarray, same: np.ndarray) -> float:
    """The distance threshold (same person below it) with the best accuracy on these pairs;
    the middle of the best gap."""
    cuts = np.sort(d)
    candidates = np.concatenate([[cuts[0] - 1e-6], (cuts[1:] + cuts[:-1]) / 2, [cuts[-1] + 1e-6]])
    accuracy = np.array([np.mean((d < t) == same) for t in candidates])
    best = np.flatnonzero(accuracy == accuracy.max())
    return float(candidates[best[len(best) // 2]])


def auc(d: np.ndarray, same: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(same, -d))


def report(label: str, vectors: dict[str, np.ndarray], pairs: list[Pair], seed: int) -> None:
    usable = [p for p in pairs if p.a in vectors and p.b in vectors]
    d, same = distances(vectors, usable)
    a, b = halves(usable, seed)
    folds = []
    for choose, test in ((a, b), (b, a)):
        threshold = best_threshold(*distances(vectors, choose))
        dt, st = distances(vectors, test)
        folds.append((threshold, float(np.mean((dt < threshold) == st))))
    margin = float(d[~same].min() - d[same].max())
    print(
        f"{label:<34} pairs={len(usable):<3} AUC={auc(d, same):.4f}  held-out accuracy="
        + " / ".join(f"{acc:.4f} (t={t:.3f})" for t, acc in folds)
        + f"  mean={np.mean([acc for _, acc in folds]):.4f}  gap={margin:+.3f}"
    )


def platform_crops(faces: Path, names: list[str]) -> dict[str, Image.Image]:
    from ml_platform.domain import DerivativeType
    from ml_platform.vision.crops import crop_for
    from ml_platform.vision.decode import load_rgb
    from ml_platform.vision.detectors import get_detector

    yunet = shared_dir() / "models" / "face_detection_yunet_2023mar.onnx"
    detector = get_detector(yunet_model=yunet if yunet.is_file() else None, person_onnx=None)
    print(f"face detector: {detector.face_detector_name}, person detector: "
          f"{detector.person_detector_name}")  # fmt: skip
    crops = {}
    for name in names:
        image = load_rgb(faces / name)
        crop = crop_for(image, DerivativeType.PROMINENT_FACE, detector.detect(image))
        if crop is None:
            print(f"  no face found in {name}")
        else:
            crops[name] = crop
    return crops


def timed(fn: Callable[[], np.ndarray]) -> tuple[np.ndarray, float, float]:
    """``fn()``, its wall ms and the CPU ms of this process (others' load does not count)."""
    start, cpu = time.perf_counter(), time.process_time()
    out = fn()
    return out, (time.perf_counter() - start) * 1000, (time.process_time() - cpu) * 1000


def platform_vectors(crops: dict[str, Image.Image]) -> dict[str, np.ndarray]:
    from ml_platform.vision.embedders import EmbedderOptions, build_embedder

    embedder = build_embedder(FACE, EmbedderOptions())
    embedder.embed([next(iter(crops.values()))])  # warm up
    vectors, wall, cpu = {}, [], []
    for name, crop in crops.items():
        chips, align_wall, align_cpu = timed(lambda: embedder.preprocess([crop]))  # noqa: B023
        vector, net_wall, net_cpu = timed(lambda: embedder.embed_preprocessed(chips))  # noqa: B023
        vectors[name] = vector[0]
        wall.append((align_wall, net_wall))
        cpu.append((align_cpu, net_cpu))
    print(f"ms per face, embedding only ({len(wall)} faces; cpus {os.cpu_count()}, "
          f"load average {os.getloadavg()[0]:.2f}):")  # fmt: skip
    for label, ms in (("wall", wall), ("cpu", cpu)):
        total = [a + n for a, n in ms]
        print(
            f"  {label:<4} median {statistics.median(total):6.1f} (align "
            f"{statistics.median(a for a, _ in ms):5.1f} + network "
            f"{statistics.median(n for _, n in ms):6.1f}), max {max(total):6.1f}"
        )
    return vectors


def yunet_vectors(crops: dict[str, Image.Image]) -> dict[str, np.ndarray]:
    """YuNet's own 5 points (eye centres, nose tip, mouth corners) instead of dlib's, warped
    onto the ArcFace reference carried into dlib's chip by the eye centres."""
    import cv2

    from ml_platform.vision.faces.align import (
        align,
        apply_transform,
        arcface_reference,
        dlib_chip_reference,
        similarity_transform,
    )
    from ml_platform.vision.faces.model_files import FaceModelFile, load_model

    dlib_ref = dlib_chip_reference()
    eyes_dlib = np.stack([dlib_ref[2:4].mean(0), dlib_ref[0:2].mean(0)])
    arcface = arcface_reference()
    reference = apply_transform(similarity_transform(arcface[:2], eyes_dlib), arcface)
    model = str(shared_dir() / "models" / "face_detection_yunet_2023mar.onnx")
    yunet = cv2.FaceDetectorYN.create(model, "", (320, 320), 0.5, 0.3, 5000)
    net = load_model(FaceModelFile.RESNET_V1)
    vectors = {}
    for name, crop in crops.items():
        rgb = np.asarray(crop, dtype=np.uint8)
        yunet.setInputSize((rgb.shape[1], rgb.shape[0]))
        _, found = yunet.detect(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        if found is None:
            continue
        points = max(found, key=lambda row: row[14])[4:14].reshape(5, 2).astype(np.float64)
        chip = align(rgb, points, reference, 150, 150)
        vectors[name] = unit(np.asarray(net.compute_face_descriptor(chip)))
    return vectors


def dlib_chip_vectors(crops: dict[str, Image.Image]) -> dict[str, np.ndarray]:
    """dlib's points found once on the YuNet face box (no re-seating) + get_face_chip."""
    import dlib

    from ml_platform.vision.faces.landmarks import crop_face_box
    from ml_platform.vision.faces.model_files import FaceModelFile, load_model

    predictor = load_model(FaceModelFile.LANDMARKS_5)
    net = load_model(FaceModelFile.RESNET_V1)
    vectors = {}
    for name, crop in crops.items():
        rgb = np.ascontiguousarray(np.asarray(crop, dtype=np.uint8))
        box = crop_face_box(rgb)
        rect = dlib.rectangle(round(box.x0), round(box.y0), round(box.x1), round(box.y1))
        chip = dlib.get_face_chip(rgb, predictor(rgb, rect))
        vectors[name] = unit(np.asarray(net.compute_face_descriptor(chip)))
    return vectors


def server_vectors(faces: Path, names: list[str]) -> dict[str, np.ndarray]:
    """The real app on 127.0.0.1: one `embed` request per photo (the full JPEG file)."""
    import httpx

    from ml_platform.serving import ServeOptions, create_app
    from ml_platform.settings import Settings

    yunet = shared_dir() / "models" / "face_detection_yunet_2023mar.onnx"
    with tempfile.TemporaryDirectory(prefix="face-verification-") as tmp:
        settings = Settings(home=Path(tmp), mlflow_tracking_uri=f"sqlite:///{tmp}/mlflow.db",
                            yunet_model=yunet if yunet.is_file() else None)  # fmt: skip
        app = create_app(settings, ServeOptions(refresh_interval_s=30.0))
        server = ServerThread(app, free_port())
        server.start()
        try:
            with httpx.Client(base_url=server.url, timeout=120.0) as client:
                return _embed_over_http(client, faces, names)
        finally:
            server.stop()


def _embed_over_http(client: object, faces: Path, names: list[str]) -> dict[str, np.ndarray]:
    operation = {"type": "embed", "embedding_type": FACE, "target": "prominent_face"}
    vectors, embed_ms, latency = {}, [], []
    for name in names:
        body = {"image_base64": base64.b64encode((faces / name).read_bytes()).decode(),
                "operations": [operation]}  # fmt: skip
        start = time.perf_counter()
        response = client.post("/v1/analyze", json=body)  # type: ignore[attr-defined]
        latency.append((time.perf_counter() - start) * 1000)
        payload = response.json()
        outcome = payload["results"][0]
        if outcome.get("result") is None:
            print(f"  server: {name}: {outcome.get('error')}")
            continue
        vectors[name] = np.asarray(outcome["result"]["vector"], dtype=np.float32)
        embed_ms.append(payload["timings_ms"]["embedding_ms"])
    print(f"server: {len(vectors)} faces; server-side embedding median "
          f"{statistics.median(embed_ms[1:] or embed_ms):.1f} ms (first, with model load: "
          f"{embed_ms[0]:.0f} ms); request latency median {statistics.median(latency):.0f} ms "
          "(upload, decode, detection included)")  # fmt: skip
    return vectors


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-server", action="store_true")
    parser.add_argument("--lfw", action="store_true", help="LFW's protocol on ../shared/data/lfw")
    parser.add_argument("--folds", type=int, help="only the first FOLDS LFW folds (>= 2)")
    jitters = "with --lfw: also dlib's num_jitters=N on the platform's chips (ms, spread)"
    parser.add_argument("--jitters", type=int, default=0, help=jitters)
    parser.add_argument("--jitter-accuracy", action="store_true", help="and its LFW accuracy")
    args = parser.parse_args()
    if args.lfw:
        from face_lfw import run_lfw

        run_lfw(args.folds, args.jitters, args.jitter_accuracy)
        return
    faces = shared_dir() / "data" / "faces"
    if not (faces / "pairs.csv").is_file():
        raise SystemExit(f"{faces}/pairs.csv not found (set ML_PLATFORM_SHARED_DIR)")
    pairs = load_pairs(faces)
    names = sorted({p.a for p in pairs} | {p.b for p in pairs})
    print(f"{len(pairs)} pairs ({sum(p.same for p in pairs)} same person) over {len(names)} photos")
    crops = platform_crops(faces, names)
    ours = platform_vectors(crops)
    print()
    report("platform (dlib 5 points re-seated)", ours, pairs, args.seed)
    report("YuNet's 5 points instead", yunet_vectors(crops), pairs, args.seed)
    reference = dlib_chip_vectors(crops)
    report("dlib 5 points on YuNet's box, once", reference, pairs, args.seed)
    agreement = [float(ours[n] @ reference[n]) for n in ours]
    print(f"{'':34} cosine(platform, once) min {min(agreement):.4f} "
          f"mean {np.mean(agreement):.4f}")  # fmt: skip
    if not args.no_server:
        print()
        served = server_vectors(faces, names)
        report("server `embed` over HTTP", served, pairs, args.seed)
        diff = max(float(np.abs(served[n] - ours[n]).max()) for n in served if n in ours)
        print(f"{'':34} max |server - in-process| component difference: {diff:.2e}")


if __name__ == "__main__":
    main()
