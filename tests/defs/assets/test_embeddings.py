"""detections + embeddings on a temporary instance with tiny local CLIP/DINOv2 checkpoints."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import numpy as np
import pytest

from ml_platform.defs.assets.detections import detections
from ml_platform.defs.assets.embeddings import embeddings
from ml_platform.defs.resources import StorageResource
from ml_platform.defs.resources.vision_models import ModelsResource
from ml_platform.domain import Collection, DerivativeType, Focus
from ml_platform.store.vectors import read_rows, read_table
from tests.synthetic_home import SyntheticImage, add_batch, set_collections

CLIP_WHOLE = Focus(DerivativeType.WHOLE_IMAGE, "embed_clip_vit_b_32")
DINO_WHOLE = Focus(DerivativeType.WHOLE_IMAGE, "embed_dino_v2")
DINO_FACE = Focus(DerivativeType.PROMINENT_FACE, "embed_dino_v2")


@pytest.fixture
def env(tmp_path: Path, tiny_model_dirs: dict[str, Path]) -> dict[str, object]:
    overrides = {
        "clip_model": str(tiny_model_dirs["clip"]),
        "dino_model": str(tiny_model_dirs["dino"]),
    }
    storage = StorageResource(home=str(tmp_path), overrides=overrides)
    images = [SyntheticImage(i, np.zeros(4), pet_id=1) for i in range(1, 6)]
    add_batch(storage, "b1", images, foci=[])
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("ingestion_batches", ["b1"])
    resources = {
        "storage": storage,
        "models": ModelsResource(home=str(tmp_path), overrides=overrides),
    }
    return {"storage": storage, "instance": instance, "resources": resources}


def run(env: dict[str, object]) -> dict[str, object]:
    result = dg.materialize(
        [detections, embeddings], partition_key="b1", instance=env["instance"],  # type: ignore[arg-type]
        resources=env["resources"],  # type: ignore[arg-type]
    )  # fmt: skip
    assert result.success
    event = next(
        e for e in result.get_asset_materialization_events() if e.asset_key.path == ["embeddings"]
    )
    return dict(event.materialization.metadata["foci"].value)  # type: ignore[arg-type]


def test_two_collections_with_one_focus_embed_each_image_once(env: dict[str, object]) -> None:
    storage: StorageResource = env["storage"]  # type: ignore[assignment]
    set_collections(storage, [Collection(1, "a", DINO_WHOLE), Collection(2, "b", DINO_WHOLE)])
    foci = run(env)
    assert set(foci) == {DINO_WHOLE.key, CLIP_WHOLE.key}  # the clustering focus is always on
    rows = read_rows(storage.layout(), DINO_WHOLE, "b1")
    assert sorted(r.image_id for r in rows) == [1, 2, 3, 4, 5]
    table = read_table(storage.layout(), DINO_WHOLE, "b1")
    assert table is not None and set(table.column("weights").to_pylist()) == {"pretrained"}
    assert all(r.vector is not None and r.vector.shape == (24,) for r in rows)
    again = run(env)  # nothing left to compute
    assert again[DINO_WHOLE.key]["computed_now"] == 0  # type: ignore[index]


def test_no_face_is_recorded_not_failed(env: dict[str, object]) -> None:
    storage: StorageResource = env["storage"]  # type: ignore[assignment]
    set_collections(storage, [Collection(3, "faces", DINO_FACE)])
    foci = run(env)
    face = foci[DINO_FACE.key]
    assert face["no_derivative"] == 5 and face["failed"] == 0  # type: ignore[index]


def test_changing_the_embedder_reembeds_instead_of_mixing_vectors(
    env: dict[str, object], tmp_path: Path, tiny_model_dirs: dict[str, Path]
) -> None:
    import shutil

    from ml_platform.services.training_data import load_focus

    storage: StorageResource = env["storage"]  # type: ignore[assignment]
    set_collections(storage, [Collection(1, "a", CLIP_WHOLE)])
    assert run(env)[CLIP_WHOLE.key]["computed_now"] == 5  # type: ignore[index]
    other = tmp_path / "other-clip"  # the same checkpoint elsewhere: another embedder id
    shutil.copytree(tiny_model_dirs["clip"], other)
    overrides = {**storage.overrides, "clip_model": str(other)}
    home = storage.home
    env["storage"] = StorageResource(home=home, overrides=overrides)
    env["resources"] = {
        "storage": env["storage"],
        "models": ModelsResource(home=home, overrides=overrides),
    }
    assert run(env)[CLIP_WHOLE.key]["computed_now"] == 5  # type: ignore[index]
    embedded = load_focus(env["storage"].layout(), CLIP_WHOLE)  # type: ignore[attr-defined]
    assert embedded.embedder.model_id == str(other) and len(embedded.ids) == 5
