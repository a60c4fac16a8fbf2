"""Per-pet clustering at scale: a full run over many pets, then one batch touching 1% of them.

Synthetic data with a known structure: each pet has 2-5 clusters of unit-norm centres in
`--dim` dimensions, images drawn around them. Prints wall times, peak memory, the
incremental/full time ratio and purity against the known clusters. Never asserts.

    python benchmarks/cluster_scale.py                      # 10,000 pets x 100 images x 512-d
    python benchmarks/cluster_scale.py --pets 500 --jobs 1  # a quick look
    python benchmarks/cluster_scale.py --baseline gmm --baseline-pets 2000  # new/old ratio

`--baseline` also clusters the first `--baseline-pets` pets (all by default) with another
method (the old default, gmm) on the same vectors and prints CPU-ms per pet of both, and
the ratio method/baseline.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import resource
import threading
import time
import tracemalloc
from collections.abc import Mapping
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from ml_platform.learning.clustering import (
    METHODS,
    ClusterConfig,
    PetClusters,
    cluster_many,
    recluster_touched,
)

Pets = dict[int, tuple[list[int], NDArray[np.float32]]]
Truth = dict[int, NDArray[np.int64]]


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--pets", type=int, default=10_000)
    p.add_argument("--images", type=int, default=100, help="images per pet")
    p.add_argument("--dim", type=int, default=512)
    p.add_argument("--noise", type=float, default=0.8, help="noise norm relative to a centre")
    p.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    p.add_argument("--touched", type=float, default=0.01, help="share of pets in the batch")
    p.add_argument("--method", choices=METHODS, default=ClusterConfig().method)
    p.add_argument("--pca-dims", type=int, default=32)
    p.add_argument("--max-k", type=int, default=8)
    p.add_argument("--max-iter", type=int, default=100)
    p.add_argument("--baseline", choices=METHODS, help="also time this method (e.g. gmm)")
    p.add_argument("--baseline-pets", type=int, help="pets for the baseline (default: all)")
    p.add_argument("--tracemalloc", action="store_true", help="also trace Python allocations")
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args()


def pet_images(
    pet: int, n: int, dim: int, noise: float, seed: int
) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
    """One pet: 2-5 clusters (balanced), images around unit centres; returns (x, truth)."""
    rng = np.random.default_rng([seed, pet])
    k = int(rng.integers(2, 6))
    centres = rng.normal(size=(k, dim))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    truth = rng.permutation(np.arange(n) % k)
    x = centres[truth] + rng.normal(size=(n, dim)) * noise / np.sqrt(dim)
    return x.astype(np.float32), truth.astype(np.int64)


def make_pets(args: argparse.Namespace) -> tuple[Pets, Truth]:
    pets: Pets = {}
    truth: Truth = {}
    for pet in range(args.pets):
        x, t = pet_images(pet, args.images, args.dim, args.noise, args.seed)
        pets[pet] = (list(range(pet * 10_000, pet * 10_000 + args.images)), x)
        truth[pet] = t
    return pets, truth


def touch(pets: Pets, truth: Truth, args: argparse.Namespace) -> set[int]:
    """Replace the images of a random `--touched` share of pets by a new draw (+5 images)."""
    rng = np.random.default_rng(args.seed + 1)
    n_touched = max(1, round(args.pets * args.touched))
    touched = {int(p) for p in rng.choice(args.pets, size=n_touched, replace=False)}
    for pet in touched:
        x, t = pet_images(pet, args.images + 5, args.dim, args.noise, args.seed)
        pets[pet] = (list(range(pet * 10_000, pet * 10_000 + args.images + 5)), x)
        truth[pet] = t
    return touched


def purity(labels: NDArray[np.int64], truth: NDArray[np.int64]) -> float:
    clustered = labels >= 0
    if not clustered.any():
        return 0.0
    hits = sum(
        np.bincount(truth[clustered & (labels == lab)]).max()
        for lab in np.unique(labels[clustered])
    )
    return float(hits / clustered.sum())


def quality(clusters: Mapping[int, PetClusters], truth: Truth) -> str:
    pur = [purity(np.array(c.labels), truth[p]) for p, c in clusters.items()]
    k_ok = [c.k == len(np.unique(truth[p])) for p, c in clusters.items()]
    k_off = [abs(c.k - len(np.unique(truth[p]))) for p, c in clusters.items()]
    outliers = sum(c.n_outliers for c in clusters.values())
    images = sum(len(c.labels) for c in clusters.values())
    return (
        f"purity mean {np.mean(pur):.4f} min {np.min(pur):.4f}; "
        f"k = truth for {np.mean(k_ok):.1%} of pets (mean |k - truth| {np.mean(k_off):.3f}); "
        f"outliers {outliers / images:.2%} of images"
    )


def state_mib(clusters: Mapping[int, PetClusters]) -> float:
    total = 0
    for c in clusters.values():
        m = c.model
        arrays = (m.pca_mean, m.pca_components, m.means, m.variances, m.weights)
        total += sum(a.nbytes for a in arrays) + sum(x.centroid.nbytes for x in c.clusters)
    return total / 2**20


class WorkerPeaks:
    """Polls the pool workers' own peak RSS (VmHWM). RUSAGE_CHILDREN is no use here: a spawned
    worker is forked from this process before it execs, so it reports this process's size."""

    def __init__(self) -> None:
        self.peak_kib: dict[int, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def __enter__(self) -> WorkerPeaks:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _poll(self) -> None:
        while not self._stop.wait(0.2):
            for child in multiprocessing.active_children():
                status = Path(f"/proc/{child.pid}/status")
                try:
                    text = status.read_text()
                except FileNotFoundError:  # the worker exited between listing and reading
                    continue
                hwm = next((ln for ln in text.splitlines() if ln.startswith("VmHWM:")), None)
                if hwm and child.pid is not None:
                    self.peak_kib[child.pid] = int(hwm.split()[1])

    def summary(self) -> str:
        if not self.peak_kib:
            return "no pool workers"
        return f"{len(self.peak_kib)} workers, largest {max(self.peak_kib.values()) / 1024:.0f} MiB"


def cpu_seconds() -> float:
    """User + system CPU time of this process and its reaped children (the pool workers)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def peak_rss_mib() -> str:
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return f"peak RSS of this process {own:.0f} MiB"


def baseline(pets: Pets, args: argparse.Namespace, cpu_ms_per_pet: float) -> None:
    """The same full run with `--baseline` on the first `--baseline-pets` pets: CPU per pet
    of both, and the ratio (CPU time: steadier than wall on a shared machine)."""
    n = min(args.baseline_pets or args.pets, args.pets)
    config = ClusterConfig(
        method=args.baseline, max_k=args.max_k, pca_dims=args.pca_dims, max_iter=args.max_iter
    )
    sample = {p: pets[p] for p in range(n)}
    t0, cpu0 = time.perf_counter(), cpu_seconds()
    cluster_many(sample, config, n_jobs=args.jobs)
    wall, cpu = time.perf_counter() - t0, cpu_seconds() - cpu0
    old = cpu / n * 1e3
    print(
        f"baseline {args.baseline} on {n} pets: {wall:.1f} s wall, {cpu:.1f} CPU-s "
        f"({old:.1f} CPU-ms/pet); {args.method} {cpu_ms_per_pet:.1f} CPU-ms/pet; "
        f"ratio {args.method}/{args.baseline} = {cpu_ms_per_pet / old:.3f}"
    )


def main() -> None:
    args = parse_args()
    config = ClusterConfig(
        method=args.method, max_k=args.max_k, pca_dims=args.pca_dims, max_iter=args.max_iter
    )
    print(f"{args.pets} pets x {args.images} images x {args.dim}-d, {args.jobs} jobs, {config}")
    if args.tracemalloc:
        tracemalloc.start()
    t0 = time.perf_counter()
    pets, truth = make_pets(args)
    data_gib = sum(x.nbytes for _, x in pets.values()) / 2**30
    print(f"generated {data_gib:.2f} GiB of embeddings in {time.perf_counter() - t0:.1f} s")

    t0, cpu0 = time.perf_counter(), cpu_seconds()
    with WorkerPeaks() as workers:
        full = cluster_many(pets, config, n_jobs=args.jobs)
    t_full, cpu_full = time.perf_counter() - t0, cpu_seconds() - cpu0
    print(
        f"full run: {t_full:.1f} s wall ({t_full / args.pets * 1e3:.1f} ms/pet), "
        f"{cpu_full:.1f} CPU-s ({cpu_full / args.pets * 1e3:.1f} CPU-ms/pet; wall on "
        f"{args.jobs} idle cores would be about {cpu_full / args.jobs:.0f} s)"
    )
    print(f"  {quality(full, truth)}")
    print(f"  model state held: {state_mib(full):.0f} MiB; {peak_rss_mib()}")
    print(f"  pool worker peak RSS: {workers.summary()}")

    if args.baseline:
        baseline(pets, args, cpu_full / args.pets * 1e3)

    touched = touch(pets, truth, args)
    t0, cpu0 = time.perf_counter(), cpu_seconds()
    updated = recluster_touched(full, pets, touched, config, n_jobs=args.jobs)
    t_update, cpu_update = time.perf_counter() - t0, cpu_seconds() - cpu0
    reused = sum(updated[p] is full[p] for p in full if p not in touched)
    print(
        f"batch touching {len(touched)} pets ({len(touched) / args.pets:.1%}): {t_update:.2f} s "
        f"wall = {t_update / t_full:.4f} of the full run; {cpu_update:.2f} CPU-s = "
        f"{cpu_update / cpu_full:.4f} of its CPU; {reused} untouched models reused as is"
    )
    print(f"  touched pets: {quality({p: updated[p] for p in touched}, truth)}")
    if args.tracemalloc:
        _, peak = tracemalloc.get_traced_memory()
        print(f"tracemalloc peak (this process): {peak / 2**20:.0f} MiB")
    print(peak_rss_mib())


if __name__ == "__main__":
    main()
