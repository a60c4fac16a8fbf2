"""How long the `datasets` and `label_suggestions` assets take on a 10-class x ~150 dataset.

    python benchmarks/dataset_timing.py [--unlabelled-per-class 10] [--repeats 2]

A temporary home holds ../shared/data/clothing (1,485 photos, 10 classes) in its image store
and catalog, each class a crawlr collection, and a `datasets.yaml` declaring the 10 classes;
`--unlabelled-per-class` photos of each class are left in no collection (label suggestions are
made for them). Each asset runs as the CLI runs it (`job.execute_in_process` on the home's
Dagster instance): `datasets` first (a new version: split, digest, MLflow dataset input), then
again (unchanged), then `label_suggestions` (CLIP ViT-B/32 zero-shot; RANDOM weights here, no
hub access: the real ViT-B/32 architecture's work, a word-level tokenizer, meaningless
suggestions). Wall and CPU seconds of each run (CPU: what it costs on an idle machine, as
this one is shared), and of the pure `make_version` inside so the Dagster overhead shows.
`--threads`: torch's threads (1 on a crowded machine, where a second thread mostly waits).
Prints.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import torch
from shared_models import SHARED

from ml_platform.defs.assets.datasets import register_dataset_partitions
from ml_platform.defs.resources import StorageResource
from ml_platform.defs.runner import Platform, instance_for
from ml_platform.domain import Collection, ImageRecord, IngestedImage, IngestStatus
from ml_platform.services.dataset_versions import make_version
from ml_platform.services.datasets import SplitFractions, read_dataset_specs
from ml_platform.services.training_data import load_images
from ml_platform.settings import Settings
from ml_platform.store.collections_file import write_collections
from ml_platform.store.tables import write_catalog

QUIET = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-dir", type=Path, default=SHARED / "data" / "clothing")
    p.add_argument("--unlabelled-per-class", type=int, default=10)
    p.add_argument("--threads", type=int, default=None, help="default: torch's own")
    return p.parse_args()


def build_home(home: Path, root: Path, unlabelled: int) -> tuple[int, int]:
    """The photos in the home's store and catalog; returns (labelled, unlabelled) counts."""
    storage = StorageResource(home=str(home))
    store, base = storage.layout().images(), datetime(2025, 1, 1, tzinfo=UTC)
    classes = sorted(d for d in root.iterdir() if d.is_dir())
    images: list[IngestedImage] = []
    counts = [0, 0]
    for cid, folder in enumerate(classes, start=1):
        for n, path in enumerate(sorted(folder.glob("*.jpg"))):
            sha, key = store.put(path.read_bytes(), "JPEG")
            members = () if n < unlabelled else (cid,)
            counts[n < unlabelled] += 1
            index = len(images) + 1
            record = ImageRecord(index, f"/media/{index}.jpg", base + timedelta(minutes=index),
                                 collection_ids=members)  # fmt: skip
            images.append(IngestedImage(record, IngestStatus.OK, sha256=sha, path=key))
    write_catalog(storage.layout(), "b1", images)
    storage.metadata().register_batch("b1", [e.image for e in images])
    write_collections(storage.layout(), [Collection(cid, c.name, None)
                                         for cid, c in enumerate(classes, start=1)])  # fmt: skip
    lines = [f"      {c.name}: {cid}" for cid, c in enumerate(classes, start=1)]
    (home / "datasets.yaml").write_text("datasets:\n  clothing:\n    classes:\n"
                                        + "\n".join(lines) + "\n")  # fmt: skip
    return counts[0], counts[1]


def clip_b32(directory: Path) -> str:
    """A CLIP ViT-B/32 checkpoint directory (the hub model's config, random weights) with a
    word-level tokenizer: the offline stand-in for openai/clip-vit-base-patch32."""
    from transformers import CLIPConfig

    from tests.serving.test_zero_shot import WORDS, write_tokenizer

    tokens = {"bos_token_id": 2, "eos_token_id": 3, "pad_token_id": 0}
    CLIPConfig(text_config={"vocab_size": len(WORDS), **tokens}).save_pretrained(directory)
    write_tokenizer(directory)
    return str(directory)


def run_job(settings: Settings, job: str, config: dict[str, object]) -> tuple[float, float]:
    instance = instance_for(settings)
    register_dataset_partitions(instance, ["clothing"])
    definitions = Platform.for_settings(settings, True).definitions()
    started, cpu = time.perf_counter(), time.process_time()
    result = definitions.resolve_job_def(job).execute_in_process(
        instance=instance, partition_key="clothing", run_config={**config, **QUIET},
        raise_on_error=True,
    )  # fmt: skip
    assert result.success
    return time.perf_counter() - started, time.process_time() - cpu


def pure_version(settings: Settings) -> tuple[float, float]:
    layout = StorageResource(home=str(settings.home)).layout()
    spec = read_dataset_specs(settings.home / "datasets.yaml")["clothing"]
    started, cpu = time.perf_counter(), time.process_time()
    version = make_version(spec, load_images(layout), {}, SplitFractions())
    print(f"version {version.version}: {version.split_totals()}")
    return time.perf_counter() - started, time.process_time() - cpu


def main() -> None:
    args = parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    with tempfile.TemporaryDirectory(prefix="dataset-timing-") as tmp:
        home = Path(tmp)
        os.environ["DAGSTER_HOME"] = str(home / "dagster")
        labelled, unlabelled = build_home(home, args.data_dir, args.unlabelled_per_class)
        os.environ["ML_PLATFORM_CLIP_MODEL"] = clip_b32(home / "clip")
        settings = Settings(home=home, allow_random_weights=True)
        print(f"{labelled} labelled photos in 10 classes, {unlabelled} unlabelled; "
              f"load {os.getloadavg()[0]:.2f}, cpus {os.cpu_count()}", flush=True)  # fmt: skip
        figures = {
            "datasets (new version)": run_job(settings, "dataset_versions_job", {}),
            "datasets (unchanged)": run_job(settings, "dataset_versions_job", {}),
            f"label_suggestions ({unlabelled} images, CLIP ViT-B/32)": run_job(
                settings, "label_suggestions_job", {}
            ),
            "load_images + make_version (no Dagster)": pure_version(settings),
        }
        for name, (wall, cpu) in figures.items():
            print(f"  {name:<45} wall {wall:7.1f} s  cpu {cpu:7.1f} s", flush=True)
        print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
