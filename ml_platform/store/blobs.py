"""The one storage interface: objects under a root URL, through fsspec.

The root is a local directory (the default: the platform home) or ``s3://bucket/prefix``
(s3fs), chosen by ``ML_PLATFORM_STORE_URL``. Objects are addressed by a `Key`: a
'/'-separated path under the root plus the step that writes it, so a missing input is a
`MissingInputError` that names the URL and what materializes it, never an empty result.

Writes are atomic on both: locally a temporary file in the same folder is renamed into place
(``os.replace``); on S3 an object appears whole when its single PUT (or its multipart
upload) completes. A failed write leaves no object and no temporary file behind.
"""

from __future__ import annotations

import io
import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import fsspec
import pyarrow as pa
import pyarrow.parquet as pq
from fsspec.utils import get_protocol

from ml_platform.settings import Settings

LOCAL_PROTOCOLS = ("file", "local")
TEMP_PREFIX = ".tmp-"


@dataclass(frozen=True)
class Key:
    """An object's path under the store root and the step that writes it."""

    path: str
    made_by: str = "the platform"

    def __post_init__(self) -> None:
        if not self.path or self.path.startswith("/") or ".." in self.path.split("/"):
            raise ValueError(f"store key {self.path!r} must be a relative path without '..'")


class MissingInputError(FileNotFoundError):
    """An input object does not exist; the message names it and what writes it."""

    def __init__(self, url: str, made_by: str) -> None:
        super().__init__(f"{url} does not exist: it is written by {made_by}; run that first")
        self.url = url
        self.made_by = made_by


class Store:
    """Bytes, JSON and Parquet objects under one root URL."""

    def __init__(self, url: str, *, s3_endpoint_url: str | None = None) -> None:
        self.url = url.rstrip("/") or "/"
        protocol = get_protocol(self.url)
        options: dict[str, Any] = {}
        if protocol in ("s3", "s3a"):
            # Listings are never cached: other processes write beside this one.
            options["use_listings_cache"] = False
            if s3_endpoint_url:
                options["endpoint_url"] = s3_endpoint_url
        self.fs, self.root = fsspec.core.url_to_fs(self.url, **options)
        self.local = protocol in LOCAL_PROTOCOLS

    @classmethod
    def for_settings(cls, settings: Settings) -> Store:
        return cls(settings.store_root, s3_endpoint_url=settings.s3_endpoint_url)

    def _path(self, key: Key | str) -> str:
        relative = key.path if isinstance(key, Key) else key
        return f"{self.root.rstrip('/')}/{relative}" if relative else self.root

    def url_of(self, key: Key | str) -> str:
        """The object's full URL (a plain path for a local store)."""
        path = self._path(key)
        return path if self.local else f"{self.url.split('://', 1)[0]}://{path}"

    def exists(self, key: Key) -> bool:
        return bool(self.fs.isfile(self._path(key)))

    def read_bytes(self, key: Key) -> bytes:
        try:
            data: bytes = self.fs.cat_file(self._path(key))
        except (FileNotFoundError, IsADirectoryError) as exc:
            raise MissingInputError(self.url_of(key), key.made_by) from exc
        return data

    def write_bytes(self, key: Key, data: bytes) -> None:
        with self.writer(key) as handle:
            handle.write(data)

    @contextmanager
    def writer(self, key: Key) -> Iterator[IO[bytes]]:
        """A handle whose bytes become the object when the block ends without an exception."""
        if self.local:
            with atomic_local_write(Path(self._path(key))) as handle:
                yield handle
            return
        buffer = io.BytesIO()
        yield buffer
        self.fs.pipe_file(self._path(key), buffer.getvalue())

    def children(self, prefix: str) -> list[str]:
        """Names (not paths) of the objects and folders directly under `prefix`, sorted;
        empty when nothing was written there yet."""
        try:
            found = self.fs.ls(self._path(prefix), detail=False)
        except FileNotFoundError:
            return []
        names = (str(p).rstrip("/").rsplit("/", 1)[-1] for p in found)
        return sorted(n for n in names if not n.startswith(TEMP_PREFIX))

    def delete(self, key: Key) -> bool:
        """Remove an object; False when there was none (S3 deletes absent keys silently)."""
        if not self.exists(key):
            return False
        try:
            self.fs.rm_file(self._path(key))
        except FileNotFoundError:  # removed meanwhile by another writer
            return False
        return True

    def read_json(self, key: Key) -> Any:
        return json.loads(self.read_bytes(key))

    def write_json(self, key: Key, payload: Any) -> None:
        text = json.dumps(payload, indent=1, sort_keys=True, default=str)
        self.write_bytes(key, text.encode("utf-8"))

    def read_parquet(self, key: Key, filters: list[tuple[str, str, Any]] | None = None) -> pa.Table:
        """The table; `filters` (pyarrow's DNF) keep only the matching rows."""
        return pq.read_table(pa.BufferReader(self.read_bytes(key)), filters=filters)

    def write_parquet(self, key: Key, table: pa.Table) -> None:
        with self.writer(key) as handle:
            pq.write_table(table, handle)


@contextmanager
def atomic_local_write(path: Path) -> Iterator[IO[bytes]]:
    """Write to a unique temporary file beside `path`, then rename it into place; on an
    exception the temporary file is removed and `path` is untouched. The platform's one
    local atomic write: the Store uses it, and so do outputs the user names (`ml-platform
    embed --out`)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f"{TEMP_PREFIX}{path.name}-")
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
