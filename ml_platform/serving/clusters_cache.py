"""Per-pet clusters and heroes as the latest `pet_heroes` materialization wrote them.

Heroes are immutable versioned objects in the Store (local or the shared S3 URL, so a
replica needs no local home). Each request lists the pet's versions; an object already read
is answered from memory, a newer one replaces it, so a new materialization is served
without a restart.
"""

from __future__ import annotations

import threading
from typing import Any

from ml_platform.store.layout import Layout
from ml_platform.store.pet_tables import newest_heroes_key


class ClustersCache:
    def __init__(self, layout: Layout) -> None:
        self.layout = layout
        self._lock = threading.Lock()
        self._entries: dict[int, tuple[str, dict[str, Any]]] = {}
        self.hits = 0
        self.loads = 0

    def get(self, pet_id: int) -> dict[str, Any] | None:
        """The pet's clusters payload, or None when no materialization covers the pet."""
        key = newest_heroes_key(self.layout, pet_id)
        if key is None:
            return None
        with self._lock:
            cached = self._entries.get(pet_id)
            if cached is not None and cached[0] == key.path:
                self.hits += 1
                return cached[1]
        payload: dict[str, Any] = self.layout.store.read_json(key)
        with self._lock:
            self._entries[pet_id] = (key.path, payload)
            self.loads += 1
        return payload
