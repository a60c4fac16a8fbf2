"""Resident memory of a process that builds CLIP and DINOv2 from a warm ONNX cache.

Writes the tiny local checkpoints of tests/tiny_models.py under ROOT, warms the ONNX cache
with one full build of each (backend onnx, in a subprocess), then, in fresh processes, builds
both again with the code under each --tree (e.g. main's checkout against a branch) and prints
the RSS, peak RSS, wall time and whether torch / transformers were imported. The trees are
measured in turn, --repeat times each, so a noisy machine weighs on both alike.

    python benchmarks/onnx_direct_rss.py --root DIR --tree /work/main --tree . [--repeat 3]

Prints; never asserts.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BUILD = """
import json, sys, time
from pathlib import Path
started = time.perf_counter()
from ml_platform.vision.embedders import EmbedderOptions, build_embedder
root = Path(sys.argv[1])
options = EmbedderOptions(clip_model=str(root / "models" / "clip"),
                          dino_model=str(root / "models" / "dino"), backend="onnx",
                          onnx_cache_dir=root / "onnx")
built = [build_embedder(n, options) for n in ("embed_clip_vit_b_32", "embed_dino_v2")]
status = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines())
print(json.dumps({"rss_mb": int(status["VmRSS"].split()[0]) / 1024,
                  "peak_mb": int(status["VmHWM"].split()[0]) / 1024,
                  "seconds": time.perf_counter() - started,
                  "torch": "torch" in sys.modules, "transformers": "transformers" in sys.modules,
                  "built": [f"{type(e).__name__} {e.revision}" for e in built]}))
"""


def run(tree: Path, root: Path) -> dict[str, object]:
    done = subprocess.run([sys.executable, "-c", BUILD, str(root)], cwd=tree, check=True,
                          capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(tree)})  # fmt: skip
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--root", type=Path, required=True)
    parser.add_argument("--tree", type=Path, action="append", required=True)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    models = args.root / "models"
    if not models.is_dir():
        subprocess.run([sys.executable, "-c", "import sys; from pathlib import Path; from "
                        "tests.tiny_models import save_tiny_models; "
                        "save_tiny_models(Path(sys.argv[1]))", str(models)],
                       cwd=REPO, check=True)  # fmt: skip
    print("warm-up (full path, exports):", run(args.tree[-1], args.root))
    for index in range(args.repeat):
        for tree in args.tree:
            print(f"run {index} {tree}: {json.dumps(run(tree.resolve(), args.root))}")


if __name__ == "__main__":
    main()
