"""The store's S3 fixtures, on the one moto server of `tests/servers.py`.

`moto_s3` is that session server; `s3_store_url` hands each test a fresh bucket as an
``s3://bucket/prefix`` store URL, with dummy AWS credentials in the environment. The endpoint
reaches the platform through its explicit setting (ML_PLATFORM_S3_ENDPOINT_URL /
`Settings.s3_endpoint_url`), never through a patched client.
"""

from __future__ import annotations

import pytest

from tests.servers import S3_CREDENTIALS, S3Server


@pytest.fixture(scope="session")
def moto_s3(s3_server: S3Server) -> S3Server:
    return s3_server


@pytest.fixture
def s3_store_url(moto_s3: S3Server, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh bucket's ``s3://`` store URL; dummy credentials are set for this test."""
    for key, value in S3_CREDENTIALS.items():
        monkeypatch.setenv(key, value)
    return f"s3://{moto_s3.create_bucket()}/platform"
