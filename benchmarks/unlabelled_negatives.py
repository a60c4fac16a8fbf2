"""Unlabelled positives among the negatives: keep, weight or filter them, on real photos.

Each Oxford-IIIT breed in ../shared is a collection (EfficientNet-Lite0 ONNX embeddings).
Per seed and breed: `--holdout` photos of every breed are held out (the test set, true
labels); of the breed's other photos, `--hidden` are hidden among the unlabelled pool (an
unlabelled member), the rest are the labelled positives; `--rejections` photos of other
breeds are explicit rejections (weight 1 always); every other training photo is an
unlabelled negative. The same rows are trained with each treatment of the unlabelled
negatives (`TrainingConfig.unlabelled`), plus an oracle that drops the hidden positives.
Prints, per treatment, the mean held-out AP (and its paired difference from `keep`, with a
standard error over breeds x seeds), the pooled out-of-fold AP, and which rows the filter
left out on the full training set (hidden positives, true negatives). Never asserts.

    python benchmarks/unlabelled_negatives.py [--seeds 3] [--hidden 2] [--rejections 5]
    python benchmarks/unlabelled_negatives.py --seeds 0 --thread-check   # BLAS threads only
"""

from __future__ import annotations

import argparse
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from shared_models import EFFICIENTNET_ONNX, SHARED, efficientnet_embedder

from ml_platform.learning.evaluation import evaluate_on
from ml_platform.learning.negatives import UnlabelledNegatives, likely_positives
from ml_platform.learning.training import TrainingConfig, train_classifier
from ml_platform.vision.decode import load_rgb

U = UnlabelledNegatives


@dataclass(frozen=True)
class Arm:
    """One treatment of the unlabelled negatives (`oracle` drops the hidden positives)."""

    label: str
    mode: UnlabelledNegatives = U.KEEP
    weight: float = 1.0
    quantile: float = 0.1
    oracle: bool = False

    def config(self, seed: int) -> TrainingConfig:
        return TrainingConfig(
            seed=seed,
            unlabelled=self.mode,
            unlabelled_weight=self.weight,
            unlabelled_filter_quantile=self.quantile,
        )


ARMS = (
    Arm("keep (weight 1)"),
    Arm("weight 0.5", U.WEIGHT, 0.5),
    Arm("weight 0.25", U.WEIGHT, 0.25),
    Arm("filter q=0.1", U.FILTER, quantile=0.1),
    Arm("filter q=0.25", U.FILTER, quantile=0.25),
    Arm("filter q=0.5", U.FILTER, quantile=0.5),
    Arm("filter q=0.1 + weight 0.5", U.FILTER_WEIGHT, 0.5, 0.1),
    Arm("filter q=0.25 + weight 0.5", U.FILTER_WEIGHT, 0.5, 0.25),
    Arm("filter q=0.5 + weight 0.5", U.FILTER_WEIGHT, 0.5, 0.5),
    Arm("oracle (hidden dropped)", oracle=True),
)


@dataclass(frozen=True)
class Case:
    """One breed's training rows for one seed, and its held-out test rows."""

    train: NDArray[np.int64]
    y: NDArray[np.int64]
    unlabelled: NDArray[np.bool_]
    hidden: NDArray[np.bool_]
    test: NDArray[np.int64]


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--pets-dir", type=Path, default=SHARED / "data" / "pets")
    p.add_argument("--holdout", type=int, default=3, help="held-out photos per breed")
    p.add_argument("--hidden", type=int, default=2, help="positives hidden among unlabelled")
    p.add_argument("--rejections", type=int, default=5, help="explicit rejections per breed")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--thread-check", action="store_true", help="time one vs default BLAS threads")
    return p.parse_args()


def make_case(breeds: NDArray[np.str_], breed: str, args: argparse.Namespace, seed: int) -> Case:
    rng = np.random.default_rng([seed, int(np.flatnonzero(np.unique(breeds) == breed)[0])])
    held = np.zeros(breeds.shape[0], dtype=bool)
    for b in np.unique(breeds):
        held[rng.choice(np.flatnonzero(breeds == b), size=args.holdout, replace=False)] = True
    own = rng.permutation(np.flatnonzero((breeds == breed) & ~held))
    hidden, labelled = own[: args.hidden], own[args.hidden :]
    others = rng.permutation(np.flatnonzero((breeds != breed) & ~held))
    rejected, rest = others[: args.rejections], others[args.rejections :]
    pool = np.concatenate([rest, hidden])
    train = np.concatenate([labelled, rejected, pool])
    y = np.concatenate([np.ones(len(labelled)), np.zeros(len(rejected) + len(pool))])
    unlabelled = np.concatenate([np.zeros(len(labelled) + len(rejected)), np.ones(len(pool))])
    hidden_mask = np.isin(train, hidden)
    return Case(
        train, y.astype(np.int64), unlabelled.astype(bool), hidden_mask, np.flatnonzero(held)
    )


def run_arm(
    X: NDArray[np.float32], truth: NDArray[np.int64], case: Case, arm: Arm, seed: int
) -> tuple[float, float]:
    """(held-out AP, pooled out-of-fold AP) of one treatment on one case."""
    keep = ~case.hidden if arm.oracle else np.ones(case.train.shape[0], dtype=bool)
    rows = case.train[keep]
    result = train_classifier(
        X[rows], case.y[keep], arm.config(seed), unlabelled=case.unlabelled[keep]
    )
    held = evaluate_on(result.estimator, X[case.test], truth[case.test], result.threshold)
    return held.average_precision, result.out_of_fold.average_precision


