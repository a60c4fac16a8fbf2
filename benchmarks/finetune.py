"""Fine-tuned EfficientNet-Lite against logistic regression on its frozen features and against
the recipe's own linear probe, on the clothing set (10 classes x ~150) or the 12 pet breeds.

The folder of each photo is its class; the split is the platform's own (`services.datasets`:
grouped, stratified, deterministic; a new split per seed). Per split seed, all on the same
network (`--model auto`, the default: the installed real-weight EfficientNet-Lite with the
lowest validation loss on the first seed among those whose trunk pass fits `--budget-s`):

- baseline: multinomial logistic regression on the network's frozen pooled features, C chosen
  on the validation split;
- probe: the recipe's epoch 0 (its linear probe on the same features);
- fine-tuned: a cached-trunk recipe (`--recipe`, default `recipe.DEFAULT_CACHED_RECIPE`;
  `learning.finetune.cached`): the last blocks, the head convolution and the head trained on
  cached outputs of the frozen trunk (computed once per photo and cached view; the trunk of the
  pretrained network is the same for every seed), LP-FT, EMA, selection and early stopping on
  validation loss.

Everything is chosen on validation splits; test accuracy is only reported. Prints, after each
seed, the means so far with paired standard errors (so a run cut short still reports), and
seconds per epoch per 100 training images (wall; and the one-time trunk pass per 100 photos).
Never asserts.

    python benchmarks/finetune.py [--dataset clothing|pets] [--seeds 0 1 2] [--model auto]
        [--recipe blocks2] [--trunk-cache /tmp/finetune-trunks]
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
from finetune_data import Run, baseline, load_run, split
from finetune_data import folder_images as folder_images  # predict_throughput.py imports it
from finetune_models import Trunk, choose, installed_lites, stored_trunk
from numpy.typing import NDArray
from shared_models import SHARED

from ml_platform.learning.finetune import (
    Augmentation,
    FinetuneConfig,
    FinetuneResult,
    LabelledImages,
    ModelName,
    build_model,
    finetune,
)
from ml_platform.learning.finetune.cached import cached_views, tail_scores
from ml_platform.learning.finetune.recipe import CACHED_RECIPES, DEFAULT_CACHED_RECIPE
from ml_platform.services.datasets import Split

D = CACHED_RECIPES[DEFAULT_CACHED_RECIPE]  # the default recipe (predict_throughput.py uses it)
OVERRIDES = ("epochs", "batch_size", "learning_rate", "warmup_epochs", "ema_decay", "patience",
             "train_blocks", "image_size", "label_smoothing", "augmented_views")  # fmt: skip


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset", choices=["clothing", "pets"], default="clothing")
    p.add_argument("--data-dir", type=Path, default=None, help="default ../shared/data/<dataset>")
    p.add_argument("--model", default="auto", choices=["auto", *(m.value for m in ModelName
                                                                  if m.is_lite)])  # fmt: skip
    p.add_argument(
        "--budget-s",
        type=float,
        default=900.0,
        help="time budget of --model auto's choice (trunk passes and first seed)",
    )
    p.add_argument("--seeds", type=int, nargs="+", default=list(range(10)))
    p.add_argument("--per-class", type=int, default=None, help="at most this many photos a class")
    p.add_argument("--recipe", choices=sorted(CACHED_RECIPES), default=DEFAULT_CACHED_RECIPE)
    for name in OVERRIDES:
        kind = float if name in ("learning_rate", "warmup_epochs", "ema_decay",
                                 "label_smoothing") else int  # fmt: skip
        p.add_argument("--" + name.replace("_", "-"), type=kind, default=None,
                       help="override the recipe's value")  # fmt: skip
    p.add_argument("--augmentation", choices=[a.value for a in Augmentation], default=None)
    p.add_argument("--trunk-cache", type=Path, default=None, help="keep trunk passes here")
    p.add_argument("--threads", type=int, default=2)
    return p.parse_args()


def recipe(args: argparse.Namespace) -> FinetuneConfig:
    """The named recipe with the values given on the command line."""
    given = {n: getattr(args, n) for n in (*OVERRIDES, "augmentation")
             if getattr(args, n) is not None}  # fmt: skip
    if "augmentation" in given:
        given["augmentation"] = Augmentation(given["augmentation"])
    return replace(CACHED_RECIPES[args.recipe], **given)


@dataclass(frozen=True)
class SeedResult:
    baseline: float
    tuned: float
    kept_epoch: int
    trajectory: list[float]  # test accuracy per epoch, 0 = the linear probe alone
    wall: float  # seconds per epoch per 100 training images
    val_loss: float
    val_accuracy: float
    seed: int

    @property
    def probe(self) -> float:
        return self.trajectory[0]


def run_seed(trunk: Trunk, run: Run, config: FinetuneConfig, seed: int) -> SeedResult:
    """Baseline, probe and fine-tuned test accuracy on the split of `seed`."""
    version = run.version(seed)
    base, c = baseline(trunk.features, version, run)
    (tr, y_tr), (va, y_va), (te, y_te) = (split(version, run, s) for s in Split)
    test = trunk.rows(te)[:, 0], torch.from_numpy(y_te)
    trajectory: list[float] = []
    config = replace(config, seed=seed, model_name=trunk.model)
    built = build_model(config, len(version.classes))
    result: FinetuneResult = finetune(
        built, _placeholder(y_tr),
        _placeholder(y_va), config,
        inspect=lambda _m, net: trajectory.append(tail_scores(net, trunk.first, *test)[1]),
        cached=(trunk.rows(tr)[:, : cached_views(config)], trunk.rows(va)[:, 0]),
    )  # fmt: skip
    tuned = tail_scores(result.net, trunk.first, *test)[1]
    wall = result.seconds_per_epoch * 100 / len(tr)
    print(f"seed {seed}: split {version.split_totals()}; baseline {base:.3f} (C={c}), probe "
          f"{trajectory[0]:.3f}, fine-tuned {tuned:.3f} (kept epoch {result.best_epoch}, val "
          f"loss {result.val_loss:.4f}, acc {result.val_accuracy:.3f}); per epoch "
          f"{result.seconds_per_epoch:.1f}s over {len(tr)} images; test accuracy per epoch "
          f"{[round(a, 3) for a in trajectory]}",
          flush=True)  # fmt: skip
    return SeedResult(base, tuned, result.best_epoch, trajectory, wall, result.val_loss,
                      result.val_accuracy, seed)  # fmt: skip


def _placeholder(labels: NDArray[np.int64]) -> LabelledImages:
    """The split's labels; its images are never read (their trunk outputs are cached)."""
    return LabelledImages([None] * len(labels), labels)  # type: ignore[list-item]


