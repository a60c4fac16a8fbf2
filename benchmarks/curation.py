"""Curation on real EfficientNet-Lite0 embeddings: suggestions, label audit, review queue, cost.

Each class of ../shared's pets (12 breeds) and clothing (10 classes) is a collection. Every
figure is measured beside a peer in the same process, on the same embeddings:

- suggestions: 40 % of each class's members hidden as unlabelled images; the champion
  (`train_classifier`, the platform's training: its candidates, folds, negative sample and
  filter) ranks the non-members with near-duplicates collapsed (`rank_suggestions`), against
  a plain logistic regression on the labelled members vs every other image. precision@10
  counts hidden members among the top min(10, hidden) (a class with 4 hidden members cannot
  fill 10), raw hits@10 / 10 is printed beside it; recall is hidden members within the top
  2 x hidden.
- audit (`curation_audit.py`): 10 % of the images moved to a random wrong class; each
  collection's champion OOF probabilities audited by `find_label_issues` (all issues, its
  `likely` tier, and its pooled ranking cut at cleanlab's count), by the rule before it
  (confident learning on the pooled probability), without the embeddings ("OOF only") and by
  cleanlab's `find_label_issues` (same probabilities); precision and recall of flagged members
  (moved in) and flagged rejections (moved out), pooled over collections and seeds.
- review queue: 30 % of the images held out for AP; from 4 members and 4 non-members, 5
  rounds of 8 labels chosen by `review_queue`, by random choice and by pure uncertainty
  (platform logistic regression candidate refitted each round); AP on the held-out images
  after each round, mean and standard error over seeds x collections. `members_first` reads
  the true labels (the pool's remaining members first, then the most probable non-members):
  not a peer; where few members remain in the pool (pets: 3 of 76 images) it shows how much
  finding all of them can gain over random.
- cost: scoring a 500-image batch with 100 collections (`score_matrix`) against rescoring
  every image of the focus.

    python benchmarks/curation.py [--sets pets clothing] [--seeds 10] [--audit-seeds 3]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np
from curation_audit import audit
from curation_data import LabelledSet, load_set
from curation_peers import plain_logistic_ranking
from numpy.typing import NDArray
from sklearn.metrics import average_precision_score
from threadpoolctl import threadpool_limits

from ml_platform.learning.candidates import CandidateName
from ml_platform.learning.curation.geometry import Pool
from ml_platform.learning.curation.review_queue import PROBABLE_SHARE, review_queue, uncertainty
from ml_platform.learning.curation.scores import prefer_out_of_fold, score_matrix
from ml_platform.learning.curation.suggestions import rank_suggestions
from ml_platform.learning.fitting import fit_candidate
from ml_platform.learning.training import TrainingConfig, train_classifier

Rows = NDArray[np.intp]


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sets", nargs="+", default=["pets", "clothing"])
    p.add_argument("--parts", nargs="+", default=["suggest", "audit", "queue", "cost"])
    p.add_argument("--seeds", type=int, default=10, help="review-queue seeds")
    p.add_argument("--audit-seeds", type=int, default=3)
    p.add_argument("--suggest-seeds", type=int, default=3)
    p.add_argument("--negative-sample", type=int, default=0, help="0: every other image")
    p.add_argument(
        "--candidates", nargs="+", default=[c.value for c in TrainingConfig().candidates],
        help="the champion's candidates (default: the platform's)",
    )  # fmt: skip
    return p.parse_args()


CANDIDATES: list[str] = []


def _config(seed: int) -> TrainingConfig:
    if not CANDIDATES:
        return TrainingConfig(seed=seed)
    return TrainingConfig(candidates=tuple(CandidateName(c) for c in CANDIDATES), seed=seed)


def sample_rows(rng: np.random.Generator, rows: Rows, share: float) -> Rows:
    return np.sort(rng.choice(rows, size=max(1, round(share * rows.size)), replace=False))


def suggestions(data: LabelledSet, seeds: int, negative_sample: int) -> None:
    ours: list[tuple[float, float, float]] = []
    peer: list[tuple[float, float, float]] = []
    ids = np.arange(len(data.labels))
    for seed in range(seeds):
        rng = np.random.default_rng(seed)
        for c in range(len(data.classes)):
            hidden = sample_rows(rng, np.flatnonzero(data.labels == c), 0.4)
            member = (data.labels == c) & ~np.isin(ids, hidden)
            others = np.flatnonzero(~member)
            if negative_sample:
                others = np.sort(rng.choice(others, min(negative_sample, others.size), False))
            rows = np.concatenate([np.flatnonzero(member), others])
            y, unl = member[rows].astype(np.int64), ~member[rows]
            result = train_classifier(data.X[rows], y, _config(seed), None, unl)
            p = result.estimator.predict_proba(data.X)[:, 1]
            trained = rows[unl]  # the sampled negatives: their OOF probability, as the service
            p = prefer_out_of_fold(ids, p, trained, result.out_of_fold_probabilities[unl])
            found = rank_suggestions(Pool(ids, p, data.X, member), limit=2 * hidden.size)
            ours.append(_ranking_figures([s.image_id for s in found], hidden))
            peer_p = plain_logistic_ranking(data.X, member)
            order = [int(i) for i in np.argsort(-peer_p) if not member[i]][: 2 * hidden.size]
            peer.append(_ranking_figures(order, hidden))
    for name, figures in (("champion + collapse", ours), ("plain logistic regression", peer)):
        f = np.asarray(figures)
        print(
            f"  suggestions {name:26s} precision@10 {f[:, 0].mean():.3f}  hits@10/10 "
            f"{f[:, 1].mean():.3f}  hidden recall@2xhidden {f[:, 2].mean():.3f}  (n={len(f)})"
        )


def _ranking_figures(ranked: list[int], hidden: Rows) -> tuple[float, float, float]:
    truth = set(hidden.tolist())
    hits10 = sum(i in truth for i in ranked[:10])
    recall = sum(i in truth for i in ranked[: 2 * len(truth)]) / len(truth)
    return hits10 / min(10, len(truth)), hits10 / 10, recall


def queue(data: LabelledSet, seeds: int, rounds: int = 5, per_round: int = 8) -> None:
    aps: dict[str, list[list[float]]] = {
        "review_queue": [], "no_probable": [], "random": [], "uncertainty": [], "members_first": []
    }  # fmt: skip
    for seed in range(seeds):
        rng = np.random.default_rng(1000 + seed)
        test = np.zeros(len(data.labels), dtype=bool)
        for c in range(len(data.classes)):
            test[sample_rows(rng, np.flatnonzero(data.labels == c), 0.3)] = True
        for c in range(len(data.classes)):
            y = (data.labels == c).astype(np.int64)
            start = _initial(rng, y, ~test)
            for name in aps:
                aps[name].append(_simulate(data.X, y, test, start, name, seed, rounds, per_round))
    base = np.asarray(aps["random"])
    for name, runs in aps.items():
        a = np.asarray(runs)
        se = a.std(axis=0, ddof=1) / np.sqrt(len(a))
        gain = a[:, -1] - base[:, -1]
        rounds_text = "  ".join(
            f"{m:.3f}+/-{s:.3f}" for m, s in zip(a.mean(axis=0), se, strict=True)
        )
        gain_se = gain.std(ddof=1) / np.sqrt(len(gain))
        print(f"  queue {name:13s} AP {rounds_text}  | after 40 vs random "
              f"{gain.mean():+.4f}+/-{gain_se:.4f}")  # fmt: skip
    print(f"  (columns: 8 initial labels, then after each round of {per_round}; n={len(base)})")


def _initial(rng: np.random.Generator, y: NDArray[np.int64], pool: NDArray[np.bool_]) -> Rows:
    pos, neg = np.flatnonzero(pool & (y == 1)), np.flatnonzero(pool & (y == 0))
    return np.concatenate([rng.choice(pos, 4, replace=False), rng.choice(neg, 4, replace=False)])


def _simulate(
    X: NDArray[np.float32], y: NDArray[np.int64], test: NDArray[np.bool_], start: Rows,
    strategy: str, seed: int, rounds: int, per_round: int,
) -> list[float]:  # fmt: skip
    labelled = np.zeros(len(y), dtype=bool)
    labelled[start] = True
    rng = np.random.default_rng(seed)
    ids, out = np.arange(len(y)), []
    for r in range(rounds + 1):
        rows = np.flatnonzero(labelled)
        model = fit_candidate(CandidateName.LOGISTIC_REGRESSION, seed, X[rows], y[rows],
                              np.ones(rows.size))  # fmt: skip
        out.append(float(average_precision_score(y[test], model.predict_proba(X[test])[:, 1])))
        if r == rounds:
            break
        closed = labelled | test
        p = model.predict_proba(X)[:, 1]
        if strategy == "random":
            pick = rng.choice(np.flatnonzero(~closed), per_round, replace=False)
        elif strategy == "uncertainty":
            open_rows = np.flatnonzero(~closed)
            pick = open_rows[np.argsort(-uncertainty(p[open_rows], 0.5))[:per_round]]
        elif strategy == "members_first":
            open_rows = np.flatnonzero(~closed)
            pick = open_rows[np.lexsort((-p[open_rows], -y[open_rows]))[:per_round]]
        else:
            keep = ~test  # the held-out images are neither labelled nor candidates
            share = 0.0 if strategy == "no_probable" else PROBABLE_SHARE
            q = review_queue(Pool(ids[keep], p[keep], X[keep], labelled[keep]), threshold=0.5,
                             limit=per_round, probable_share=share)  # fmt: skip
            pick = np.asarray([e.image_id for e in q])
        labelled[pick] = True
    return out


def cost(data: LabelledSet, collections: int = 100, batch: int = 500) -> None:
    rng = np.random.default_rng(0)
    models = []
    for c in range(collections):
        y = (data.labels == c % len(data.classes)).astype(np.int64)
        rows = rng.choice(len(y), min(len(y), 200), replace=False)
        rows = np.union1d(rows, np.flatnonzero(y)[:5])
        models.append(fit_candidate(CandidateName.LOGISTIC_REGRESSION, c, data.X[rows], y[rows],
                                    np.ones(rows.size)))  # fmt: skip
    X = data.X[rng.choice(len(data.X), batch, replace=True)]
    every = np.tile(data.X, (max(1, 5_000 // len(data.X)), 1))
    with threadpool_limits(1):
        t0 = time.perf_counter()
        scores = score_matrix(models, X)
        t_batch = time.perf_counter() - t0
        t0 = time.perf_counter()
        score_matrix(models, every)
        t_all = time.perf_counter() - t0
    print(f"  cost: {batch} images x {collections} collections scored in {t_batch:.3f}s "
          f"({scores.size / t_batch:,.0f} scores/s, one BLAS thread); rescoring all "
          f"{len(every)} images of the focus instead {t_all:.2f}s "
          f"({t_all / t_batch:.0f}x)")  # fmt: skip


def main() -> None:
    args = parse_args()
    CANDIDATES[:] = args.candidates
    print(f"champion candidates: {', '.join(CANDIDATES)}")
    parts: dict[str, Callable[[LabelledSet], None]] = {
        "suggest": lambda d: suggestions(d, args.suggest_seeds, args.negative_sample),
        "audit": lambda d: audit(d, args.audit_seeds, _config),
        "queue": lambda d: queue(d, args.seeds),
        "cost": cost,
    }
    for name in args.sets:
        data = load_set(name)
        print(
            f"{name}: {len(data.labels)} images, {len(data.classes)} classes, dim {data.X.shape[1]}"
        )
        for part in args.parts:
            t0 = time.perf_counter()
            with threadpool_limits(1):  # as training runs (fitting.one_blas_thread)
                parts[part](data)
            print(f"  ({part}: {time.perf_counter() - t0:.0f}s)")


if __name__ == "__main__":
    main()
