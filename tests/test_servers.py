"""The real servers the tests stand on answer as their clients expect."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from tests.servers import PostgresServer, RedisServer, S3Server


@pytest.mark.parametrize("driver", ["", "psycopg", "psycopg2"])
def test_postgresql_url_connects_with_each_driver(
    postgres_server: PostgresServer, driver: str
) -> None:
    database = postgres_server.create_database()
    engine = sa.create_engine(postgres_server.url(database, driver=driver))
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE t (x int)"))
        conn.execute(sa.text("INSERT INTO t VALUES (7)"))
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT x FROM t")).scalar_one() == 7
    engine.dispose()


def test_postgres_url_fixture_gives_an_empty_database(postgres_url: str) -> None:
    engine = sa.create_engine(postgres_url)
    assert sa.inspect(engine).get_table_names() == []
    engine.dispose()


def test_redis_server_stores_and_returns_a_value(redis_server: RedisServer) -> None:
    import redis

    client = redis.Redis.from_url(redis_server.url())
    client.set("k", b"v")
    assert client.get("k") == b"v"
    client.close()


def test_s3_bucket_is_reachable_through_fsspec(s3_bucket: str, s3_server: S3Server) -> None:
    import fsspec

    fs = fsspec.filesystem("s3", client_kwargs={"endpoint_url": s3_server.endpoint_url})
    fs.pipe(f"{s3_bucket}/a/b.txt", b"hello")
    assert fs.cat(f"{s3_bucket}/a/b.txt") == b"hello"
    assert fs.ls(f"{s3_bucket}/a") == [f"{s3_bucket}/a/b.txt"]
