"""Real servers for tests: a throw-away PostgreSQL, Redis and an S3 (moto) server on 127.0.0.1.

Session-scoped fixtures start each server once. Where a server's binary is absent they skip with
the reason, except under ``CI=true``, where they fail: CI installs them (`.ci/run`), so a skip
there would hide a broken setup. Per-test fixtures hand out a fresh database / bucket.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import pytest

T = TypeVar("T")
POSTGRES_USER = "postgres"
S3_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


class ServerUnavailable(RuntimeError):
    """A server's binary or package is not installed here."""


def unavailable(reason: str) -> None:
    """Skip locally; fail under CI=true, where every server must be installed."""
    if in_ci():
        pytest.fail(f"{reason} (CI=true: .ci/run installs it; a skip would hide that)")
    pytest.skip(reason)


@contextlib.contextmanager
def available(server: contextlib.AbstractContextManager[T]) -> Iterator[T]:
    """Enter `server`; a missing binary skips (locally) or fails (CI) the test asking for it."""
    with contextlib.ExitStack() as stack:
        try:
            value = stack.enter_context(server)
        except ServerUnavailable as exc:
            unavailable(str(exc))
            raise  # unavailable() raised already; this satisfies the type checker
        yield value


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(check: Callable[[], bool], what: str, timeout_s: float = 30.0) -> None:
    """Poll `check` until it is true; a server that never answers is an error naming it."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError):
            if check():
                return
        time.sleep(0.1)
    raise TimeoutError(f"{what} did not answer within {timeout_s:.0f} s")


def port_open(port: int) -> bool:
    with socket.create_connection(("127.0.0.1", port), timeout=1):
        return True


# ---------------------------------------------------------------- PostgreSQL


@dataclass(frozen=True)
class PostgresServer:
    port: int
    socket_dir: Path
    bin_dir: Path
    host: str = "127.0.0.1"
    user: str = POSTGRES_USER

    def url(self, database: str = "postgres", driver: str = "") -> str:
        """A SQLAlchemy URL; `driver` "psycopg" (3) or "psycopg2" picks the DBAPI explicitly."""
        scheme = f"postgresql+{driver}" if driver else "postgresql"
        return f"{scheme}://{self.user}@{self.host}:{self.port}/{database}"

    def create_database(self, name: str | None = None) -> str:
        """A new empty database; returns its name."""
        name = name or f"db_{uuid.uuid4().hex[:12]}"
        self.psql(f'CREATE DATABASE "{name}"')
        return name

    def psql(self, sql: str) -> str:
        cmd = [str(self.bin_dir / "psql"), "-h", self.host, "-p", str(self.port)]
        cmd += ["-U", self.user, "-d", "postgres", "-v", "ON_ERROR_STOP=1", "-Atc", sql]
        return subprocess.run(cmd, check=True, capture_output=True, text=True).stdout


def postgres_bin_dir() -> Path | None:
    """`pg_ctl` on PATH, else the newest Debian install under /usr/lib/postgresql/*/bin."""
    on_path = shutil.which("pg_ctl")
    if on_path:
        return Path(on_path).resolve().parent
    candidates = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"),
        key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
    )
    return candidates[-1].parent if candidates else None


def _as_server_user(cmd: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: CI is root, so drop to the `postgres` user."""
    if os.geteuid() != 0:
        return cmd
    return ["runuser", "-u", POSTGRES_USER, "--", *cmd]


def _private_dir(prefix: str) -> Path:
    """A temporary directory the server user owns (pytest's tmp dirs are root-only)."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    if os.geteuid() == 0:
        shutil.chown(path, POSTGRES_USER, POSTGRES_USER)
    return path


def start_postgres(bin_dir: Path, root: Path) -> PostgresServer:
    data, port = root / "data", free_port()
    initdb = [str(bin_dir / "initdb"), "-D", str(data), "-A", "trust", "-U", POSTGRES_USER]
    subprocess.run(
        _as_server_user([*initdb, "-E", "UTF8", "--no-sync"]), check=True, capture_output=True
    )
    options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off"
    options += " -c max_connections=200"
    pg_ctl = [str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(root / "server.log")]
    subprocess.run(
        _as_server_user([*pg_ctl, "-o", options, "-w", "start"]), check=True, capture_output=True
    )
    return PostgresServer(port=port, socket_dir=root, bin_dir=bin_dir)


def stop_postgres(server: PostgresServer) -> None:
    pg_ctl = [str(server.bin_dir / "pg_ctl"), "-D", str(server.socket_dir / "data")]
    stop = _as_server_user([*pg_ctl, "-m", "immediate", "-w", "stop"])
    subprocess.run(stop, check=False, capture_output=True)


@contextlib.contextmanager
def running_postgres() -> Iterator[PostgresServer]:
    """A throw-away PostgreSQL cluster (trust auth, user `postgres`), removed afterwards."""
    bin_dir = postgres_bin_dir()
    if bin_dir is None:
        raise ServerUnavailable("PostgreSQL server binaries not found (apt-get install postgresql)")
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        raise ServerUnavailable("running as root without `runuser`: cannot start PostgreSQL")
    root = _private_dir("ml-platform-pg-")
    try:
        server = start_postgres(bin_dir, root)
        try:
            yield server
        finally:
            stop_postgres(server)
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A throw-away PostgreSQL for the whole session."""
    with available(running_postgres()) as server:
        yield server


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> str:
    """A SQLAlchemy URL (`postgresql://`, default driver) of a fresh, empty database."""
    return postgres_server.url(postgres_server.create_database())


# ---------------------------------------------------------------- Redis


@dataclass(frozen=True)
class RedisServer:
    port: int
    host: str = "127.0.0.1"

    def url(self, db: int = 0) -> str:
        return f"redis://{self.host}:{self.port}/{db}"


@contextlib.contextmanager
def running_redis(workdir: Path) -> Iterator[RedisServer]:
    """A Redis server without persistence, its log in `workdir`."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise ServerUnavailable("redis-server not found (apt-get install redis-server)")
    port = free_port()
    cmd = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly"]
    with (workdir / "redis.log").open("wb") as log:
        proc = subprocess.Popen([*cmd, "no", "--dir", str(workdir)], stdout=log, stderr=log)
        try:
            wait_for(lambda: proc.poll() is None and port_open(port), f"redis-server on {port}")
            yield RedisServer(port=port)
        finally:
            proc.terminate()
            proc.wait(timeout=30)


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A Redis server for the whole session."""
    with available(running_redis(tmp_path_factory.mktemp("redis"))) as server:
        yield server


# ---------------------------------------------------------------- S3 (moto)


@dataclass(frozen=True)
class S3Server:
    endpoint_url: str

    @property
    def env(self) -> dict[str, str]:
        """Environment for any S3 client (boto3, s3fs, MLflow) to reach this server."""
        return {**S3_CREDENTIALS, "AWS_ENDPOINT_URL": self.endpoint_url,
                "MLFLOW_S3_ENDPOINT_URL": self.endpoint_url}  # fmt: skip

    def create_bucket(self, name: str | None = None) -> str:
        import boto3

        name = name or f"bucket-{uuid.uuid4().hex[:12]}"
        client = boto3.client(
            "s3", endpoint_url=self.endpoint_url,
            aws_access_key_id=S3_CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=S3_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            region_name=S3_CREDENTIALS["AWS_DEFAULT_REGION"],
        )  # fmt: skip
        client.create_bucket(Bucket=name)
        return name


@contextlib.contextmanager
def running_s3() -> Iterator[S3Server]:
    """moto's S3 server (a real HTTP server from PyPI) on a free 127.0.0.1 port."""
    try:
        from moto.server import ThreadedMotoServer
    except ImportError:
        raise ServerUnavailable("moto[server] not installed (pip install -e '.[dev]')") from None
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        wait_for(lambda: port_open(port), f"moto S3 server on {port}")
        yield S3Server(endpoint_url=f"http://127.0.0.1:{port}")
    finally:
        server.stop()


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """An S3 server for the whole session."""
    with available(running_s3()) as server:
        yield server


@pytest.fixture
def s3_bucket(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh bucket; this test's environment points every S3 client at the moto server."""
    for key, value in s3_server.env.items():
        monkeypatch.setenv(key, value)
    return s3_server.create_bucket()
