"""Cluster real photos: "pets" made of three Oxford-IIIT breeds each, embedded with the real
EfficientNet-Lite0 feature extractor from ../shared, clustered per pet; prints purity
against the breeds and the chosen cluster count, then the same over many random pets of 1-4
breeds. Never asserts.

Embedding goes through `ml_platform.vision.embedders` as a custom ONNX embedding type
(docs/embedding_types.md) declared with the preprocessing in ../shared/models/README.md:
short side 256 bicubic, centre crop 224, (pixel - 127) / 128.

    python benchmarks/cluster_pets.py [--breeds-per-pet 3] [--pets 4] [--png-dir /tmp/pets]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from shared_models import SHARED, efficientnet_embedder

from ml_platform.learning.clustering import ClusterConfig, PetClusters, cluster_pet
from ml_platform.learning.projection import projection_png
from ml_platform.vision.embedders import Embedder
from ml_platform.vision.pipeline import embed_images


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--pets-dir", type=Path, default=SHARED / "data" / "pets")
    p.add_argument(
        "--model", type=Path, default=SHARED / "models" / "efficientnet_lite0_features.onnx"
    )
    p.add_argument("--pets", type=int, default=4)
    p.add_argument("--breeds-per-pet", type=int, default=3)
    p.add_argument("--random-pets", type=int, default=30, help="random pets per breed count")
    p.add_argument("--png-dir", type=Path, help="write each pet's projection plot here")
    return p.parse_args()


def efficientnet(model: Path, directory: Path) -> Embedder:
    return efficientnet_embedder(model, directory)


def embed(embedder: Embedder, paths: list[Path]) -> NDArray[np.float32]:
    batch = embed_images(paths, embedder)
    if batch.skipped or list(batch.items) != paths:
        raise RuntimeError(f"could not embed every photo; skipped: {batch.skipped}")
    return batch.vectors


@dataclass(frozen=True)
class Photos:
    """Every photo's embedding, by breed."""

    by_breed: dict[str, NDArray[np.float32]]

    @classmethod
    def embed(cls, pets_dir: Path, embedder: Embedder) -> Photos:
        t0 = time.perf_counter()
        breeds = sorted(d for d in pets_dir.iterdir() if d.is_dir())
        paths = [p for b in breeds for p in sorted(b.glob("*.jpg"))]
        x = embed(embedder, paths)
        print(f"embedded {len(paths)} photos with {embedder!r} in {time.perf_counter() - t0:.1f} s")
        return cls({b.name: x[[p.parent == b for p in paths]] for b in breeds})

    def pet(self, breeds: list[str]) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
        x = np.concatenate([self.by_breed[b] for b in breeds])
        truth = np.concatenate([np.full(len(self.by_breed[b]), i) for i, b in enumerate(breeds)])
        return x, truth


@dataclass(frozen=True)
class Result:
    k: int
    purity: float
    outliers: int
    ms: float
    clusters: PetClusters


def purity(labels: NDArray[np.int64], truth: NDArray[np.int64]) -> float:
    clustered = labels >= 0
    hits = sum(
        np.bincount(truth[clustered & (labels == lab)]).max()
        for lab in np.unique(labels[clustered])
    )
    return float(hits / max(1, clustered.sum()))


CONFIGS = {
    "gmm": ClusterConfig(method="gmm"),
    # PCA to min(32, n - 1) dims regardless of pet size: what images_per_dim=10 replaced
    "gmm fixed-pca": ClusterConfig(method="gmm", images_per_dim=1),
    "hdbscan": ClusterConfig(method="hdbscan"),
}


def run_pet(x: NDArray[np.float32], truth: NDArray[np.int64], config: ClusterConfig) -> Result:
    t0 = time.perf_counter()
    result = cluster_pet(list(range(len(x))), x, config)
    ms = (time.perf_counter() - t0) * 1e3
    return Result(result.k, purity(np.array(result.labels), truth), result.n_outliers, ms, result)


def named_pets(args: argparse.Namespace, photos: Photos) -> None:
    """The fixed pets: breeds 0-2, 3-5, ... in name order."""
    breeds = sorted(photos.by_breed)
    for pet in range(args.pets):
        mine = breeds[pet * args.breeds_per_pet : (pet + 1) * args.breeds_per_pet]
        x, truth = photos.pet(mine)
        print(f"pet {pet}: {len(x)} photos of {', '.join(mine)}")
        for name, config in CONFIGS.items():
            r = run_pet(x, truth, config)
            sil = "n/a" if r.clusters.silhouette is None else f"{r.clusters.silhouette:.3f}"
            print(
                f"  {name:13s}: k={r.k} (truth {len(mine)}), purity {r.purity:.3f}, "
                f"outliers {r.outliers}, silhouette {sil}, {r.ms:.0f} ms"
            )
            if args.png_dir and name == "gmm":
                args.png_dir.mkdir(parents=True, exist_ok=True)
                png = projection_png(x, r.clusters.labels, title=f"pet {pet}: {', '.join(mine)}")
                (args.png_dir / f"pet_{pet}.png").write_bytes(png)


def random_pets(args: argparse.Namespace, photos: Photos) -> None:
    """Many random pets of 1-4 breeds: mean k, purity and outlier share per method."""
    rng = np.random.default_rng(0)
    breeds = sorted(photos.by_breed)
    for n_breeds in (1, 2, 3, 4):
        draws = [
            photos.pet([breeds[i] for i in rng.choice(len(breeds), n_breeds, replace=False)])
            for _ in range(args.random_pets)
        ]
        for name, config in CONFIGS.items():
            results = [run_pet(x, truth, config) for x, truth in draws]
            ks = [r.k for r in results]
            print(
                f"{args.random_pets} random {n_breeds}-breed pets, {name:13s}: "
                f"k mean {np.mean(ks):.2f} (= truth {np.mean(np.equal(ks, n_breeds)):.0%}), "
                f"purity {np.mean([r.purity for r in results]):.3f}, outliers "
                f"{np.sum([r.outliers for r in results]) / sum(len(x) for x, _ in draws):.1%}"
            )


def main() -> None:
    args = parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        embedder = efficientnet(args.model, Path(tmp))
    photos = Photos.embed(args.pets_dir, embedder)
    needed = args.pets * args.breeds_per_pet
    if len(photos.by_breed) < needed:
        raise SystemExit(f"{len(photos.by_breed)} breeds in {args.pets_dir}; {needed} needed")
    named_pets(args, photos)
    random_pets(args, photos)


if __name__ == "__main__":
    main()
