"""Where the server's resident memory goes, step by step, at 10,000 champions.

Builds the registry of benchmarks/serve_scale.py (benchmarks/serve_scale_registry.py) and
its tiny local CLIP/DINOv2 checkpoints, then runs the serving app in this process and prints
the RSS (from /proc/self/status) and what the model budget says is loaded after each step:
the app's import, `create_app`, the lifespan, the detector, the champion index, the preload
(its warm step), warm `/v1/analyze` requests, requests that cycle through collections until
the budget evicted many times over, and `/v1/predict` on a few dataset models.

    python benchmarks/serve_memory.py [--collections 10000] [--datasets 20] [--budget-mb 16]
        [--imports]  # instead: the RSS each top-level package adds when imported
        [--root DIR]  # build the registry there once, reuse it on later runs
        [--trim]  # each row also gives the RSS after glibc's malloc_trim(0)
        [--until index]  # stop after the champion index
        [--home DIR]  # ML_PLATFORM_HOME (its ONNX cache) kept across runs; default a fresh one
        [--tree /work/main --tree . [--repeat 2]]  # each tree's code in turn, a process each

With --tree, the script runs itself once per tree and repeat, in turn (so a noisy machine
weighs on both alike), importing `ml_platform` from that tree; the registry (--root) is
shared.

Prints; never asserts.
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
PACKAGES = ("numpy", "fastapi", "sqlalchemy", "pandas", "pyarrow", "scipy", "sklearn",
            "mlflow", "onnxruntime", "cv2", "faiss", "opentelemetry.sdk.trace", "torch",
            "transformers")  # fmt: skip
IDLE_S = 6.0  # past model_budget.RELEASE_EVERY_S (imported late: the first row is bare Python)


def rss_mb() -> float:
    with open("/proc/self/status") as status:
        line = next(x for x in status if x.startswith("VmRSS:"))
    return int(line.split()[1]) / 1024


class Steps:
    """Prints one row per step: RSS, its change, what the budget holds, seconds."""

    def __init__(self, trim: bool) -> None:
        self.trim = trim
        self.last = rss_mb()
        self.start = time.perf_counter()
        self.budget: Any = None
        print("| step | RSS MB | change MB | budget says loaded MB (models) | s |")
        print("|---|---|---|---|---|")
        self.row("python + this script", 0.0)

    def row(self, step: str, seconds: float) -> None:
        gc.collect()
        now = rss_mb()
        if self.trim:
            ctypes.CDLL("libc.so.6").malloc_trim(0)
            step = f"{step} (after malloc_trim: {rss_mb():.0f})"
        loaded = "-"
        if self.budget is not None:
            loaded = f"{self.budget.total_bytes() / 2**20:.1f} ({len(self.budget.loaded())})"
        print(f"| {step} | {now:.0f} | {now - self.last:+.0f} | {loaded} | {seconds:.1f} |",
              flush=True)  # fmt: skip
        self.last = now

    def timed(self, step: str, call: Any, *args: Any) -> Any:
        start = time.perf_counter()
        result = call(*args)
        self.row(step, time.perf_counter() - start)
        return result


def imports() -> None:
    """Each package's own RSS on top of those before it (a subprocess per order)."""
    import importlib

    before = rss_mb()
    for name in PACKAGES:
        importlib.import_module(name)
        now = rss_mb()
        print(f"| import {name} | {now:.0f} | {now - before:+.0f} |")
        before = now


def environment(uri: str, models: dict[str, Path], budget_mb: int) -> None:
    os.environ.update({"ML_PLATFORM_MLFLOW_TRACKING_URI": uri, "HF_HUB_OFFLINE": "1",
                       "ML_PLATFORM_CLIP_MODEL": str(models["clip"]),
                       "ML_PLATFORM_DINO_MODEL": str(models["dino"]),
                       "ML_PLATFORM_ALLOW_RANDOM_WEIGHTS": "true",
                       "ML_PLATFORM_SERVE_PRELOAD": "false",
                       "ML_PLATFORM_SERVE_MODEL_MEMORY_MB": str(budget_mb)})  # fmt: skip


def build(root: Path, args: argparse.Namespace) -> None:
    """The registry and checkpoints, in a subprocess: what building them imports (torch,
    sklearn) is not counted in this process. Reused when `root` has them (`built.json`)."""
    record = root / "built.json"
    if not record.is_file():
        record.write_text(built_in_subprocess(root, args))
    built = json.loads(record.read_text())
    environment(built["uri"], {"clip": Path(built["clip"]), "dino": Path(built["dino"])},
                args.budget_mb)  # fmt: skip


def built_in_subprocess(root: Path, args: argparse.Namespace) -> str:
    code = ("import sys, json; sys.path[:0] = [sys.argv[1], sys.argv[1] + '/benchmarks'];"
            "from pathlib import Path; from serve_scale_registry import build_registry;"
            "from tests.tiny_models import save_tiny_models; root = Path(sys.argv[2]);"
            "models = save_tiny_models(root / 'models');"
            "uri = build_registry(root, int(sys.argv[3]), int(sys.argv[4]));"
            "print(json.dumps({'uri': uri, **{k: str(v) for k, v in models.items()}}))"
            )  # fmt: skip
    out = subprocess.run([sys.executable, "-c", code, str(REPO), str(root),
                          str(args.collections), str(args.datasets)],
                         check=True, capture_output=True, text=True).stdout  # fmt: skip
    return out.strip().splitlines()[-1]


