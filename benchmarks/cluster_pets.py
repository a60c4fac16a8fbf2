"""Cluster real photos: "pets" made of Oxford-IIIT breeds, embedded with the real
EfficientNet-Lite0 feature extractor from ../shared, clustered per pet by every method on
the same vectors; prints a table of exact-k share, purity against the breeds and outlier
share per method and breed count, the fixed pets, then the hero case (degraded copies of
some photos added to a pet: the share of heroes that are not copies). Never asserts.

Embedding goes through `ml_platform.vision.embedders` as a custom ONNX embedding type
(docs/embedding_types.md) declared with the preprocessing in ../shared/models/README.md:
short side 256 bicubic, centre crop 224, (pixel - 127) / 128.

    python benchmarks/cluster_pets.py [--random-pets 30] [--per-breed 10] [--png-dir /tmp/p]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from hero_copies import Shots, hero_precision
from numpy.typing import NDArray
from shared_models import SHARED, efficientnet_embedder

from ml_platform.learning.clustering import METHODS, ClusterConfig, PetClusters, cluster_pet
from ml_platform.learning.projection import projection_png

Pet = tuple[NDArray[np.int64], NDArray[np.int64]]  # photo rows, breed index per row


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--pets-dir", type=Path, default=SHARED / "data" / "pets")
    p.add_argument(
        "--model", type=Path, default=SHARED / "models" / "efficientnet_lite0_features.onnx"
    )
    p.add_argument("--pets", type=int, default=4, help="fixed pets of --breeds-per-pet breeds")
    p.add_argument("--breeds-per-pet", type=int, default=3)
    p.add_argument("--random-pets", type=int, default=30, help="random pets per breed count")
    p.add_argument("--per-breed", type=int, default=10, help="photos of each breed in a pet")
    p.add_argument("--hero-pets", type=int, default=30, help="pets in the hero case")
    p.add_argument("--png-dir", type=Path, help="write each fixed pet's projection plot here")
    return p.parse_args()


@dataclass(frozen=True)
class Photos:
    paths: tuple[Path, ...]
    breed: NDArray[np.int64]
    names: tuple[str, ...]

    @classmethod
    def find(cls, pets_dir: Path) -> Photos:
        names = tuple(sorted(d.name for d in pets_dir.iterdir() if d.is_dir()))
        paths = [p for n in names for p in sorted((pets_dir / n).glob("*.jpg"))]
        breed = np.array([names.index(p.parent.name) for p in paths], dtype=np.int64)
        return cls(tuple(paths), breed, names)

    def pet(self, breeds: list[int], per_breed: int, rng: np.random.Generator) -> Pet:
        rows = [rng.permutation(np.flatnonzero(self.breed == b))[:per_breed] for b in breeds]
        truth = [np.full(len(r), i) for i, r in enumerate(rows)]
        return np.concatenate(rows), np.concatenate(truth).astype(np.int64)


def purity(labels: NDArray[np.int64], truth: NDArray[np.int64]) -> float:
    clustered = labels >= 0
    hits = sum(
        np.bincount(truth[clustered & (labels == lab)]).max()
        for lab in np.unique(labels[clustered])
    )
    return float(hits / max(1, clustered.sum()))


@dataclass(frozen=True)
class Score:
    exact: bool
    purity: float
    outliers: int
    images: int
    ms: float


def run(x: NDArray[np.float32], truth: NDArray[np.int64], config: ClusterConfig) -> Score:
    t0 = time.perf_counter()
    c: PetClusters = cluster_pet(list(range(len(x))), x, config)
    ms = (time.perf_counter() - t0) * 1e3
    exact = c.k == len(np.unique(truth))
    return Score(exact, purity(np.array(c.labels), truth), c.n_outliers, len(x), ms)


def summary(scores: list[Score]) -> str:
    out = sum(s.outliers for s in scores) / sum(s.images for s in scores)
    return (
        f"{np.mean([s.exact for s in scores]):6.0%} {np.mean([s.purity for s in scores]):7.3f} "
        f"{out:8.1%} {np.mean([s.ms for s in scores]):6.1f}"
    )


def method_table(args: argparse.Namespace, photos: Photos, x: NDArray[np.float32]) -> None:
    """Every method on the same random pets of 1-4 breeds."""
    rng = np.random.default_rng(0)
    n = len(photos.names)
    pets = {
        nb: [photos.pet(list(rng.choice(n, nb, replace=False)), args.per_breed, rng)
             for _ in range(args.random_pets)]
        for nb in (1, 2, 3, 4)
    }  # fmt: skip
    print(f"\n{args.random_pets} random pets per breed count, {args.per_breed} photos per breed")
    print(
        f"{'method':14s} {'breeds':>6s} {'exact k':>6s} {'purity':>7s} {'outliers':>8s} {'ms':>6s}"
    )
    for method in METHODS:
        config = ClusterConfig(method=method)
        every: list[Score] = []
        for nb, draws in pets.items():
            scores = [run(x[rows], truth, config) for rows, truth in draws]
            every += scores
            print(f"{method:14s} {nb:6d} {summary(scores)}")
        print(f"{method:14s} {'all':>6s} {summary(every)}")


def fixed_pets(args: argparse.Namespace, photos: Photos, x: NDArray[np.float32]) -> None:
    """Breeds 0-2, 3-5, ... in name order, with the default config."""
    config = ClusterConfig()
    for pet in range(args.pets):
        breeds = list(range(pet * args.breeds_per_pet, (pet + 1) * args.breeds_per_pet))
        rows, truth = photos.pet(breeds, args.per_breed, np.random.default_rng(pet))
        c = cluster_pet(list(range(len(rows))), x[rows], config)
        names = ", ".join(photos.names[b] for b in breeds)
        print(
            f"pet {pet} ({names}): k={c.k} (truth {len(breeds)}), "
            f"purity {purity(np.array(c.labels), truth):.3f}, outliers {c.n_outliers}"
        )
        if args.png_dir:
            args.png_dir.mkdir(parents=True, exist_ok=True)
            png = projection_png(x[rows], c.labels, title=f"pet {pet}: {names}")
            (args.png_dir / f"pet_{pet}.png").write_bytes(png)


def hero_case(args: argparse.Namespace, photos: Photos, shots: Shots) -> None:
    """Pets of 1-3 breeds where 2 photos per breed also come as 4 degraded copies each."""
    rng = np.random.default_rng(1)
    good = total = 0
    config = ClusterConfig()
    for _ in range(args.hero_pets):
        nb = int(rng.integers(1, 4))
        rows, truth = photos.pet(list(rng.choice(len(photos.names), nb, replace=False)), 10, rng)
        spoilt = np.concatenate([rows[truth == b][:2] for b in range(nb)])
        g, t = hero_precision(shots, shots.rows(rows, spoilt), config)
        good, total = good + g, total + t
    print(
        f"\nhero case: {args.hero_pets} pets, 2 photos per breed with blurred, dark, "
        f"over-exposed and tiny copies: {good}/{total} heroes are not copies ({good / total:.1%})"
    )


def main() -> None:
    args = parse_args()
    photos = Photos.find(args.pets_dir)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        embedder = efficientnet_embedder(args.model, Path(tmp))
    shots = Shots.make(list(photos.paths), embedder)
    x = shots.vectors[: len(photos.paths)]
    print(f"embedded {len(shots.vectors)} photos and copies in {time.perf_counter() - t0:.1f} s")
    method_table(args, photos, x)
    print()
    fixed_pets(args, photos, x)
    hero_case(args, photos, shots)


if __name__ == "__main__":
    main()
