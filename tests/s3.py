"""An S3 for tests: moto's server (a real HTTP server from PyPI) on 127.0.0.1.

`moto_s3` starts it once per session; `s3_store_url` hands each test a fresh bucket as an
``s3://bucket/prefix`` store URL, with dummy AWS credentials in the environment. The endpoint
reaches the platform through its explicit setting (ML_PLATFORM_S3_ENDPOINT_URL /
`Settings.s3_endpoint_url`), never through a patched client.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


@dataclass(frozen=True)
class MotoS3:
    endpoint_url: str

    def create_bucket(self) -> str:
        import boto3

        name = f"bucket-{uuid.uuid4().hex[:12]}"
        client = boto3.client(
            "s3", endpoint_url=self.endpoint_url,
            aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            region_name=CREDENTIALS["AWS_DEFAULT_REGION"],
        )  # fmt: skip
        client.create_bucket(Bucket=name)
        return name


@pytest.fixture(scope="session")
def moto_s3() -> Iterator[MotoS3]:
    server_module = pytest.importorskip("moto.server", reason="moto[server] is in the dev extra")
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request otherwise
    server = server_module.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield MotoS3(endpoint_url=f"http://{host}:{port}")
    finally:
        server.stop()


@pytest.fixture
def s3_store_url(moto_s3: MotoS3, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh bucket's ``s3://`` store URL; dummy credentials are set for this test."""
    for key, value in CREDENTIALS.items():
        monkeypatch.setenv(key, value)
    return f"s3://{moto_s3.create_bucket()}/platform"