def filtered(X: NDArray[np.float32], case: Case, quantile: float) -> tuple[int, int]:
    """Rows the filter leaves out of the full training set: (hidden positives, true negatives)."""
    dropped = likely_positives(X[case.train], case.y, case.unlabelled, quantile)
    return int((dropped & case.hidden).sum()), int((dropped & ~case.hidden).sum())


def embed(paths: list[Path]) -> NDArray[np.float32]:
    with tempfile.TemporaryDirectory() as scratch:
        embedder = efficientnet_embedder(EFFICIENTNET_ONNX, Path(scratch))
        return np.asarray(embedder.embed([load_rgb(p) for p in paths]), dtype=np.float32)


@dataclass
class Tally:
    """Figures gathered over every case, per treatment label."""

    held_ap: dict[str, list[float]]
    oof_ap: dict[str, list[float]]
    drops: dict[str, list[int]]  # [hidden positives, true negatives] the filter left out
    n_hidden: int = 0
    n_negative: int = 0

    @classmethod
    def empty(cls) -> Tally:
        return cls(
            {a.label: [] for a in ARMS},
            {a.label: [] for a in ARMS},
            {a.label: [0, 0] for a in ARMS},
        )

    def add(self, X: NDArray[np.float32], truth: NDArray[np.int64], case: Case, seed: int) -> None:
        self.n_hidden += int(case.hidden.sum())
        self.n_negative += int((case.unlabelled & ~case.hidden).sum())
        for arm in ARMS:
            held, oof = run_arm(X, truth, case, arm, seed)
            self.held_ap[arm.label].append(held)
            self.oof_ap[arm.label].append(oof)
            if arm.mode.filters:
                hidden, negatives = filtered(X, case, arm.quantile)
                self.drops[arm.label][0] += hidden
                self.drops[arm.label][1] += negatives

    def row(self, arm: Arm) -> str:
        held = np.asarray(self.held_ap[arm.label])
        diff = held - np.asarray(self.held_ap[ARMS[0].label])
        se = diff.std(ddof=1) / np.sqrt(diff.size)
        hidden, negatives = self.drops[arm.label]
        share = (
            f"{hidden / max(1, self.n_hidden):.0%} | {negatives / self.n_negative:.1%}"
            if arm.mode.filters
            else "- | -"
        )
        oof = np.mean(self.oof_ap[arm.label])
        gain = f"{diff.mean():+.4f} +/- {se:.4f}"
        return f"| {arm.label} | {held.mean():.4f} | {gain} | {oof:.4f} | {share} |"


def study(X: NDArray[np.float32], breeds: NDArray[np.str_], args: argparse.Namespace) -> Tally:
    tally = Tally.empty()
    for seed in range(args.seeds):
        for breed in np.unique(breeds):
            case = make_case(breeds, str(breed), args, seed)
            tally.add(X, (breeds == breed).astype(np.int64), case, seed)
    return tally


def thread_check(
    X: NDArray[np.float32], breeds: NDArray[np.str_], args: argparse.Namespace
) -> None:
    """Seconds per `train_classifier` (one BLAS thread, its default) against the same call
    with the machine's default thread pools (`__wrapped__`), alternating, 3 times each."""
    case = make_case(breeds, str(breeds[0]), args, 0)
    rows, config = case.train, TrainingConfig(seed=0)
    times: dict[str, list[float]] = {"one thread": [], "default threads": []}
    for _ in range(3):
        for label, fn in (
            ("one thread", train_classifier),
            ("default threads", train_classifier.__wrapped__),
        ):
            start = time.perf_counter()
            fn(X[rows], case.y, config)
            times[label].append(time.perf_counter() - start)
    one, many = (float(np.median(t)) for t in times.values())
    print(
        f"train_classifier: {one:.2f}s with one BLAS thread, {many:.2f}s with the default "
        f"pools (median of 3; ratio {many / one:.1f}x)"
    )


def main() -> None:
    args = parse_args()
    paths = [
        p for d in sorted(args.pets_dir.iterdir()) if d.is_dir() for p in sorted(d.glob("*.jpg"))
    ]
    breeds = np.array([p.parent.name for p in paths])
    n_breeds = len(np.unique(breeds))
    start = time.perf_counter()
    X = embed(paths)
    print(
        f"embedded {len(paths)} photos of {n_breeds} breeds in {time.perf_counter() - start:.1f}s"
    )
    if args.thread_check:
        thread_check(X, breeds, args)
    if args.seeds < 1:
        return
    start = time.perf_counter()
    tally = study(X, breeds, args)
    cases = len(tally.held_ap[ARMS[0].label])
    print(
        f"{cases} cases ({args.seeds} seeds x {n_breeds} breeds); per case "
        f"{10 - args.holdout - args.hidden} labelled positives, {args.rejections} rejections, "
        f"{tally.n_negative // cases} unlabelled negatives + {args.hidden} hidden positives; "
        f"{args.holdout * n_breeds} held-out photos; {time.perf_counter() - start:.0f}s"
    )
    print(
        "\n| treatment | held-out AP | vs keep (paired, +/- s.e.) | OOF AP "
        "| hidden positives filtered | true negatives filtered |"
    )
    print("|---|---|---|---|---|---|")
    for arm in ARMS:
        print(tally.row(arm))


if __name__ == "__main__":
    main()
