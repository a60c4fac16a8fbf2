"""Champion health on planted shifts: detection delay and false alarms, against a baseline.

Each of the 12 Oxford-IIIT breeds in ../shared/data/pets is a collection. Its champion is a
logistic regression trained (through `learning.training.train_classifier`, the platform's
recipe) on `--train` photos of every breed on real EfficientNet-Lite0 embeddings; the other
photos of each breed, and their horizontal flips, are the pool new batches are drawn from.
After training, batches of `--batch` labelled images arrive (a quarter members, the rest
rejections), and after each batch both detectors judge the champion on every fresh label so
far (as `champion_health` does, from `--min-fresh` labels on):

- **method**: `learning.health_metrics.decide_health` (WARN or ERROR: the drop beyond
  `--max-drop` confirmed by the bootstrap upper bound, or the upper bound under the floor;
  the bootstrap resamples near-duplicate groups, and the rule before, every row a draw, is a
  peer row);
- **baseline**: a fixed AP drop on the raw fresh set: alarm when fresh AP < CV AP - max-drop;
- **label-shift tests** (`label_shift_detectors.py`): the newest `--min-fresh` fresh labels'
  log-loss against the champion's own out-of-fold predictions (a stratified permutation test
  at `--health-alpha`, `learning.label_shift`, what `champion_fresh_ap` adds to the AP rule),
  and two peers: the same test on the whole fresh set, and Mann-Whitney per class.

Scenarios, per breed and seed: (c) `--clean` clean batches; (a) label shift: after
`--before` clean batches, the collection's new members come from another breed; (b) domain
shift: after `--before` clean batches, the rejections are faces (../shared/data/faces) or
clothing photos (../shared/data/clothing) instead of pets. The drift detectors of
`champion_drift.py` (the `batch_drift` check: MMD + predicted-positive shares of all 12
champions of the focus; and MMD alone, shares alone, a domain classifier's AUC) judge each
batch's images against the champions' training embeddings, at `--alpha`. Prints false alarms
per 100 clean batches and, per shift, the detection delay (batches from the shift to the first
alarm; "missed" when none within `--after` batches) for every detector, in one run. Never
asserts. The last rows are the platform's checks: `champion_fresh_ap` (its AP rule or its
label-shift test) and, with the drift detectors, either check. `--first-seed 10` runs seeds
no setting was chosen on (held out); `--per-champion` also lists each champion the
platform's label-shift test caught late, with every label-shift test's delay.

    python benchmarks/champion_health.py [--seeds 3] [--first-seed 0] [--clean 20] [--batch 8]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from champion_drift import CANDIDATE_RUN, DRIFT_DETECTORS, Champion, drift_alarms
from label_shift_detectors import (
    NEW_WINDOW,
    SHIFT_DETECTORS,
    SINCE_RULES,
    TWICE,
    Oof,
    last_batches,
    late_champions,
    late_table,
    shift_alarms,
)
from numpy.typing import NDArray
from PIL import ImageOps
from shared_models import SHARED, efficientnet_embedder
from threadpoolctl import threadpool_limits

from ml_platform.learning.candidates import CandidateName
from ml_platform.learning.health_metrics import HealthLimits, decide_health, health_figures
from ml_platform.learning.training import TrainingConfig, train_classifier
from ml_platform.settings import Settings
from ml_platform.vision.decode import load_rgb

Batch = tuple[NDArray[np.float32], NDArray[np.int64]]
Detector = Callable[
    [NDArray[np.float32], NDArray[np.int64], NDArray[np.float64], float, float], bool
]


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--first-seed", type=int, default=0, help="seeds first-seed .. +seeds-1")
    p.add_argument("--per-champion", action="store_true",
                   help="also the late champions, each label-shift test's delay")  # fmt: skip
    p.add_argument("--train", type=int, default=6, help="photos per breed the champion trains on")
    p.add_argument("--batch", type=int, default=8, help="labelled images per batch")
    p.add_argument("--clean", type=int, default=20, help="batches of the clean scenario")
    p.add_argument("--before", type=int, default=3, help="clean batches before a shift")
    p.add_argument("--after", type=int, default=10, help="batches after a shift")
    p.add_argument("--min-fresh", type=int, default=20)
    p.add_argument("--max-drop", type=float, default=0.05)
    p.add_argument("--floor", type=float, default=0.5)
    p.add_argument("--clothing-per-class", type=int, default=6)
    p.add_argument("--alpha", type=float, default=Settings.model_fields["drift_alpha"].default,
                   help="the drift check's false-alarm level per clean batch")  # fmt: skip
    p.add_argument("--health-alpha", type=float,
                   default=Settings.model_fields["health_alpha"].default,
                   help="the label-shift test's false-alarm level per evaluation")  # fmt: skip
    p.add_argument("--no-drift", action="store_true", help="skip the drift detectors (faster)")
    p.add_argument("--no-label", action="store_true",
                   help="of the label-shift tests only the check's; of the drift detectors the "
                   "check, MMD alone and the candidates (faster)")  # fmt: skip
    p.add_argument("--intervals", type=float, nargs="*", default=[],
                   help="also the rule with these bootstrap coverages (e.g. 0.8 0.6)")  # fmt: skip
    return p.parse_args()


@dataclass(frozen=True)
class Corpus:
    pets: NDArray[np.float32]  # photos
    flips: NDArray[np.float32]  # their horizontal flips
    breed: NDArray[np.int64]
    index: NDArray[np.int64]  # photo index within its breed
    foreign: NDArray[np.float32]  # faces and clothing


def embed(args: argparse.Namespace) -> Corpus:
    pets = sorted((SHARED / "data" / "pets").glob("*/*.jpg"))
    breeds = sorted({p.parent.name for p in pets})
    faces = sorted((SHARED / "data" / "faces").glob("*.jpg"))
    clothing = [
        p
        for d in sorted((SHARED / "data" / "clothing").iterdir())
        if d.is_dir()
        for p in sorted(d.glob("*.jpg"))[: args.clothing_per_class]
    ]
    with tempfile.TemporaryDirectory() as scratch:
        model = SHARED / "models" / "efficientnet_lite0_features.onnx"
        embedder = efficientnet_embedder(model, Path(scratch))
        images = [load_rgb(p) for p in pets]
        start = time.perf_counter()
        vectors = np.asarray(embedder.embed(images), np.float32)
        flips = np.asarray(embedder.embed([ImageOps.mirror(i) for i in images]), np.float32)
        foreign = np.asarray(embedder.embed([load_rgb(p) for p in faces + clothing]), np.float32)
    seconds = time.perf_counter() - start
    print(f"embedded {len(pets)} pets (+ flips), {len(faces)} faces, {len(clothing)} clothing "
          f"photos with {embedder.model_id} in {seconds:.0f} s")  # fmt: skip
    breed = np.asarray([breeds.index(p.parent.name) for p in pets], np.int64)
    index = np.zeros(len(pets), np.int64)
    for b in range(len(breeds)):
        index[breed == b] = np.arange(int((breed == b).sum()))
    return Corpus(vectors, flips, breed, index, foreign)


def method(interval: float, grouped: bool = True) -> Detector:
    """The check's rule with a bootstrap interval of `interval` coverage (0.95: the platform's),
    resampling near-duplicate groups (`grouped`, the platform's) or every row apart (before)."""

    def detect(
        X: NDArray[np.float32], y: NDArray[np.int64], p: NDArray[np.float64], threshold: float,
        cv: float,
    ) -> bool:  # fmt: skip
        figures = health_figures(y, p, threshold, interval=interval,
                                 embeddings=X if grouped else None)  # fmt: skip
        return decide_health(figures, cv, LIMITS).status.failing

    return detect


def baseline(
    X: NDArray[np.float32], y: NDArray[np.int64], p: NDArray[np.float64], threshold: float,
    cv: float,
) -> bool:  # fmt: skip
    from sklearn.metrics import average_precision_score

    return float(average_precision_score(y, p)) < cv - LIMITS.max_ap_drop


LIMITS = HealthLimits(0.05, 0.5)
AP_BEFORE = "health: champion_fresh_ap rule before (every row a bootstrap unit)"
DETECTORS: dict[str, Detector] = {
    "health: champion_fresh_ap rule (method)": method(0.95),
    AP_BEFORE: method(0.95, grouped=False),
    "health baseline: fresh AP < CV AP - 0.05": baseline,
}


def draw(rng: np.random.Generator, pool: NDArray[np.float32], n: int) -> NDArray[np.float32]:
    return pool[rng.integers(0, len(pool), n)]


def batches(
    corpus: Corpus, held: NDArray[np.bool_], target: int, scenario: str, args: argparse.Namespace,
    rng: np.random.Generator,
) -> list[Batch]:  # fmt: skip
    """The batches of one run; a shifted scenario switches after `args.before` batches."""
    pool = np.concatenate([corpus.pets[held], corpus.flips[held]])
    breed = np.concatenate([corpus.breed[held], corpus.breed[held]])
    own, others = pool[breed == target], pool[breed != target]
    other_breed = (target + 1 + int(rng.integers(0, 11))) % 12
    impostors, rest = pool[breed == other_breed], pool[(breed != target) & (breed != other_breed)]
    n_pos = max(1, args.batch // 4)
    total = args.clean if scenario == "clean" else args.before + args.after
    out = []
    for i in range(total):
        shifted = scenario != "clean" and i >= args.before
        if shifted and scenario == "label":
            members, rejections = draw(rng, impostors, n_pos), draw(rng, rest, args.batch - n_pos)
        elif shifted and scenario == "domain":
            members = draw(rng, own, n_pos)
            rejections = draw(rng, corpus.foreign, args.batch - n_pos)
        else:
            members, rejections = draw(rng, own, n_pos), draw(rng, others, args.batch - n_pos)
        y = np.r_[np.ones(n_pos), np.zeros(args.batch - n_pos)].astype(np.int64)
        out.append((np.concatenate([members, rejections]), y))
    return out


def alarms(
    estimator: object, threshold: float, cv: float, run: list[Batch], args: argparse.Namespace
) -> dict[str, list[bool]]:
    """Per detector, whether it alarmed after each batch (cumulative fresh labels)."""
    out: dict[str, list[bool]] = {name: [] for name in DETECTORS}
    X = np.zeros((0, run[0][0].shape[1]), np.float32)
    y = np.zeros(0, np.int64)
    for batch_x, batch_y in run:
        X, y = np.concatenate([X, batch_x]), np.concatenate([y, batch_y])
        ready = len(y) >= args.min_fresh and 0 < y.sum() < len(y)
        p = np.asarray(estimator.predict_proba(X), np.float64)[:, 1] if ready else None  # type: ignore[attr-defined]
        for name, detect in DETECTORS.items():
            out[name].append(bool(ready and p is not None and detect(X, y, p, threshold, cv)))
    return out


CHECKS = {  # what the platform's checks alarm on: any of their parts
    "check champion_fresh_ap: AP rule or label-shift test": (
        "health: champion_fresh_ap rule (method)",
        "health: label-shift test, newest labels vs OOF + older fresh (method)",
    ),
    "either check: champion_fresh_ap or batch_not_drifted": (
        "health: champion_fresh_ap rule (method)",
        "health: label-shift test, newest labels vs OOF + older fresh (method)",
        "drift check: MMD + share (method)",
    ),
    "either check, drift check before (copies counted)": (
        "health: champion_fresh_ap rule (method)",
        "health: label-shift test, newest labels vs OOF + older fresh (method)",
        "drift check before: MMD counting copies",
    ),
    "either check, drift check W (window)": (
        "health: champion_fresh_ap rule (method)",
        "health: label-shift test, newest labels vs OOF + older fresh (method)",
        "drift check W: MMD of the batch, and of it with the previous batch + share",
    ),
    "either check, drift check A (aggregated MMD)": (
        "health: champion_fresh_ap rule (method)",
        "health: label-shift test, newest labels vs OOF + older fresh (method)",
        "drift check A: aggregated MMD (5 bandwidths) + share",
    ),
    "check champion_fresh_ap, window since the evaluation before last with new labels": (
        "health: champion_fresh_ap rule (method)",
        NEW_WINDOW,
    ),
    "check champion_fresh_ap, AP rule before, window with new labels": (AP_BEFORE, NEW_WINDOW),
    "either check, window with new labels, drift check now": (
        "health: champion_fresh_ap rule (method)",
        NEW_WINDOW,
        "drift check: MMD + share (method)",
    ),
    "either check, window with new labels, drift check W": (
        "health: champion_fresh_ap rule (method)",
        NEW_WINDOW,
        "drift check W: MMD of the batch, and of it with the previous batch + share",
    ),
    "either check, window with new labels, drift check W as batch_drift runs it": (
        "health: champion_fresh_ap rule (method)",
        NEW_WINDOW,
        "drift check W as batch_drift runs it (window_mmd_test) + share",
    ),
    "either check, window with new labels, drift check A": (
        "health: champion_fresh_ap rule (method)",
        NEW_WINDOW,
        "drift check A: aggregated MMD (5 bandwidths) + share",
    ),
}
METHOD_TEST = "health: label-shift test, newest labels vs OOF + older fresh (method)"


def either(fired: dict[str, list[bool]], parts: tuple[str, ...]) -> list[bool]:
    """After each batch, whether any of `parts` alarmed."""
    return [any(flags) for flags in zip(*(fired[part] for part in parts), strict=True)]


def delay(fired: list[bool], before: int) -> int | None:
    """Batches from the shift (1 = the first shifted batch) to the first alarm after it."""
    after = fired[before:]
    return after.index(True) + 1 if True in after else None


def main() -> None:
    args = parse_args()
    for coverage in args.intervals:
        DETECTORS[f"health: the rule, {coverage:.0%} interval"] = method(coverage)
    SHIFT_DETECTORS["health: label-shift test, newest 2 batches vs OOF + older fresh"] = (
        last_batches(args.batch)
    )
    names = row_names(args)
    clean = {name: [0, 0] for name in names}  # alarms, batches
    delays: dict[tuple[str, str], list[int | None]] = {}
    with threadpool_limits(1):  # faster than 2 on a shared 2-core machine
        corpus = embed(args)
        start = time.perf_counter()
        for seed in range(args.first_seed, args.first_seed + args.seeds):
            for scenario, fired in seed_runs(corpus, seed, args):
                for name, flags in fired.items():
                    if scenario == "clean":
                        clean[name][0] += sum(flags)
                        clean[name][1] += len(flags)
                    else:
                        delays.setdefault((scenario, name), []).append(delay(flags, args.before))
        seconds = time.perf_counter() - start
    report(args, names, clean, delays, seconds)
    if args.per_champion:
        late_champions(delays, args.first_seed)
        if not args.no_drift:
            late_table(delays, "domain", list(DRIFT_DETECTORS), args.first_seed)


def row_names(args: argparse.Namespace) -> list[str]:
    """The rows this run prints: detectors, then the checks whose parts all ran."""
    shift = [METHOD_TEST, NEW_WINDOW] if args.no_label else [*SHIFT_DETECTORS, *SINCE_RULES, *TWICE]
    drift = [] if args.no_drift else CANDIDATE_RUN if args.no_label else list(DRIFT_DETECTORS)
    names = [*DETECTORS, *shift, *drift]
    return names + [name for name, parts in CHECKS.items() if set(parts) <= set(names)]


def seed_runs(
    corpus: Corpus, seed: int, args: argparse.Namespace
) -> Iterator[tuple[str, dict[str, list[bool]]]]:
    """Each breed's champion on each scenario: every detector's alarm after each batch.
    The 12 champions share a focus, so the drift check tests every one's share."""
    rng = np.random.default_rng(seed)
    train = np.isin(corpus.index, rng.permutation(10)[: args.train])
    reference = corpus.pets[train]
    config = TrainingConfig(candidates=(CandidateName.LOGISTIC_REGRESSION,), cv_folds=3)
    results = [train_classifier(reference, (corpus.breed[train] == t).astype(np.int64), config)
               for t in range(12)]  # fmt: skip
    champions = [Champion.of(r.estimator, r.threshold, reference) for r in results]
    for target, result in enumerate(results):
        cv = result.out_of_fold.average_precision
        oof = Oof((corpus.breed[train] == target).astype(np.int64),
                  result.out_of_fold_probabilities)  # fmt: skip
        for scenario in ("clean", "label", "domain"):
            run = batches(corpus, ~train, target, scenario, args, rng)
            fired = alarms(result.estimator, result.threshold, cv, run, args)
            fired |= shift_alarms(result.estimator, oof, run, args.min_fresh, args.health_alpha,
                                  [METHOD_TEST, NEW_WINDOW] if args.no_label else None)  # fmt: skip
            if not args.no_drift:
                rows = CANDIDATE_RUN if args.no_label else list(DRIFT_DETECTORS)
                fired |= drift_alarms(run, reference, champions, args.alpha, rows)
            yield scenario, fired | {name: either(fired, parts) for name, parts in CHECKS.items()
                                     if all(part in fired for part in parts)}  # fmt: skip


def report(
    args: argparse.Namespace,
    names: list[str],
    clean: dict[str, list[int]],
    delays: dict[tuple[str, str], list[int | None]],
    seconds: float,
) -> None:
    runs = 12 * args.seeds
    seeds = f"seeds {args.first_seed}-{args.first_seed + args.seeds - 1}"
    print(f"\n12 breeds x {seeds} = {runs} champions; batches of {args.batch} "
          f"labels; evaluated from {args.min_fresh} fresh labels; {seconds:.0f} s\n")  # fmt: skip
    print(
        "| detector | false alarms / 100 clean batches | label shift: median delay "
        "(caught within 2 / missed) | domain shift: median delay (caught within 2 / missed) |"
    )
    print("|---|---|---|---|")
    for name in names:
        alarms_, total = clean[name]
        cells = []
        for scenario in ("label", "domain"):
            found = [d for d in delays[(scenario, name)] if d is not None]
            within = sum(d <= 2 for d in found)
            median = f"{np.median(found):.0f}" if found else "-"
            cells.append(f"{median} ({within}/{runs} / {runs - len(found)})")
        print(f"| {name} | {100 * alarms_ / total:.1f} ({alarms_} of {total}) | {cells[0]} | "
              f"{cells[1]} |")  # fmt: skip


if __name__ == "__main__":
    main()
