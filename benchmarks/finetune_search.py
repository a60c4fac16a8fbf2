"""Choose a cached-trunk fine-tuning recipe on validation splits only.

Runs each named recipe of `learning.finetune.recipe.CACHED_RECIPES` on the same split seeds
(the platform's split, as `finetune.py`) over one trunk pass (the widest the recipes need,
carried on to each recipe's first trained block) and ranks them by mean validation loss, then
validation accuracy. The rule: the recipe with the lowest mean validation loss is the default.
`finetune.py`'s per-seed lines also print test accuracy; the ranking never reads it.

    python benchmarks/finetune_search.py [--recipes blocks2 blocks4-aug] [--seeds 0 1 2]
        [--trunk-cache /tmp/finetune-trunks] [--threads 2]
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from finetune import SeedResult, run_seed
from finetune_data import load_run
from finetune_models import stored_trunk
from shared_models import SHARED

from ml_platform.learning.finetune import Augmentation, FinetuneConfig, ModelName
from ml_platform.learning.finetune.recipe import CACHED_RECIPES


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset", choices=["clothing", "pets"], default="clothing")
    p.add_argument("--data-dir", type=Path, default=None, help="default ../shared/data/<dataset>")
    p.add_argument("--model", default=ModelName.EFFICIENTNET_LITE0.value,
                   choices=[m.value for m in ModelName if m.is_lite])  # fmt: skip
    p.add_argument("--recipes", nargs="+", choices=sorted(CACHED_RECIPES),
                   default=sorted(CACHED_RECIPES))  # fmt: skip
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--per-class", type=int, default=None, help="at most this many photos a class")
    p.add_argument("--trunk-cache", type=Path, default=None, help="keep trunk passes here")
    p.add_argument("--threads", type=int, default=2)
    return p.parse_args()


def widest(configs: list[FinetuneConfig]) -> FinetuneConfig:
    """One trunk pass serving every recipe: the most blocks, views of their one policy."""
    policies = {c.augmentation for c in configs} - {Augmentation.NONE}
    if len(policies) > 1:
        raise ValueError(f"one trunk pass holds views of one policy; the recipes use {policies}")
    return replace(configs[0], train_blocks=max(c.train_blocks or 0 for c in configs),
                   augmentation=next(iter(policies), Augmentation.NONE),
                   augmented_views=max(c.augmented_views for c in configs))  # fmt: skip


def summary(name: str, rows: list[SeedResult]) -> tuple[float, float]:
    loss, accuracy = (float(np.mean([getattr(r, k) for r in rows]))
                      for k in ("val_loss", "val_accuracy"))  # fmt: skip
    wall = np.mean([r.wall for r in rows])
    print(f"== {name}: mean val loss {loss:.4f}, val accuracy {accuracy:.3f} over seeds "
          f"{[r.seed for r in rows]}; {wall:.1f}s per epoch per 100 training images",
          flush=True)  # fmt: skip
    return loss, accuracy


def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.threads)
    run, photos = load_run(args.data_dir or SHARED / "data" / args.dataset, args.dataset,
                           args.per_class)  # fmt: skip
    classes = len(run.spec.classes)
    model = ModelName(args.model)
    configs = {n: replace(CACHED_RECIPES[n], model_name=model) for n in args.recipes}
    started = time.perf_counter()
    trunk = stored_trunk(widest(list(configs.values())), photos, classes, args.trunk_cache)
    print(f"{len(photos)} photos; trunk pass (or load) {time.perf_counter() - started:.0f}s "
          f"(pass {trunk.seconds:.0f}s), from block {trunk.first}, "
          f"{trunk.activations.shape[1]} view(s)", flush=True)  # fmt: skip
    own = {name: trunk.at(config, classes) for name, config in configs.items()}
    rows: dict[str, list[SeedResult]] = {name: [] for name in configs}
    for seed in args.seeds:  # seed by seed, so a run cut short compares on the same seeds
        for name, config in configs.items():
            print(f"-- {name}", flush=True)
            rows[name].append(run_seed(own[name], run, config, seed))
        rank(rows)


def rank(rows: dict[str, list[SeedResult]]) -> None:
    """Print each recipe's means and the one the rule picks (lowest mean validation loss)."""
    scored = sorted(((summary(name, r), name) for name, r in rows.items()),
                    key=lambda s: (s[0][0], -s[0][1]))  # fmt: skip
    print(f"chosen so far: {scored[0][1]} (lowest mean validation loss)", flush=True)


if __name__ == "__main__":
    main()
