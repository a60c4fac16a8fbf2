"""Shared objects as new versions (clusters, heroes) and per-batch shards (the ANN index)."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest

from ml_platform.domain import Focus
from ml_platform.learning.ann_index import AnnIndex
from ml_platform.learning.clustering import ClusterConfig, cluster_pet
from ml_platform.store import clusters as cluster_io
from ml_platform.store.ann import load_index, shard_batches, write_shard
from ml_platform.store.blobs import MissingInputError
from ml_platform.store.clusters import (
    delete_pet_clusters,
    list_pets,
    load_pet_clusters,
    save_pet_clusters,
    stored_version,
)
from ml_platform.store.layout import Layout
from ml_platform.store.pet_tables import read_heroes, write_heroes
from ml_platform.store.versions import KEEP, versions
from tests.learning.test_clustering import DIM, ids, mixture

FOCUS = Focus.from_key("whole_image__embed_clip_vit_b_32")


def test_round_trip_keeps_labels_model_and_bumps_version(layout: Layout) -> None:
    m = mixture(3, 60, seed=10, n_outliers=2)
    clusters = cluster_pet(ids(62), m.x, ClusterConfig(), pet_id=5)
    first = save_pet_clusters(layout, FOCUS, 5, clusters)
    second = save_pet_clusters(layout, FOCUS, 5, clusters)
    loaded = load_pet_clusters(layout, FOCUS, 5)
    assert (first.version, second.version, loaded.stored) == (1, 2, second)
    assert stored_version(layout, FOCUS, 5) == second
    got = loaded.clusters
    assert (got.pet_id, got.image_ids, got.labels) == (5, clusters.image_ids, clusters.labels)
    assert (got.k, got.n_components, got.bic, got.silhouette) == (
        clusters.k, clusters.n_components, clusters.bic, clusters.silhouette,
    )  # fmt: skip
    np.testing.assert_array_equal(got.clusters[0].centroid, clusters.clusters[0].centroid)
    np.testing.assert_array_equal(got.model.assign(m.x), clusters.model.assign(m.x))
    with pytest.raises(ValueError, match="pet 5 cannot be saved as pet 6"):
        save_pet_clusters(layout, FOCUS, 6, clusters)


def test_each_save_is_a_new_object_and_only_the_newest_are_kept(layout: Layout) -> None:
    clusters = cluster_pet(ids(4), np.eye(4, DIM), pet_id=1)
    for _ in range(KEEP + 2):
        save_pet_clusters(layout, FOCUS, 1, clusters)
    prefix = layout.pet_clusters_prefix(FOCUS, 1)
    kept = versions(layout.store, prefix, "test")
    assert [v.version for v in kept] == list(range(3, KEEP + 3))
    assert stored_version(layout, FOCUS, 1).version == KEEP + 2


def test_lists_and_deletes_pets_and_names_missing_ones(layout: Layout) -> None:
    assert list_pets(layout, FOCUS) == []
    for pet in (3, 11, 2):
        save_pet_clusters(layout, FOCUS, pet, cluster_pet(ids(4), np.eye(4, DIM), pet_id=pet))
    assert list_pets(layout, FOCUS) == [2, 3, 11]
    assert delete_pet_clusters(layout, FOCUS, 3) and not delete_pet_clusters(layout, FOCUS, 3)
    with pytest.raises(MissingInputError, match="no clusters stored for pet 3") as caught:
        load_pet_clusters(layout, FOCUS, 3)
    assert "pet_clusters" in str(caught.value) and "pet_3" in caught.value.url


def test_refuses_an_unknown_format(layout: Layout, monkeypatch: pytest.MonkeyPatch) -> None:
    save_pet_clusters(layout, FOCUS, 1, cluster_pet(ids(4), np.eye(4, DIM)))
    monkeypatch.setattr(cluster_io, "FORMAT", 2)
    with pytest.raises(ValueError, match="format 1; expected 2"):
        load_pet_clusters(layout, FOCUS, 1)
    (newest,) = versions(layout.store, layout.pet_clusters_prefix(FOCUS, 1), "test")
    data = np.load(io.BytesIO(layout.store.read_bytes(newest.key)))
    assert json.loads(str(data["meta"]))["version"] == 1


def test_heroes_serve_the_newest_cluster_version(layout: Layout) -> None:
    assert read_heroes(layout, 7) is None
    write_heroes(layout, 7, 2, {"cluster_version": 2})
    write_heroes(layout, 7, 1, {"cluster_version": 1})  # a slower run of an older batch
    assert read_heroes(layout, 7) == {"cluster_version": 2}


def test_ann_shards_per_batch_merge_into_one_index(layout: Layout) -> None:
    rng = np.random.default_rng(0)
    for batch, image_ids in (("b1", [1, 2, 3]), ("b2", [3, 4])):
        shard = AnnIndex.create(8)
        shard.add(image_ids, rng.standard_normal((len(image_ids), 8)))
        write_shard(layout, FOCUS, batch, shard)
    assert shard_batches(layout, FOCUS) == ["b1", "b2"]
    merged = load_index(layout, FOCUS, 8)
    assert len(merged) == 4 and all(i in merged for i in (1, 2, 3, 4))
    assert len(load_index(layout, FOCUS, 8, leave_out="b1")) == 2
