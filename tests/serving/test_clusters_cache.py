"""The clusters API's cache reads heroes from the Store: a local home or the shared S3 URL."""

from __future__ import annotations

from pathlib import Path

import pytest

from ml_platform.serving.clusters_cache import ClustersCache
from ml_platform.settings import Settings
from ml_platform.store.layout import Layout
from ml_platform.store.pet_tables import write_heroes
from tests.servers import S3Server as MotoS3


@pytest.fixture(params=["local", "s3"])
def layout(request: pytest.FixtureRequest, tmp_path: Path) -> Layout:
    if request.param == "local":
        return Layout.for_settings(Settings(home=tmp_path))
    moto: MotoS3 = request.getfixturevalue("moto_s3")
    url = request.getfixturevalue("s3_store_url")
    return Layout.for_settings(
        Settings(home=tmp_path / "writer", store_url=url, s3_endpoint_url=moto.endpoint_url)
    )


def test_a_replica_without_the_writers_home_serves_the_newest_heroes(
    layout: Layout, tmp_path: Path
) -> None:
    write_heroes(layout, 3, 1, {"cluster_version": 1})
    replica_settings = Settings(
        home=tmp_path / "replica",  # its own, empty home
        store_url=layout.store.url,
        s3_endpoint_url=None if layout.store.local else layout.store.fs.endpoint_url,
    )
    cache = ClustersCache(Layout.for_settings(replica_settings))
    assert cache.get(3) == {"cluster_version": 1} and cache.get(4) is None
    assert cache.get(3) is not None and (cache.loads, cache.hits) == (1, 1)
    write_heroes(layout, 3, 2, {"cluster_version": 2})  # a new materialization lands
    assert cache.get(3) == {"cluster_version": 2} and cache.loads == 2
