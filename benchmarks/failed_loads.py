"""RSS and live models over 20 failed zero-shot loads (a damaged tokenizer, random towers of
the default CLIP size, ~150 M parameters): a failed load must cost nothing past the first.

    PYTHONPATH=. python benchmarks/failed_loads.py [--attempts 20]

Prints RSS after each attempt and the number of live `CLIPModel` objects at the end. Random
weights: the figures are about memory, not about the model's output.
"""

from __future__ import annotations

import argparse
import gc
import resource
import tempfile
from pathlib import Path

from ml_platform.serving.backoff import FailureMemory
from ml_platform.serving.errors import ServingError
from ml_platform.serving.lazy import LazyModels
from ml_platform.serving.metrics import CacheKind, ServingMetrics
from ml_platform.vision.zero_shot import ZeroShotKind, ZeroShotUnavailableError, load_zero_shot


def rss_mb() -> float:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * resource.getpagesize() / 2**20


def broken_clip(directory: Path) -> str:
    from transformers import CLIPConfig

    CLIPConfig().save_pretrained(directory)  # default size; no weights: random towers
    (directory / "tokenizer.json").write_text("{not json")
    (directory / "tokenizer_config.json").write_text(
        '{"tokenizer_class": "PreTrainedTokenizerFast"}'
    )
    return str(directory)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--attempts", type=int, default=20)
    args = parser.parse_args()
    from transformers import CLIPModel

    model_dir = broken_clip(Path(tempfile.mkdtemp()))
    lazy: LazyModels[object] = LazyModels(
        CacheKind.ZERO_SHOT, ServingMetrics(), (ZeroShotUnavailableError, OSError)
    )
    lazy.failures = FailureMemory(0.0, 0.0)  # no backoff: every request retries the load
    start = rss_mb()
    for attempt in range(1, args.attempts + 1):
        try:
            lazy.get("clip", lambda: load_zero_shot(ZeroShotKind.CLIP, model_dir,
                                                    allow_random_weights=True))  # fmt: skip
        except ServingError as exc:
            last = exc  # a caller keeping the error it got, as a request handler does
        gc.collect()
        print(f"attempt {attempt:2d}: RSS {rss_mb():7.0f} MB ({rss_mb() - start:+.0f} MB)")
    live = sum(isinstance(o, CLIPModel) for o in gc.get_objects())
    print(f"live CLIPModel objects: {live}; RSS change: {rss_mb() - start:+.0f} MB; "
          f"last error: {str(last)[:80]}")  # fmt: skip


if __name__ == "__main__":
    main()
