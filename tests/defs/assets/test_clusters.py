"""pet_clusters / pet_heroes on a temporary instance: a batch re-clusters only its pets."""

from __future__ import annotations

import base64
import io
import re
from pathlib import Path

import dagster as dg
import numpy as np
from PIL import Image

from ml_platform.defs.assets.clusters import pet_clusters, pet_heroes
from ml_platform.defs.resources import StorageResource
from ml_platform.domain import Focus
from ml_platform.store.ann import load_index
from ml_platform.store.clusters import stored_version
from ml_platform.store.pet_tables import read_heroes
from tests.synthetic_home import SyntheticImage, add_batch

FOCUS = Focus.from_key("whole_image__embed_clip_vit_b_32")


def pet_images(
    pet: int, start: int, n: int, centres: np.ndarray, rng: np.random.Generator
) -> list[SyntheticImage]:
    labels = np.arange(n) % len(centres)
    return [
        SyntheticImage(start + i, centres[lab] + 0.05 * rng.standard_normal(centres.shape[1]), pet)
        for i, lab in enumerate(labels)
    ]


def materialize(storage: StorageResource, instance: dg.DagsterInstance, key: str) -> None:
    result = dg.materialize(
        [pet_clusters, pet_heroes], partition_key=key, instance=instance,
        resources={"storage": storage},
        # the synthetic images are 64 x 48 noise: under the default hero floor's 0.01 MP
        run_config={"ops": {"pet_heroes": {"config": {"floor": {"megapixels": 0.0}}}}},
    )  # fmt: skip
    assert result.success


def test_a_new_batch_reclusters_only_the_pets_it_touches(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    storage = StorageResource(home=str(tmp_path))
    centres = {pet: rng.standard_normal((2, 32)) * 3 for pet in (1, 2)}
    first = pet_images(1, 100, 12, centres[1], rng) + pet_images(2, 200, 12, centres[2], rng)
    add_batch(storage, "b1", first, [FOCUS])
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("ingestion_batches", ["b1", "b2"])
    materialize(storage, instance, "b1")
    layout = storage.layout()
    assert stored_version(layout, FOCUS, 1).version == 1
    assert stored_version(layout, FOCUS, 2).version == 1

    add_batch(storage, "b2", pet_images(1, 300, 6, centres[1], rng), [FOCUS])
    materialize(storage, instance, "b2")
    assert stored_version(layout, FOCUS, 1).version == 2  # touched: re-clustered with all 18 images
    assert stored_version(layout, FOCUS, 2).version == 1  # untouched: not recomputed
    materialize(storage, instance, "b1")  # a re-run (e.g. a new focus was embedded)
    assert stored_version(layout, FOCUS, 1).version == 2  # same images: nothing recomputed
    assert stored_version(layout, FOCUS, 2).version == 1

    heroes = read_heroes(layout, 1)
    assert heroes is not None and heroes["n_images"] == 18 and heroes["cluster_version"] == 2
    assert {c["size"] for c in heroes["clusters"]} == {9}
    parts = heroes["clusters"][0]["heroes"][0]["parts"]
    assert set(parts) == {
        "sharpness",
        "exposure",
        "resolution",
        "prominence",
        "centrality",
        "recency",
    }
    rerun, b2 = instance.fetch_materializations(dg.AssetKey("pet_clusters"), limit=2).records
    assert rerun.asset_materialization is not None and b2.asset_materialization is not None
    assert rerun.asset_materialization.metadata["pets_reclustered"].value == 0
    metadata = b2.asset_materialization.metadata
    assert metadata["pets_reclustered"].value == 1
    assert "data:image/png;base64," in str(metadata["projection pet 1"].value)


def inline_png(markdown: object) -> Image.Image:
    """The image a Markdown metadata value inlines as a PNG data URI."""
    match = re.search(r"!\[[^]]*\]\(data:image/png;base64,([A-Za-z0-9+/=]+)\)", str(markdown))
    assert match is not None, f"no inline PNG in {str(markdown)[:80]!r}"
    return Image.open(io.BytesIO(base64.b64decode(match.group(1))))


def test_metadata_draws_a_projection_and_a_hero_contact_sheet_per_touched_pet(
    tmp_path: Path,
) -> None:
    from ml_platform.defs.assets.thumbnails import thumbnails

    rng = np.random.default_rng(3)
    storage = StorageResource(home=str(tmp_path))
    images = [
        im
        for pet in (1, 2)
        for im in pet_images(pet, 100 * pet, 10, rng.standard_normal((2, 32)) * 3, rng)
    ]
    add_batch(storage, "b1", images, [FOCUS])
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("ingestion_batches", ["b1"])
    result = dg.materialize(
        [thumbnails, pet_clusters, pet_heroes], partition_key="b1", instance=instance,
        resources={"storage": storage},
        run_config={"ops": {"pet_heroes": {"config": {"floor": {"megapixels": 0.0}}}}},
    )  # fmt: skip
    assert result.success
    clusters = result.asset_materializations_for_node("pet_clusters")[0].metadata
    heroes = result.asset_materializations_for_node("pet_heroes")[0].metadata
    for pet in (1, 2):
        projection = inline_png(clusters[f"projection pet {pet}"].value)
        assert projection.format == "PNG" and projection.size == (600, 450)
        sheet = inline_png(heroes[f"heroes pet {pet}"].value)
        assert sheet.format == "PNG" and sheet.height > 2 * 128  # a row per cluster (k=2)
        assert np.asarray(sheet.convert("L")).std() > 40  # noise thumbnails drawn (grey boxes: 25)
    assert clusters["projections_left_out"].value == 0


def test_similarity_index_grows_by_adds_and_reports_near_duplicates(tmp_path: Path) -> None:
    from ml_platform.defs.assets.similarity import similarity_index

    rng = np.random.default_rng(1)
    storage = StorageResource(home=str(tmp_path))
    first = [SyntheticImage(i, rng.standard_normal(16)) for i in range(1, 11)]
    add_batch(storage, "b1", first, [FOCUS])
    twin = SyntheticImage(50, first[0].vector + 1e-4)  # a near-copy of image 1
    add_batch(storage, "b2", [twin, SyntheticImage(51, rng.standard_normal(16))], [FOCUS])
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("ingestion_batches", ["b1", "b2"])
    for key in ("b1", "b2"):
        result = dg.materialize([similarity_index], partition_key=key, instance=instance,
                                resources={"storage": storage})  # fmt: skip
        assert result.success
    index = load_index(storage.layout(), FOCUS, 16)
    assert len(index) == 12 and 50 in index
    (event,) = result.get_asset_materialization_events()
    report = event.materialization.metadata["indexes"].value[FOCUS.key]  # type: ignore[index]
    assert report["added"] == 2 and report["size"] == 12 and report["weights"] == "pretrained"
    assert event.materialization.metadata["weights"].value == "pretrained"
    assert [pair[:2] for pair in report["examples"]] == [[1, 50]]
