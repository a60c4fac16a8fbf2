"""The drift reference is cached per (focus, champion versions): on a real local store, a
real MLflow sqlite registry and a real trained champion, a batch after the first reads its
own embeddings, the batch's before it and the cached sample, never the earlier batches'
tables, and its p-values are those of the uncached path."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import dagster as dg
import numpy as np
import pytest
from mlflow import MlflowClient

from ml_platform.defs.assets.classifiers import collection_classifier
from ml_platform.defs.resources import StorageResource
from ml_platform.defs.resources.mlflow import MlflowResource
from ml_platform.defs.resources.vision_models import ModelsResource
from ml_platform.domain import Collection, DerivativeType, Focus
from ml_platform.model_registry.collection.lookup import get_champion
from ml_platform.services.batch_drift import BatchDriftReport, DriftConfig, evaluate_batch_drift
from ml_platform.services.drift_reference import previous_batch
from ml_platform.services.training_data import load_focus
from ml_platform.store.blobs import Key, Store
from ml_platform.store.drift_table import reference_key
from ml_platform.store.layout import Layout
from tests.synthetic_home import SyntheticImage, add_batch, set_collections

CLIP = Focus(DerivativeType.WHOLE_IMAGE, "embed_clip_vit_b_32")  # tiny checkpoint: 16-d
CATS = Collection(7, "cats", CLIP)
CONFIG = DriftConfig(alpha=0.005, reference_size=40)  # fewer than b1 holds: a real sample


class CountingStore(Store):
    """The real local store, noting the path of every object it reads."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.reads: list[str] = []

    def read_bytes(self, key: Key) -> bytes:
        self.reads.append(key.path)
        return super().read_bytes(key)


def pets(rng: np.random.Generator, first: int, n: int, members: bool) -> list[SyntheticImage]:
    out = []
    for i in range(first, first + n):
        cat = i % 3 == 0
        vector = rng.standard_normal(16) + (np.eye(16)[0] * 3.0 if cat else -np.eye(16)[0] * 3.0)
        out.append(SyntheticImage(i, vector, members=(7,) if cat and members else ()))
    return out


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory, tiny_model_dirs: dict[str, Path]) -> (
    dict[str, object]
):  # fmt: skip
    """Collection 7 trained on b1 and b2; b3 and b4 arrive after its champion."""
    root = tmp_path_factory.mktemp("drift_reference")
    overrides = {"clip_model": str(tiny_model_dirs["clip"]),
                 "dino_model": str(tiny_model_dirs["dino"])}  # fmt: skip
    storage = StorageResource(home=str(root), overrides=overrides)
    rng = np.random.default_rng(5)
    add_batch(storage, "b1", pets(rng, 1, 36, members=True), [CLIP])
    add_batch(storage, "b2", pets(rng, 100, 36, members=True), [CLIP])
    set_collections(storage, [CATS])
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("collections", ["7"])
    mlflow = MlflowResource(home=str(root), overrides=overrides)
    resources = {"storage": storage, "mlflow": mlflow,
                 "models": ModelsResource(home=str(root), overrides=overrides)}  # fmt: skip
    assert dg.materialize([collection_classifier], partition_key="7", instance=instance,
                          resources=resources).success  # fmt: skip
    add_batch(storage, "b3", pets(rng, 200, 20, members=False), [CLIP])
    add_batch(storage, "b4", pets(rng, 300, 20, members=False), [CLIP])
    return {"storage": storage, "client": mlflow.client()}


def judge(home: dict[str, object], batch: str) -> tuple[BatchDriftReport, list[str]]:
    """The batch's report and the store objects read to make it."""
    layout: Layout = home["storage"].layout()  # type: ignore[attr-defined]
    counting = CountingStore(layout.store.url)
    client: MlflowClient = home["client"]  # type: ignore[assignment]
    report = evaluate_batch_drift(client, replace(layout, store=counting), [CATS], batch, CONFIG)
    return report, counting.reads


def embeddings_read(reads: list[str]) -> set[str]:
    return {path.rsplit("/", 1)[-1] for path in reads if "/embeddings/" in path}


def test_a_later_batch_reads_only_its_own_embeddings_and_the_cached_reference(
    home: dict[str, object],
) -> None:
    first, first_reads = judge(home, "b3")
    assert embeddings_read(first_reads) == {"b1.parquet", "b2.parquet", "b3.parquet"}
    second, second_reads = judge(home, "b4")
    assert embeddings_read(second_reads) == {"b3.parquet", "b4.parquet"}  # and the batch before
    assert any("/drift/reference/" in path for path in second_reads)
    assert first.rows[0].n_reference == second.rows[0].n_reference == CONFIG.reference_size


def test_the_cached_reference_gives_the_p_values_of_a_fresh_sample(
    home: dict[str, object],
) -> None:
    cached, _ = judge(home, "b4")
    layout: Layout = home["storage"].layout()  # type: ignore[attr-defined]
    for name in layout.store.children(f"data/drift/reference/{CLIP.key}"):
        assert layout.store.delete(Key(f"data/drift/reference/{CLIP.key}/{name}", "test"))
    fresh, reads = judge(home, "b4")
    assert "b1.parquet" in embeddings_read(reads)  # sampled again from the history
    assert [(r.statistic, r.p_value) for r in fresh.rows] == [
        (r.statistic, r.p_value) for r in cached.rows
    ]
    assert all(np.isfinite(r.p_value) for r in fresh.rows) and len(fresh.rows) == 2


def test_a_batch_the_champion_could_have_trained_on_is_left_out_of_its_reference(
    home: dict[str, object],
) -> None:
    report, reads = judge(home, "b2")
    assert embeddings_read(reads) == {"b1.parquet", "b2.parquet"}
    assert report.rows[0].n_reference == 36  # b1's, all of them (fewer than the sample size)


def test_another_champion_version_embedder_or_size_is_another_reference() -> None:
    key = reference_key(CLIP, {7: "1", 9: "2"}, "clip", 500)
    assert key == reference_key(CLIP, {9: "2", 7: "1"}, "clip", 500)
    others = [reference_key(CLIP, {7: "2", 9: "2"}, "clip", 500),
              reference_key(CLIP, {7: "1", 9: "2"}, "dino", 500),
              reference_key(CLIP, {7: "1", 9: "2"}, "clip", 400)]  # fmt: skip
    assert len({key.path, *(k.path for k in others)}) == 4
    assert key.path.startswith(f"data/drift/reference/{CLIP.key}/")


def test_the_batch_before_joins_the_test_only_when_the_champion_never_saw_it(
    home: dict[str, object],
) -> None:
    after, _ = judge(home, "b4")  # b3 arrived after the champion too
    first, _ = judge(home, "b3")  # b2 is training data
    assert "(and with 20 of the batch before)" in after.rows[0].reason
    assert "batch before" not in first.rows[0].reason
    layout: Layout = home["storage"].layout()  # type: ignore[attr-defined]
    client: MlflowClient = home["client"]  # type: ignore[assignment]
    champion = get_champion(client, 7)
    assert champion is not None
    before = previous_batch(layout, CLIP, "b4", {7: champion}, after_embedder(layout))
    assert before is not None and before.shape == (20, 16)
    assert previous_batch(layout, CLIP, "b3", {7: champion}, after_embedder(layout)) is None
    assert previous_batch(layout, CLIP, "b4", {7: champion}, "another-embedder") is None


def after_embedder(layout: Layout) -> str:
    return load_focus(layout, CLIP, ["b4"]).embedder.model_id
