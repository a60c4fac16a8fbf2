"""Scoring and printing for benchmarks/face_lfw.py: the view-set choice by its rule (written
in face_lfw.py's docstring before any run), the protocol's table, the paired differences."""

from __future__ import annotations

import numpy as np
from lfw import FoldScores, LfwPair, Vector, paired_difference, score_folds, summary

Vectors = dict[str, Vector | None]
CANDIDATES = ("mirror", "zoom4", "turn8")  # the rule's candidates, cheapest first
CHOICE_FOLDS = 3  # folds 1-3 (0-based 0..2) choose; folds 4-5 check
BASE = "mirror"  # the default before this choice: the paired differences are against it


def paired(scores: FoldScores, best: FoldScores) -> tuple[float, float]:
    """best - scores over the folds: mean difference and its standard error."""
    diff = np.array(best.accuracies) - np.array(scores.accuracies)
    return float(diff.mean()), float(np.std(diff, ddof=1) / np.sqrt(len(diff)))


def choose_view_set(options: dict[str, Vectors], pairs: list[LfwPair]) -> str:
    """The rule: on folds 1-3 alone, the cheapest candidate within one paired standard error
    of the best mean; folds 4-5 (the protocol's thresholds) printed as the check."""
    early = [p for p in pairs if p.fold < CHOICE_FOLDS]
    scores = {name: score_folds(options[name], early) for name in CANDIDATES}
    best = max(CANDIDATES, key=lambda name: scores[name].mean)
    within = [
        n
        for n in CANDIDATES
        if paired(scores[n], scores[best])[0] <= paired(scores[n], scores[best])[1]
    ]
    chosen = within[0]
    print(f"view-set choice on folds 1-{CHOICE_FOLDS} ({len(early)} pairs; thresholds from the "
          f"other of these folds): best {best}, chosen {chosen}")  # fmt: skip
    late = sorted({p.fold for p in pairs} - set(range(CHOICE_FOLDS)))
    for name in CANDIDATES:
        gap, se = paired(scores[name], scores[best])
        check = score_folds(options[name], pairs).accuracies[CHOICE_FOLDS:]
        print(f"  {name:<7} folds 1-3 {summary('', scores[name]).strip()}; best - it "
              f"{gap:+.4f} ± {se:.4f}; check folds {[f + 1 for f in late]}: "
              f"{np.mean(check) if check else float('nan'):.4f}")  # fmt: skip
    return chosen


def report(results: dict[str, Vectors], pairs: list[LfwPair]) -> None:
    scores = {label: score_folds(vectors, pairs) for label, vectors in results.items()}
    for label, score in scores.items():
        print(summary(label, score))
    print(f"paired over folds against {BASE} (mean difference ± standard error):")
    for label, score in scores.items():
        print(f"  {label:<40} {paired_difference(score, scores[BASE])}")
    found = [p for p in pairs if all(v[p.a] is not None and v[p.b] is not None
                                     for v in results.values())]  # fmt: skip
    print(f"the {len(found)} pairs whose faces every pipeline found:")
    for label, vectors in results.items():
        print(summary(f"  {label}", score_folds(vectors, found)))
    for label, vectors in results.items():
        missing = [n for n, v in vectors.items() if v is None]
        print(f"{label}: {len(missing)} photos without a face: {', '.join(missing) or '-'}")


def reference_gap(platform: Vectors, reference: Vectors) -> None:
    both = [n for n, v in platform.items() if v is not None and reference.get(n) is not None]
    gaps = [float(np.linalg.norm(platform[n] - reference[n])) for n in both]  # type: ignore[operator]
    print(f"distance of the platform's one-run vector to the reference's, same photo: mean "
          f"{np.mean(gaps):.4f}, median {np.median(gaps):.4f} ({len(both)} photos)")  # fmt: skip
