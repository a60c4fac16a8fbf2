"""The Store on a local directory and on S3: round trips, atomic writes, loud missing inputs."""

from __future__ import annotations

import pyarrow as pa
import pytest

from ml_platform.domain import Focus
from ml_platform.settings import Settings
from ml_platform.store.blobs import Key, MissingInputError, Store
from ml_platform.store.collections_file import read_collections
from ml_platform.store.detections_table import read_detections
from ml_platform.store.layout import Layout
from ml_platform.store.pet_tables import read_quality
from ml_platform.store.tables import read_catalog
from ml_platform.store.vectors import read_rows

FOCUS = Focus.from_key("whole_image__embed_clip_vit_b_32")


class HalfWrittenError(RuntimeError):
    pass


def test_bytes_json_and_parquet_round_trip(store: Store) -> None:
    store.write_bytes(Key("a/b/blob.bin"), b"\x00\x01")
    store.write_json(Key("a/doc.json"), {"n": 1, "names": ["x"]})
    table = pa.table({"image_id": pa.array([1, 2], pa.int64()), "status": ["ok", "failed"]})
    store.write_parquet(Key("a/t.parquet"), table)
    assert store.read_bytes(Key("a/b/blob.bin")) == b"\x00\x01"
    assert store.read_json(Key("a/doc.json")) == {"n": 1, "names": ["x"]}
    assert store.read_parquet(Key("a/t.parquet")).equals(table)
    assert store.children("a") == ["b", "doc.json", "t.parquet"]
    assert store.children("nothing/here") == []


def test_overwrite_replaces_the_whole_object_and_delete_removes_it(store: Store) -> None:
    key = Key("data/x.json")
    store.write_json(key, {"v": 1})
    store.write_json(key, {"v": 2})
    assert store.read_json(key) == {"v": 2}
    assert store.delete(key) and not store.exists(key) and not store.delete(key)


def test_a_write_that_fails_midway_leaves_no_object_and_no_temporary(store: Store) -> None:
    key = Key("data/catalog/b1.parquet")
    with pytest.raises(HalfWrittenError), store.writer(key) as handle:
        handle.write(b"PAR1 half of a file")
        raise HalfWrittenError("the process died here")
    assert not store.exists(key)
    assert store.children("data/catalog") == []
    if store.local:  # nor a hidden temporary file beside it
        assert not list(store.fs.ls(store.root + "/data/catalog", detail=False))


def test_a_failed_overwrite_keeps_the_previous_object(store: Store) -> None:
    key = Key("data/collections.json")
    store.write_json(key, [1, 2])
    with pytest.raises(HalfWrittenError), store.writer(key) as handle:
        handle.write(b"[3, ")
        raise HalfWrittenError("interrupted")
    assert store.read_json(key) == [1, 2]


def test_a_missing_object_is_an_error_naming_its_url_and_writer(store: Store) -> None:
    key = Key("data/catalog/b9.parquet", "the image_catalog asset (partition b9)")
    with pytest.raises(MissingInputError) as caught:
        store.read_parquet(key)
    assert caught.value.url == store.url_of(key) and caught.value.url.endswith("b9.parquet")
    assert "image_catalog" in str(caught.value) and store.url_of(key) in str(caught.value)
    assert isinstance(caught.value, FileNotFoundError)


@pytest.mark.parametrize(
    ("read", "asset"),
    [
        (lambda layout: read_catalog(layout, "b1"), "image_catalog"),
        (lambda layout: read_detections(layout, "b1"), "detections"),
        (lambda layout: read_rows(layout, FOCUS, "b1"), "embeddings"),
        (lambda layout: read_quality(layout, "b1"), "pet_heroes"),
        (read_collections, "crawlr_collections"),
        (lambda layout: layout.manifests().read("b1"), "batch planning"),
    ],
)
def test_readers_raise_instead_of_returning_empty(layout: Layout, read: object, asset: str) -> None:
    with pytest.raises(MissingInputError, match=asset) as caught:
        read(layout)  # type: ignore[operator]
    assert caught.value.url.startswith(layout.store.url)


@pytest.mark.parametrize("path", ["", "/abs/x", "a/../b"])
def test_keys_stay_under_the_root(path: str) -> None:
    with pytest.raises(ValueError, match="relative path"):
        Key(path)


def test_the_default_store_is_home_and_the_s3_url_names_the_bucket(
    layout: Layout, settings: Settings
) -> None:
    url = layout.store.url_of(layout.catalog("b1"))
    if layout.store.local:
        assert url == str(settings.resolved_home / "data" / "catalog" / "b1.parquet")
    else:
        assert url.startswith("s3://bucket-") and url.endswith("/platform/data/catalog/b1.parquet")