def paired(a: list[float], b: list[float]) -> str:
    """Mean of a - b with its standard error over seeds."""
    d = np.asarray(a) - np.asarray(b)
    se = float(d.std(ddof=1) / np.sqrt(len(d))) if len(d) > 1 else float("nan")
    return f"{d.mean():+.3f} (se {se:.3f})"


def report(rows: list[SeedResult], trunk: Trunk, photos: int) -> None:
    base, tuned, probe = ([getattr(r, k) for r in rows] for k in ("baseline", "tuned", "probe"))
    print(
        f"  after {len(rows)} seed(s), {trunk.model}: baseline {np.mean(base):.3f}, probe "
        f"{np.mean(probe):.3f}, fine-tuned {np.mean(tuned):.3f}; fine-tuned - baseline "
        f"{paired(tuned, base)} (goal >= +0.03, se <= 0.01); fine-tuned - probe "
        f"{paired(tuned, probe)}; kept the probe on {sum(r.kept_epoch == 0 for r in rows)}; "
        f"{np.mean([r.wall for r in rows]):.1f}s per epoch per 100 training images (goal < 60), "
        f"trunk pass {trunk.seconds * 100 / photos:.1f}s per 100 photos (once)", flush=True,
    )  # fmt: skip


def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.threads)
    root = args.data_dir or SHARED / "data" / args.dataset
    run, photos = load_run(root, args.dataset, args.per_class)
    spec = run.spec
    config = recipe(args)
    print(f"{len(photos)} photos, {len(spec.classes)} classes ({root}); recipe {args.recipe}: "
          f"{config}; "
          f"torch threads {torch.get_num_threads()}", flush=True)  # fmt: skip
    started = time.perf_counter()
    first: dict[ModelName, SeedResult] = {}  # the first seed of each candidate, kept
    if args.model == "auto":

        def val_loss(trunk: Trunk, config: FinetuneConfig) -> float:
            first[trunk.model] = run_seed(trunk, run, config, args.seeds[0])
            return first[trunk.model].val_loss

        choice = choose(config, installed_lites(), photos, len(spec.classes), args.budget_s,
                        val_loss)  # fmt: skip
        print("--model auto:\n  " + "\n  ".join(choice.why), flush=True)
        trunk = choice.trunk
    else:
        one = replace(config, model_name=ModelName(args.model))
        trunk = stored_trunk(one, photos, len(spec.classes), args.trunk_cache)
    print(f"network {trunk.model}, trunk pass {trunk.seconds:.0f}s; selection and setup "
          f"{time.perf_counter() - started:.0f}s", flush=True)  # fmt: skip
    rows = []
    for seed in args.seeds:
        kept = first.get(trunk.model) if seed == args.seeds[0] else None
        rows.append(kept or run_seed(trunk, run, config, seed))
        report(rows, trunk, len(photos))


if __name__ == "__main__":
    main()