def serve(steps: Steps, args: argparse.Namespace) -> None:
    app_module = steps.timed("import ml_platform.serving.app", __import__,
                             "ml_platform.serving.app")  # fmt: skip
    from ml_platform.settings import Settings

    app = steps.timed("create_app", app_module.serving.app.create_app, Settings())
    state = app.state.serving
    steps.budget = state.budget
    from starlette.testclient import TestClient

    from ml_platform.serving.preload import warm_up_image

    with TestClient(app) as client:
        steps.row("lifespan started (TestClient, httpx)", 0.0)
        steps.timed("detector loaded and run once", state.models.detect, warm_up_image())
        steps.timed(f"champion index read ({args.collections} + {args.datasets})",
                    state.preloader._index)  # fmt: skip
        if args.until == "index":
            return
        problems = steps.timed("preload (warm step)", state.preloader._warm)
        if problems:
            print(f"preload problems: {problems}")
        requests(steps, client, args)


def requests(steps: Steps, client: Any, args: argparse.Namespace) -> None:
    from serve_scale import body, photo

    image = photo()

    def analyze(ids: list[int]) -> None:
        for start in range(0, len(ids), 25):
            response = client.post("/v1/analyze", json=body(image, ids[start : start + 25]))
            assert response.status_code == 200, response.text[:300]

    def warm() -> None:
        for size in (1, 10, 50):
            for _ in range(args.requests):
                analyze(list(range(1, size + 1)))

    steps.timed("warm analyze requests (1, 10, 50 collections)", warm)

    def evict() -> None:
        for first in range(101, 101 + args.cycled, 50):
            analyze(list(range(first, min(first + 50, 101 + args.cycled))))

    steps.timed(f"{args.cycled} more collections classified (evictions)", evict)
    steps.timed("the same again (evictions)", evict)
    steps.timed(f"idle {IDLE_S:.0f} s (the budget releases freed memory)", time.sleep, IDLE_S)

    def predict() -> None:
        for index in range(args.predicted):
            payload = {"dataset": f"dataset-{index}", "image_base64": image}
            response = client.post("/v1/predict", json=payload)
            assert response.status_code == 200, response.text[:300]

    steps.timed(f"/v1/predict on {args.predicted} dataset models", predict)
    steps.timed(f"/v1/predict on {args.predicted} dataset models again", predict)
    steps.timed(f"idle {IDLE_S:.0f} s (the budget releases freed memory)", time.sleep, IDLE_S)


def each_tree(trees: list[Path], repeat: int) -> None:
    """This script again, per tree and repeat, its `ml_platform` imported from that tree."""
    argv = sys.argv[1:]
    for flag in ("--tree", "--repeat"):  # both take a value
        while flag in argv:
            del argv[argv.index(flag) : argv.index(flag) + 2]
    for run in range(repeat):
        for tree in trees:
            print(f"\n## {tree.resolve()} (run {run + 1})", flush=True)
            env = {**os.environ, "PYTHONPATH": str(tree.resolve())}
            subprocess.run([sys.executable, __file__, *argv, "--code", str(tree)], env=env,
                           check=True)  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--collections", type=int, default=10_000)
    parser.add_argument("--datasets", type=int, default=20)
    parser.add_argument("--budget-mb", type=int, default=16)
    parser.add_argument("--requests", type=int, default=5, help="warm requests per size")
    parser.add_argument("--cycled", type=int, default=2000, help="collections cycled through")
    parser.add_argument("--predicted", type=int, default=3, help="dataset models asked")
    parser.add_argument("--imports", action="store_true", help="package import costs only")
    parser.add_argument("--root", type=Path, help="where the registry is built or reused")
    parser.add_argument("--trim", action="store_true", help="RSS after malloc_trim too")
    parser.add_argument("--until", choices=["index"], help="stop after this step")
    parser.add_argument("--home", type=Path, help="ML_PLATFORM_HOME kept across runs")
    parser.add_argument("--tree", type=Path, action="append", help="the code to measure")
    parser.add_argument("--repeat", type=int, default=1, help="runs per --tree")
    parser.add_argument("--code", type=Path, help=argparse.SUPPRESS)  # set by --tree
    args = parser.parse_args()
    if args.tree:
        each_tree(args.tree, args.repeat)
        return
    if args.code:
        sys.path.insert(0, str(args.code.resolve()))
    if args.imports:
        imports()
        return
    sys.path.insert(0, str(REPO / "benchmarks"))
    with tempfile.TemporaryDirectory(prefix="serve-memory-") as tmp:
        root = args.root or Path(tmp)
        root.mkdir(parents=True, exist_ok=True)
        start = time.perf_counter()
        build(root, args)
        print(f"registry ready in {time.perf_counter() - start:.0f} s (built in a subprocess)")
        with tempfile.TemporaryDirectory(prefix="serve-memory-home-") as fresh:
            os.environ["ML_PLATFORM_HOME"] = str(args.home or fresh)  # its ONNX cache
            serve(Steps(args.trim), args)


if __name__ == "__main__":
    main()
