"""Train one collection classifier per Oxford-IIIT breed on real EfficientNet-Lite0 embeddings.

Each breed is a collection: its photos are positives, every other breed's photos negatives.
`--holdout` photos per breed (3 of 10 by default) are held out of every training set; the
script prints each breed's cross-validated AP (the winner's mean fold AP, and its pooled
out-of-fold AP) and its AP on the held-out photos, then the means. Never asserts.

Embeddings come from `ml_platform.vision.embedders` with a custom ONNX embedding type
(written to a temporary YAML file) for ../shared/models/efficientnet_lite0_features.onnx;
`--check` also runs onnxruntime directly on a few photos and prints the largest difference.
`--backend onnx-int8` trains on the INT8 model's embeddings (static/dynamic by --int8-mode).
`--compare-int8` embeds with fp32 and INT8 and trains on both over `--seeds` held-out splits
(seeds 0..N-1, paired: the same split for both), printing the mean and spread of the AP
change and the mean cosine of INT8 to fp32 embeddings. Calibration is disjoint from every
photo judged: `--calibration faces` (default: the face photos, all 120 pets judged) or
`pets-first` (the first `--calibration-first` photos of each breed calibrate and are left
out of training and evaluation for both backends).

    python benchmarks/train_pets.py [--holdout 3] [--seed 0] [--check]
    python benchmarks/train_pets.py --compare-int8 [--seeds 10] [--calibration faces]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from shared_models import SHARED, efficientnet_embedder
from threadpoolctl import threadpool_limits

from ml_platform.learning.evaluation import evaluate_on
from ml_platform.learning.training import TrainingConfig, TrainingResult, train_classifier
from ml_platform.vision.decode import load_rgb


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--pets-dir", type=Path, default=SHARED / "data" / "pets")
    p.add_argument(
        "--model", type=Path, default=SHARED / "models" / "efficientnet_lite0_features.onnx"
    )
    p.add_argument("--holdout", type=int, default=3, help="held-out photos per breed")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--cv-folds", type=int, default=5)
    p.add_argument("--check", action="store_true", help="compare with onnxruntime directly")
    p.add_argument("--backend", default="onnx", choices=["onnx", "onnx-int8"])
    p.add_argument("--int8-mode", default="auto", choices=["auto", "dynamic", "static"])
    p.add_argument("--compare-int8", action="store_true", help="fp32 and INT8, and the change")
    p.add_argument("--seeds", type=int, default=10, help="--compare-int8: held-out splits")
    p.add_argument("--calibration", default="faces", choices=["faces", "pets-first"])
    p.add_argument("--calibration-first", type=int, default=2, help="pets-first: per breed")
    return p.parse_args()


def embed_all(
    paths: list[Path],
    model: Path,
    workdir: Path,
    backend: str = "onnx",
    int8_mode: str = "auto",
    calibration_dir: Path | None = None,
) -> NDArray[np.float32]:
    embedder = efficientnet_embedder(model, workdir, backend, int8_mode, calibration_dir)
    print(f"embedder {embedder.name}: {embedder.model_id}@{embedder.revision} dim={embedder.dim}")
    return np.asarray(embedder.embed([load_rgb(p) for p in paths]), dtype=np.float32)


def direct_onnx(paths: list[Path], model: Path) -> NDArray[np.float32]:
    """The README's reference preprocessing, run with onnxruntime (for --check)."""
    import onnxruntime as ort
    from PIL import Image, ImageOps

    def pixels(path: Path) -> NDArray[np.float32]:
        image = ImageOps.exif_transpose(Image.open(path)).convert("RGB")
        scale = 256 / min(image.size)
        size = (max(224, round(image.width * scale)), max(224, round(image.height * scale)))
        image = image.resize(size, Image.Resampling.BICUBIC)
        left, top = (image.width - 224) // 2, (image.height - 224) // 2
        crop = np.asarray(image.crop((left, top, left + 224, top + 224)), dtype=np.float32)
        return ((crop - 127.0) / 128.0).transpose(2, 0, 1)

    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    batch = np.stack([pixels(p) for p in paths])
    return np.asarray(session.run(["embedding"], {"pixel_values": batch})[0], dtype=np.float32)


def holdout_mask(breeds: NDArray[np.str_], holdout: int, seed: int) -> NDArray[np.bool_]:
    """`holdout` random photos of every breed are True (held out)."""
    rng = np.random.default_rng(seed)
    mask = np.zeros(breeds.shape[0], dtype=bool)
    for breed in np.unique(breeds):
        rows = np.flatnonzero(breeds == breed)
        mask[rng.choice(rows, size=holdout, replace=False)] = True
    return mask


def report(breed: str, result: TrainingResult, held_out_ap: float, held_out_f1: float) -> None:
    best = result.winner_metrics
    others = " ".join(f"{m.name.value}={m.average_precision_mean:.3f}" for m in result.candidates)
    print(
        f"{breed:28s} {result.winner.value:22s} cv_ap={best.average_precision_mean:.3f}"
        f"+/-{best.average_precision_std:.3f} oof_ap={best.out_of_fold.average_precision:.3f} "
        f"held_out_ap={held_out_ap:.3f} held_out_f1={held_out_f1:.3f} "
        f"thr={result.threshold:.3f} [{others}]"
    )


