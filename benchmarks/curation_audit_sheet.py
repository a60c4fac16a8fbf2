"""Are the clothing audit's false positives wrong in the source? (issue 22; docs/curation.md)

For one seed of benchmarks/curation_audit.py (10 % of the labels moved), the audit's flagged
members that were NOT planted, surest first, and as a control members neither planted nor
flagged, drawn at random: contact sheets (thumbnails with the given label and the class with
the highest other out-of-fold probability) and a CSV of their files, for a person to judge.

    python benchmarks/curation_audit_sheet.py [--seed 0] [--count 48] [--out DIR]

`--out` defaults to `sheets/` in the benchmark cache (curation_data.CACHE_DIR).
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np
from curation_audit import oof_matrix, planted
from curation_data import CACHE_DIR, image_paths, load_set
from numpy.typing import NDArray
from PIL import Image
from shared_models import SHARED

from ml_platform.learning.curation.audit import IssueKind, LabelIssue, find_label_issues
from ml_platform.learning.training import TrainingConfig
from ml_platform.vision.contact_sheet import SheetRow, Tile, contact_sheet

ROW_TILES = 8
Entry = tuple[int, int, str]  # row, given class, what the audit said (score, tier) or ""


def member_flags(X: NDArray[np.float32], noisy: NDArray[np.int64],
                 P: NDArray[np.float64]) -> list[tuple[int, LabelIssue]]:  # fmt: skip
    """Every collection's flagged members (image_id: the row), with the collection."""
    out = []
    for c in range(P.shape[1]):
        y = (noisy == c).astype(np.int64)
        out += [(c, i) for i in find_label_issues(np.arange(len(y)), y, P[:, c], X)
                if i.kind is IssueKind.LIKELY_NOT_MEMBER]  # fmt: skip
    return out


def control_rows(rng: np.random.Generator, truth: NDArray[np.int64], noisy: NDArray[np.int64],
                 flagged: set[int], count: int) -> list[int]:  # fmt: skip
    """Random members neither planted nor flagged in any collection, in file order."""
    pool = [r for r in range(len(truth)) if noisy[r] == truth[r] and r not in flagged]
    return sorted(int(r) for r in rng.choice(pool, count, replace=False))


def write(entries: list[Entry], name: str, out: Path, P: NDArray[np.float64],
          classes: tuple[str, ...], files: list[str]) -> None:  # fmt: skip
    """`out/name.png` (rows of 8, numbered) and `out/name.csv`."""
    tiles, table = [], []
    for k, (r, c, said) in enumerate(entries):
        other = classes[int(np.argmax(np.where(np.arange(P.shape[1]) == c, -1.0, P[r])))]
        image = Image.open(SHARED / "data" / "clothing" / files[r])
        tiles.append(Tile(image, f"#{k} {classes[c]}>{other}"))
        table.append([k, files[r], classes[c], other, said])
    sheet = [
        SheetRow(
            f"{name} {i}-{i + len(tiles[i : i + ROW_TILES]) - 1}", tuple(tiles[i : i + ROW_TILES])
        )
        for i in range(0, len(tiles), ROW_TILES)
    ]
    (out / f"{name}.png").write_bytes(contact_sheet(sheet, tile_px=200))
    with (out / f"{name}.csv").open("w", newline="") as f:
        csv.writer(f).writerows([["k", "file", "label", "highest_other_oof", "audit"], *table])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--count", type=int, default=48)
    p.add_argument("--out", type=Path, default=CACHE_DIR / "sheets")
    args = p.parse_args()
    data = load_set("clothing")
    root = SHARED / "data" / "clothing"
    files = [str(path.relative_to(root)) for path in image_paths(root)[0]]
    noisy = planted(data, args.seed)
    P = oof_matrix(data, noisy, TrainingConfig(seed=args.seed))  # the benchmark's champion
    found = member_flags(data.X, noisy, P)
    issues = sorted(
        (i for c, i in found if data.labels[i.image_id] == c), key=lambda i: (-i.score, i.image_id)
    )  # surest first; not planted
    flagged = {i.image_id for _, i in found}
    top = [(i.image_id, int(noisy[i.image_id]), f"{i.score:.3f} {i.tier}")
           for i in issues[: args.count]]  # fmt: skip
    rng = np.random.default_rng(12345)
    control = [(r, int(noisy[r]), "") for r in
               control_rows(rng, data.labels, noisy, flagged, args.count)]  # fmt: skip
    args.out.mkdir(parents=True, exist_ok=True)
    write(top, "flagged_not_planted", args.out, P, data.classes, files)
    write(control, "control_not_flagged", args.out, P, data.classes, files)
    print(f"seed {args.seed}: {len(issues)} flagged members not planted; sheets in {args.out}")


if __name__ == "__main__":
    main()
