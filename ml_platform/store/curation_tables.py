"""Curation tables: champion scores per (collection, model version, batch) and the
out-of-fold probabilities each model version was cross-validated with.

```
data/scores/collection_<id>/v<version>/<batch>.parquet   collection_scores: image_id, probability
data/out_of_fold/collection_<id>/v<version>.parquet      collection_classifier: image_id, label,
                                                         unlabelled, probability
```
A scores object is written once per (version, batch) and never rewritten: a new batch adds
one object per champion, a new champion one object per batch of its focus.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
from numpy.typing import NDArray

from ml_platform.store.blobs import Key
from ml_platform.store.layout import DATA, Layout


@dataclass(frozen=True)
class OutOfFold:
    """A model version's cross-validation rows: each probability from a fold that did not
    train on the image. `unlabelled` rows are sampled negatives, not explicit rejections."""

    image_ids: NDArray[np.int64]
    labels: NDArray[np.int64]
    unlabelled: NDArray[np.bool_]
    probabilities: NDArray[np.float64]


def scores_prefix(collection_id: int, version: str) -> str:
    return f"{DATA}/scores/collection_{int(collection_id)}/v{version}"


def scores_key(collection_id: int, version: str, batch: str) -> Key:
    made_by = f"the collection_scores asset (partition {collection_id})"
    return Key(f"{scores_prefix(collection_id, version)}/{batch}.parquet", made_by)


def scored_batches(layout: Layout, collection_id: int, version: str) -> set[str]:
    names = layout.store.children(scores_prefix(collection_id, version))
    return {n.rsplit("/", 1)[-1].removesuffix(".parquet") for n in names if n.endswith(".parquet")}


def write_scores(
    layout: Layout,
    collection_id: int,
    version: str,
    batch: str,
    image_ids: NDArray[np.int64],
    probabilities: NDArray[np.floating],
) -> None:
    table = pa.table(
        {
            "image_id": pa.array(np.asarray(image_ids, dtype=np.int64)),
            "probability": pa.array(np.asarray(probabilities, dtype=np.float64)),
        }
    )
    layout.store.write_parquet(scores_key(collection_id, version, batch), table)


def read_scores(layout: Layout, collection_id: int, version: str) -> dict[int, float]:
    """image id -> the version's probability, over every scored batch."""
    out: dict[int, float] = {}
    for batch in sorted(scored_batches(layout, collection_id, version)):
        table = layout.store.read_parquet(scores_key(collection_id, version, batch))
        ids = table.column("image_id").to_numpy()
        probabilities = table.column("probability").to_numpy()
        out.update(zip(ids.tolist(), probabilities.tolist(), strict=True))
    return out


def out_of_fold_key(collection_id: int, version: str) -> Key:
    made_by = f"the collection_classifier asset (partition {collection_id}, version {version})"
    return Key(f"{DATA}/out_of_fold/collection_{int(collection_id)}/v{version}.parquet", made_by)


def write_out_of_fold(layout: Layout, collection_id: int, version: str, oof: OutOfFold) -> None:
    table = pa.table(
        {
            "image_id": pa.array(oof.image_ids.astype(np.int64)),
            "label": pa.array(oof.labels.astype(np.int64)),
            "unlabelled": pa.array(oof.unlabelled.astype(bool)),
            "probability": pa.array(oof.probabilities.astype(np.float64)),
        }
    )
    layout.store.write_parquet(out_of_fold_key(collection_id, version), table)


def read_out_of_fold(layout: Layout, collection_id: int, version: str) -> OutOfFold:
    """MissingInputError when the version was trained before OOF probabilities were kept."""
    table = layout.store.read_parquet(out_of_fold_key(collection_id, version))
    return OutOfFold(
        image_ids=table.column("image_id").to_numpy().astype(np.int64),
        labels=table.column("label").to_numpy().astype(np.int64),
        unlabelled=table.column("unlabelled").to_numpy(zero_copy_only=False).astype(bool),
        probabilities=table.column("probability").to_numpy().astype(np.float64),
    )
