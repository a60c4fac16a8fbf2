"""LFW's standard verification protocol (View 2) on the folds in ../shared/data/lfw.

`pairs.txt` in LFW's own format: a header ``<folds> <n>``, then per fold ``n`` same-person
lines (``name i j``) and ``n`` different-person lines (``name1 i name2 j``); a photo is
``<name>/<name>_<i:04d>.jpg``. Each fold is scored with the distance threshold chosen on the
other folds; the figure is the mean accuracy over the folds and their standard deviation.

A pipeline maps one photo to a unit vector, or None when it finds no face. A pair with a
photo lacking a vector counts as an error (the conservative choice; the count is printed).
Vectors are cached in the temp directory under a key naming the pipeline and its code, so a
rerun only computes what changed.
"""

from __future__ import annotations

import atexit
import hashlib
import json
import logging
import os
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

log = logging.getLogger("lfw")

Vector = np.ndarray
Pipeline = Callable[[Path], Vector | None]
SAVE_EVERY = 50  # photos between cache saves: an interrupted run resumes


@dataclass(frozen=True)
class LfwPair:
    fold: int
    a: str  # photo paths relative to the LFW directory
    b: str
    same: bool


def photo(name: str, index: str) -> str:
    return f"{name}/{name}_{int(index):04d}.jpg"


def load_lfw_pairs(lfw: Path) -> list[LfwPair]:
    """The pairs of ``lfw/pairs.txt``, each with its fold (0-based)."""
    lines = (lfw / "pairs.txt").read_text().splitlines()
    folds, n = (int(v) for v in lines[0].split())
    rows = [line.split() for line in lines[1:] if line.strip()]
    if len(rows) != folds * 2 * n:
        raise ValueError(f"{lfw}/pairs.txt: header says {folds} folds of 2 x {n}, "
                         f"found {len(rows)} pair lines")  # fmt: skip
    pairs = []
    for k, row in enumerate(rows):
        fold, same = k // (2 * n), k % (2 * n) < n
        if same:
            pairs.append(LfwPair(fold, photo(row[0], row[1]), photo(row[0], row[2]), True))
        else:
            pairs.append(LfwPair(fold, photo(row[0], row[1]), photo(row[2], row[3]), False))
    return pairs


def photos_of(pairs: Iterable[LfwPair]) -> list[str]:
    """The photos of ``pairs`` in the order they first appear (fold by fold)."""
    return list(dict.fromkeys(name for p in pairs for name in (p.a, p.b)))


def source_key(*paths: Path, extra: str = "") -> str:
    """A short hash of files' bytes (and ``extra``): the cache key of a pipeline's code."""
    digest = hashlib.sha256(extra.encode())
    for path in sorted(paths):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def cached_vectors(
    label: str, key: str, lfw: Path, names: list[str], pipeline: Pipeline
) -> dict[str, Vector | None]:
    """``pipeline`` on every photo, read from / saved to a cache file in the temp dir."""
    keyed = {label: key}
    return cached_views(keyed, lfw, names, lambda photo, _: {label: pipeline(photo)})[label]


ViewsPipeline = Callable[[Path, list[str]], dict[str, Vector | None]]


def cached_views(
    keys: dict[str, str], lfw: Path, names: list[str], pipeline: ViewsPipeline
) -> dict[str, dict[str, Vector | None]]:
    """Several vectors per photo (one per label of ``keys``, each cached in its own file under
    its key): ``pipeline(photo, labels)`` runs once per photo for the labels not cached yet."""
    paths = {
        lb: Path(tempfile.gettempdir()) / f"ml_platform_lfw_{lb}_{k}.npz" for lb, k in keys.items()
    }
    cached = {label: _load(path) for label, path in paths.items()}
    todo = [n for n in names if any(n not in v for v in cached.values())]
    if todo:
        counts = ", ".join(f"{len(v)} in {paths[lb].name}" for lb, v in cached.items())
        log.info("%s: %d photos to embed (cached: %s)", ", ".join(keys), len(todo), counts)
    start = time.perf_counter()
    for done, name in enumerate(todo, 1):
        missing = [label for label, v in cached.items() if name not in v]
        for label, vector in pipeline(lfw / name, missing).items():
            cached[label][name] = vector
        if done % SAVE_EVERY == 0 or done == len(todo):
            for label, vectors in cached.items():
                _save(paths[label], vectors)
            rate = (time.perf_counter() - start) / done
            log.info("%d/%d photos, %.0f ms each", done, len(todo), rate * 1000)
    return {label: {n: v[n] for n in names} for label, v in cached.items()}


def _load(path: Path) -> dict[str, Vector | None]:
    if not path.is_file():
        return {}
    with np.load(path) as data:
        names, matrix = data["names"], data["vectors"]
    return {str(n): (None if np.isnan(v).any() else v) for n, v in zip(names, matrix, strict=True)}