def evaluate(
    X: NDArray[np.float32],
    breeds: NDArray[np.str_],
    args: argparse.Namespace,
    seed: int,
    verbose: bool = True,
) -> tuple[float, float, float]:
    """Train one classifier per breed; mean (cv AP, out-of-fold AP, held-out AP)."""
    held_out = holdout_mask(breeds, args.holdout, seed)
    config = TrainingConfig(cv_folds=args.cv_folds, seed=seed)
    cv_aps, oof_aps, held_aps = [], [], []
    start = time.perf_counter()
    for breed in np.unique(breeds):
        y = (breeds == breed).astype(np.int64)
        result = train_classifier(X[~held_out], y[~held_out], config)
        evaluation = evaluate_on(result.estimator, X[held_out], y[held_out], result.threshold)
        if verbose:
            report(str(breed), result, evaluation.average_precision, evaluation.f1)
        cv_aps.append(result.winner_metrics.average_precision_mean)
        oof_aps.append(result.out_of_fold.average_precision)
        held_aps.append(evaluation.average_precision)
    n_train, n_test = int((~held_out).sum()), int(held_out.sum())
    means = (float(np.mean(cv_aps)), float(np.mean(oof_aps)), float(np.mean(held_aps)))
    print(
        f"{chr(10) if verbose else ''}seed {seed} mean over {len(cv_aps)} breeds: "
        f"cv_ap={means[0]:.3f} oof_ap={means[1]:.3f} "
        f"held_out_ap={means[2]:.3f} (train {n_train} photos, held out {n_test}; base rate "
        f"{1 / len(cv_aps):.3f}; training took {time.perf_counter() - start:.1f}s)"
    )
    return means


def check(X: NDArray[np.float32], paths: list[Path], model: Path) -> None:
    reference = direct_onnx(paths[:8], model)
    ours = X[:8] / np.linalg.norm(X[:8], axis=1, keepdims=True)
    theirs = reference / np.linalg.norm(reference, axis=1, keepdims=True)
    cosine = (ours * theirs).sum(axis=1)
    largest = np.abs(X[:8] - reference).max()
    print(
        f"embedders vs onnxruntime on 8 photos: max |diff| {largest:.3f}, "
        f"min cosine {cosine.min():.4f}"
    )


def compare(fp32: list[tuple[float, float, float]], int8: list[tuple[float, float, float]]) -> None:
    """Mean and spread of the paired AP change over the held-out splits."""
    changes = np.asarray(int8) - np.asarray(fp32)
    n = len(changes)
    print(f"\nINT8 vs fp32 (mean AP over breeds; {n} held-out splits, paired):")
    for column, label in enumerate(("cv_ap", "oof_ap", "held_out_ap")):
        a, b, d = np.asarray(fp32)[:, column], np.asarray(int8)[:, column], changes[:, column]
        spread = float(d.std(ddof=1)) if n > 1 else float("nan")
        print(
            f"  {label:<12} fp32 {a.mean():.4f}  int8 {b.mean():.4f}  change {d.mean():+.4f} "
            f"(sd {spread:.4f}, se {spread / np.sqrt(n):.4f}, min {d.min():+.4f}, "
            f"max {d.max():+.4f})"
        )


def cosine_report(fp32: NDArray[np.float32], int8: NDArray[np.float32]) -> None:
    a = fp32 / np.linalg.norm(fp32, axis=1, keepdims=True)
    b = int8 / np.linalg.norm(int8, axis=1, keepdims=True)
    cosine = (a * b).sum(axis=1)
    print(
        f"INT8 vs fp32 embeddings on the {len(cosine)} judged photos: mean cosine "
        f"{cosine.mean():.4f}, min {cosine.min():.4f}"
    )


def calibration_split(
    photos: dict[str, list[Path]], args: argparse.Namespace, scratch: Path
) -> tuple[dict[str, list[Path]], Path]:
    """(the photos to judge, the calibration directory), disjoint."""
    if args.calibration == "faces":
        return photos, SHARED / "data" / "faces"
    first = args.calibration_first
    directory = scratch / "calibration"
    directory.mkdir()
    for breed_photos in photos.values():
        for path in breed_photos[:first]:
            (directory / f"{path.parent.name}-{path.name}").symlink_to(path)
    return {breed: breed_photos[first:] for breed, breed_photos in photos.items()}, directory


def main() -> None:
    args = parse_args()
    photos = {
        d.name: sorted(d.glob("*.jpg")) for d in sorted(args.pets_dir.iterdir()) if d.is_dir()
    }
    backends = ["onnx", "onnx-int8"] if args.compare_int8 else [args.backend]
    seeds = list(range(args.seeds)) if args.compare_int8 else [args.seed]
    embeddings, results = {}, {}
    with tempfile.TemporaryDirectory() as workdir:
        judged, calibration = calibration_split(photos, args, Path(workdir))
        paths = [p for breed_photos in judged.values() for p in breed_photos]
        breeds = np.array([p.parent.name for p in paths])
        print(f"judging {len(paths)} photos; INT8 calibration images from {calibration}")
        for backend in backends:
            start = time.perf_counter()
            X = embed_all(paths, args.model, Path(workdir), backend, args.int8_mode, calibration)
            print(
                f"embedded {len(paths)} photos of {len(judged)} breeds ({backend}) in "
                f"{time.perf_counter() - start:.1f}s"
            )
            if args.check:
                check(X, paths, args.model)
            embeddings[backend] = X
    with threadpool_limits(1):  # BLAS threads oversubscribe a shared machine: 10x slower
        for backend, X in embeddings.items():
            verbose = len(seeds) == 1
            results[backend] = [evaluate(X, breeds, args, seed, verbose) for seed in seeds]
    if args.compare_int8:
        cosine_report(embeddings["onnx"], embeddings["onnx-int8"])
        compare(results["onnx"], results["onnx-int8"])


if __name__ == "__main__":
    main()
