"""Versioned objects: a shared thing (a pet's clusters, its heroes) gets a new object per write.

Objects are named ``<prefix>/v<version:08d>-<time_ns>-<token><suffix>`` and never rewritten,
so a reader sees a whole older or newer version, never a mix, and no writer reads, changes and
rewrites a shared object. The newest is the greatest (version, time) name; two writers that
pick the same version both land and the later one wins. Only the newest `KEEP` are kept.
"""

from __future__ import annotations

import re
import secrets
import time
from dataclasses import dataclass

from ml_platform.store.blobs import Key, Store

KEEP = 3
_NAME = re.compile(r"^v(\d{8})-(\d+)-[0-9a-f]+(\.\w+)$")


@dataclass(frozen=True)
class Versioned:
    version: int
    key: Key


def versions(store: Store, prefix: str, made_by: str) -> list[Versioned]:
    """Every stored version under `prefix`, oldest first."""
    found = []
    for name in store.children(prefix):
        match = _NAME.match(name)
        if match:
            stamp = (int(match.group(1)), int(match.group(2)))
            found.append((stamp, Versioned(stamp[0], Key(f"{prefix}/{name}", made_by))))
    return [v for _, v in sorted(found, key=lambda item: item[0])]


def latest(store: Store, prefix: str, made_by: str) -> Versioned | None:
    """The newest version under `prefix`, or None when none was written yet."""
    found = versions(store, prefix, made_by)
    return found[-1] if found else None


def write_version(
    store: Store, prefix: str, version: int, data: bytes, *, suffix: str, made_by: str
) -> Versioned:
    """Write `data` as a new object of `version`, then drop all but the newest `KEEP`."""
    name = f"v{version:08d}-{time.time_ns()}-{secrets.token_hex(4)}{suffix}"
    written = Versioned(version, Key(f"{prefix}/{name}", made_by))
    store.write_bytes(written.key, data)
    for old in versions(store, prefix, made_by)[:-KEEP]:
        store.delete(old.key)
    return written
