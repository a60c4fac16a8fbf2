"""A pet's clusters in the Store: one new ``.npz`` object per save, never rewritten.

Each object holds the arrays plus a JSON ``meta`` entry with a format number, the per-pet
`version` (one more than the newest stored one) and the UTC `saved_at` time, so a reader can
tell that a newer model has landed. Objects live under ``Layout.pet_clusters_prefix`` and are
versioned by `ml_platform.store.versions`: a reader sees a whole older or newer model.
"""

from __future__ import annotations

import io
import json
import re
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ml_platform.domain import Focus
from ml_platform.learning.cluster_store import Cluster, ClusterModel, PetClusters
from ml_platform.store.blobs import Key, MissingInputError
from ml_platform.store.layout import Layout
from ml_platform.store.versions import Versioned, latest, versions, write_version

FORMAT = 1
MADE_BY = "the pet_clusters asset (a batch with this pet's images)"
_PET = re.compile(r"^pet_(-?\d+)$")
_MODEL_ARRAYS = ("pca_mean", "pca_components", "means", "variances", "weights", "component_labels")


@dataclass(frozen=True)
class StoreVersion:
    """Which save of a pet's clusters an object holds: `version` grows by one per save."""

    version: int
    saved_at: datetime


@dataclass(frozen=True, eq=False)
class StoredPetClusters:
    """A pet's clusters as loaded, with the version of the object they came from."""

    clusters: PetClusters
    stored: StoreVersion


def save_pet_clusters(
    layout: Layout, focus: Focus, pet_id: int, clusters: PetClusters
) -> StoreVersion:
    """Write `clusters` as pet `pet_id`'s newest model (a new object); returns its version."""
    if clusters.pet_id is not None and clusters.pet_id != pet_id:
        raise ValueError(f"clusters of pet {clusters.pet_id} cannot be saved as pet {pet_id}")
    prefix = layout.pet_clusters_prefix(focus, pet_id)
    previous = latest(layout.store, prefix, MADE_BY)
    stored = StoreVersion((previous.version if previous else 0) + 1, datetime.now(UTC))
    buffer = io.BytesIO()
    np.savez(buffer, allow_pickle=False, **_to_arrays(replace(clusters, pet_id=pet_id), stored))
    write_version(
        layout.store, prefix, stored.version, buffer.getvalue(), suffix=".npz", made_by=MADE_BY
    )
    return stored


def load_pet_clusters(layout: Layout, focus: Focus, pet_id: int) -> StoredPetClusters:
    key = _newest(layout, focus, pet_id)
    with np.load(io.BytesIO(layout.store.read_bytes(key)), allow_pickle=False) as data:
        meta = _meta(data, layout.store.url_of(key))
        clusters = _from_arrays({k: data[k] for k in data.files if k != "meta"}, meta)
    return StoredPetClusters(clusters, _version(meta))


def stored_version(layout: Layout, focus: Focus, pet_id: int) -> StoreVersion:
    """The version of pet `pet_id`'s newest model, reading only its small meta entry."""
    key = _newest(layout, focus, pet_id)
    with np.load(io.BytesIO(layout.store.read_bytes(key)), allow_pickle=False) as data:
        return _version(_meta(data, layout.store.url_of(key)))


def has_pet_clusters(layout: Layout, focus: Focus, pet_id: int) -> bool:
    return latest(layout.store, layout.pet_clusters_prefix(focus, pet_id), MADE_BY) is not None


def list_pets(layout: Layout, focus: Focus) -> list[int]:
    """Pet ids with a stored model, ascending (none yet: empty)."""
    found = (_PET.match(name) for name in layout.store.children(layout.clusters_prefix(focus)))
    pets = sorted(int(m.group(1)) for m in found if m)
    return [p for p in pets if has_pet_clusters(layout, focus, p)]


def delete_pet_clusters(layout: Layout, focus: Focus, pet_id: int) -> bool:
    """Remove every stored version of a pet's model; False when there was none."""
    found = versions(layout.store, layout.pet_clusters_prefix(focus, pet_id), MADE_BY)
    for v in found:
        layout.store.delete(v.key)
    return bool(found)


def _newest(layout: Layout, focus: Focus, pet_id: int) -> Key:
    prefix = layout.pet_clusters_prefix(focus, pet_id)
    found: Versioned | None = latest(layout.store, prefix, MADE_BY)
    if found is None:
        url = layout.store.url_of(prefix)
        raise MissingInputError(f"{url}/ (no clusters stored for pet {pet_id})", MADE_BY)
    return found.key


def _to_arrays(c: PetClusters, stored: StoreVersion) -> dict[str, NDArray[Any]]:
    meta = {
        "format": FORMAT,
        "version": stored.version,
        "saved_at": stored.saved_at.isoformat(),
        "pet_id": c.pet_id,
        "n_components": c.n_components,
        "bic": c.bic,
        "silhouette": c.silhouette,
        "method": c.method,
        "max_distance_sq": c.model.max_distance_sq,
    }
    d = c.model.pca_mean.shape[0]
    return {
        "meta": np.array(json.dumps(meta)),
        "image_ids": np.array(c.image_ids, dtype=np.int64),
        "labels": np.array(c.labels, dtype=np.int64),
        "cluster_labels": np.array([x.label for x in c.clusters], dtype=np.int64),
        "cluster_sizes": np.array([x.size for x in c.clusters], dtype=np.int64),
        "centroids": np.array([x.centroid for x in c.clusters], dtype=np.float32).reshape(-1, d),
        **{name: getattr(c.model, name) for name in _MODEL_ARRAYS},
    }


def _from_arrays(a: dict[str, NDArray[Any]], meta: dict[str, Any]) -> PetClusters:
    model = ClusterModel(
        **{name: a[name] for name in _MODEL_ARRAYS}, max_distance_sq=meta["max_distance_sq"]
    )
    clusters = tuple(
        Cluster(int(lab), int(size), centroid)
        for lab, size, centroid in zip(
            a["cluster_labels"], a["cluster_sizes"], a["centroids"], strict=True
        )
    )
    return PetClusters(
        pet_id=meta["pet_id"],
        image_ids=tuple(int(i) for i in a["image_ids"]),
        labels=tuple(int(lab) for lab in a["labels"]),
        clusters=clusters,
        n_components=int(meta["n_components"]),
        bic=meta["bic"],
        silhouette=meta["silhouette"],
        method=meta["method"],
        model=model,
    )


def _meta(data: Any, url: str) -> dict[str, Any]:
    meta: dict[str, Any] = json.loads(str(data["meta"]))
    if meta.get("format") != FORMAT:
        raise ValueError(f"{url} has cluster store format {meta.get('format')}; expected {FORMAT}")
    return meta


def _version(meta: dict[str, Any]) -> StoreVersion:
    return StoreVersion(int(meta["version"]), datetime.fromisoformat(meta["saved_at"]))
