"""The demo's record that it made a home while the model hub was unreachable.

`home.py` reads it (every command on that home then allows random weights the demo's way);
only the demo writes it.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from ml_platform.home import made_offline_mark


def mark_made_offline(home: Path) -> bool:
    """Record that the demo made `home` offline; True when the record is new."""
    path = made_offline_mark(home)
    if path.is_file():
        return False
    home.mkdir(parents=True, exist_ok=True)
    record = {
        "made_offline": True,
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "means": "the model hub was unreachable: models that could not load pretrained "
        "weights ran on random ones (tagged weights=random); commands on this home allow "
        "random weights the same way",
    }
    path.write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    return True