def _save(path: Path, vectors: dict[str, Vector | None]) -> None:
    dim = next((len(v) for v in vectors.values() if v is not None), 128)
    rows = [np.full(dim, np.nan, np.float32) if v is None else v for v in vectors.values()]
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, names=np.array(list(vectors)), vectors=np.array(rows, np.float32))
    tmp.replace(path)


class JsonCache:
    """A dict of JSON values kept in the temp dir under ``name`` (e.g. each photo's face box,
    keyed by the detector's code, so a run that only changes the alignment skips detection)."""

    def __init__(self, name: str) -> None:
        self.path = Path(tempfile.gettempdir()) / f"ml_platform_lfw_{name}.json"
        self.values: dict[str, object] = (
            json.loads(self.path.read_text()) if self.path.is_file() else {}
        )
        self._unsaved = 0
        atexit.register(self.save)

    def get(self, key: str, compute: Callable[[], object]) -> object:
        if key not in self.values:
            self._merge()  # another run may have computed it meanwhile
        if key not in self.values:
            self.values[key] = compute()
            self._unsaved += 1
            if self._unsaved >= SAVE_EVERY // 5:
                self.save()
        return self.values[key]

    def _merge(self) -> None:
        if self.path.is_file():
            self.values = {**json.loads(self.path.read_text()), **self.values}

    def save(self) -> None:
        if not self._unsaved:
            return
        self._merge()
        tmp = self.path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(self.values))
        tmp.replace(self.path)
        self._unsaved = 0


def pair_distances(vectors: dict[str, Vector | None], pairs: list[LfwPair]) -> np.ndarray:
    """Euclidean distances; NaN where a photo has no vector."""
    out = np.full(len(pairs), np.nan)
    for i, p in enumerate(pairs):
        va, vb = vectors.get(p.a), vectors.get(p.b)
        if va is not None and vb is not None:
            out[i] = float(np.linalg.norm(va - vb))
    return out


def best_threshold(d: np.ndarray, same: np.ndarray) -> float:
    """The threshold (same person below it) with the best accuracy on these pairs, the middle
    of the best run; pairs without a distance are left out of the choice."""
    d, same = d[~np.isnan(d)], same[~np.isnan(d)]
    cuts = np.sort(d)
    candidates = np.concatenate([[cuts[0] - 1e-6], (cuts[1:] + cuts[:-1]) / 2, [cuts[-1] + 1e-6]])
    accuracy = np.array([np.mean((d < t) == same) for t in candidates])
    best = np.flatnonzero(accuracy == accuracy.max())
    return float(candidates[best[len(best) // 2]])


@dataclass(frozen=True)
class FoldScores:
    accuracies: list[float]
    thresholds: list[float]
    missing_pairs: int
    wrong: list[LfwPair]

    @property
    def mean(self) -> float:
        return float(np.mean(self.accuracies))

    @property
    def std(self) -> float:
        return float(np.std(self.accuracies, ddof=1)) if len(self.accuracies) > 1 else 0.0


def score_folds(vectors: dict[str, Vector | None], pairs: list[LfwPair]) -> FoldScores:
    """Each fold's accuracy at the threshold chosen on the other folds (a pair without a
    distance is an error)."""
    d = pair_distances(vectors, pairs)
    same = np.array([p.same for p in pairs])
    fold = np.array([p.fold for p in pairs])
    accuracies, thresholds, wrong = [], [], []
    for k in sorted(set(fold.tolist())):
        threshold = best_threshold(d[fold != k], same[fold != k])
        test = np.flatnonzero(fold == k)
        right = ~np.isnan(d[test]) & ((d[test] < threshold) == same[test])
        accuracies.append(float(right.mean()))
        thresholds.append(threshold)
        wrong += [pairs[i] for i in test[~right]]
    return FoldScores(accuracies, thresholds, int(np.isnan(d).sum()), wrong)


def paired_difference(scores: FoldScores, base: FoldScores) -> str:
    """``scores`` - ``base``, fold by fold: the mean difference in accuracy ± its standard
    error (the folds' standard deviation / sqrt(folds)), and the errors gained or lost."""
    diff = np.array(scores.accuracies) - np.array(base.accuracies)
    se = float(np.std(diff, ddof=1) / np.sqrt(len(diff))) if len(diff) > 1 else 0.0
    return (f"{float(diff.mean()):+.4f} ± {se:.4f}  errors {len(scores.wrong)} vs "
            f"{len(base.wrong)}")  # fmt: skip


def unit(v: np.ndarray) -> np.ndarray:
    """``v`` scaled to unit length, float32."""
    return np.asarray(v / np.linalg.norm(v), dtype=np.float32)


def summary(label: str, scores: FoldScores) -> str:
    folds = " ".join(f"{a:.4f}" for a in scores.accuracies)
    return (
        f"{label:<40} {scores.mean:.4f} ± {scores.std:.4f}  folds [{folds}]  "
        f"threshold {np.mean(scores.thresholds):.3f}  errors {len(scores.wrong)} "
        f"(pairs without a vector {scores.missing_pairs})"
    )
