"""Storage tests run on a local directory and on S3 (moto's server)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ml_platform.settings import Settings
from ml_platform.store.blobs import Store
from ml_platform.store.layout import Layout


@pytest.fixture(params=["local", "s3"])
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    """Settings whose store is a local directory under home, or an S3 bucket."""
    if request.param == "local":
        return Settings(home=tmp_path)
    url: str = request.getfixturevalue("s3_store_url")
    endpoint = request.getfixturevalue("moto_s3").endpoint_url
    return Settings(home=tmp_path, store_url=url, s3_endpoint_url=endpoint)


@pytest.fixture
def store(settings: Settings) -> Store:
    return Store.for_settings(settings)


@pytest.fixture
def layout(settings: Settings) -> Layout:
    return Layout.for_settings(settings)
