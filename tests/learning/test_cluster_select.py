"""The default clustering (agglomerative, Ward) and the other count selectors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ml_platform.learning import cluster_select
from ml_platform.learning.cluster_store import ClusterMethod
from ml_platform.learning.clustering import ClusterConfig, cluster_pet
from ml_platform.vision.embedders import EmbedderOptions, build_embedder
from ml_platform.vision.pipeline import embed_images
from tests.learning.test_clustering import DIM, ids, mixture, purity

TYPES_YAML = """embedding_types:
  embed_efficientnet_lite0:
    onnx: {onnx}
    input_size: 224
    resize_short_side: 256
    resample: bicubic
    pixel_offset: 127.0
    pixel_scale: 128.0
    input_name: pixel_values
    output_name: embedding
    dim: 1280
"""


def test_default_method_is_agglomerative() -> None:
    assert ClusterConfig().method == "agglomerative"


@pytest.mark.parametrize("method", ["agglomerative", "kmeans", "consensus"])
@pytest.mark.parametrize(("k", "seed"), [(1, 20), (2, 21), (4, 22)])
def test_selectors_find_the_true_count(method: ClusterMethod, k: int, seed: int) -> None:
    m = mixture(k, 80, seed=seed)
    result = cluster_pet(ids(80), m.x, ClusterConfig(method=method))
    assert result.k == k
    assert purity(np.array(result.labels), m.truth) >= 0.95
    assert result.n_outliers == 0


def test_only_images_far_from_every_cluster_are_outliers() -> None:
    m = mixture(3, 90, seed=23, n_outliers=2)
    result = cluster_pet(ids(len(m.x)), m.x, ClusterConfig())
    labels = np.array(result.labels)
    assert np.all(labels[m.truth == -1] == -1)
    assert np.all(labels[m.truth >= 0] >= 0)


def test_agglomerative_model_assigns_new_images_and_rejects_far_ones() -> None:
    m = mixture(3, 90, seed=24)
    result = cluster_pet(ids(90), m.x, ClusterConfig())
    rng = np.random.default_rng(25)
    fresh = m.centres + rng.normal(size=m.centres.shape) * 0.7 / np.sqrt(DIM)
    assigned = result.model.assign(np.vstack([fresh, rng.normal(size=(1, DIM))]))
    by_truth = {int(t): result.labels_by_image[i] for i, t in zip(ids(90), m.truth, strict=True)}
    assert assigned.tolist() == [by_truth[0], by_truth[1], by_truth[2], -1]


def test_ward_never_cuts_more_than_max_k_big_clusters() -> None:
    m = mixture(6, 120, seed=26)
    x = m.x / np.linalg.norm(m.x, axis=1, keepdims=True)
    labels = cluster_select.ward_labels(x, 0.5, max_k=3, min_size=3)
    assert cluster_select.count_big(labels, 3) <= 3


def test_place_dissolves_small_groups_into_the_nearest_cluster() -> None:
    x = np.eye(4)[[0, 0, 0, 1, 1, 1, 0]] + 0.01
    raw = np.array([0, 0, 0, 1, 1, 1, 2])  # image 6 alone in group 2 but next to group 0
    labels = cluster_select.place(x / np.linalg.norm(x, axis=1, keepdims=True), raw, 3, 6.0)
    assert labels[6] == labels[0]
    assert len(set(labels.tolist())) == 2


def test_real_photos_of_three_breeds_make_three_pure_clusters(
    efficientnet_onnx: Path, pet_photos: dict[str, list[Path]], tmp_path: Path
) -> None:
    types_file = tmp_path / "types.yaml"
    types_file.write_text(TYPES_YAML.format(onnx=efficientnet_onnx))
    embedder = build_embedder(
        "embed_efficientnet_lite0", EmbedderOptions(custom_types_file=types_file)
    )
    breeds = ["Bombay", "beagle", "Birman"]
    paths = [p for b in breeds for p in pet_photos[b]]
    truth = np.array([breeds.index(p.parent.name) for p in paths])
    result = cluster_pet(ids(len(paths)), embed_images(paths, embedder).vectors, ClusterConfig())
    assert result.k == 3
    assert purity(np.array(result.labels), truth) >= 0.95
    assert result.n_outliers <= 1
