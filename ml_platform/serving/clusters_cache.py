"""Per-pet clusters and heroes as the latest `pet_heroes` materialization wrote them.

Each pet's file is read once and kept; a newer file (another mtime) replaces it on the next
request, so a new materialization is served without a restart.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

from ml_platform.store.pet_tables import heroes_path


class ClustersCache:
    def __init__(self, root: Path) -> None:
        self.root = root
        self._lock = threading.Lock()
        self._entries: dict[int, tuple[int, dict[str, Any]]] = {}
        self.hits = 0
        self.loads = 0

    def get(self, pet_id: int) -> dict[str, Any] | None:
        """The pet's clusters payload, or None when no materialization covers the pet."""
        path = heroes_path(self.root, pet_id)
        try:
            stamp = path.stat().st_mtime_ns
        except FileNotFoundError:
            return None
        with self._lock:
            cached = self._entries.get(pet_id)
            if cached is not None and cached[0] == stamp:
                self.hits += 1
                return cached[1]
        payload: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        with self._lock:
            self._entries[pet_id] = (stamp, payload)
            self.loads += 1
        return payload
