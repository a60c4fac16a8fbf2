"""A home the demo made while the model hub was unreachable: its models rest on random weights.

The demo records that in the home (`made-offline.json`), and every command on that home then
follows the demo's rule for models it cannot load: pretrained weights when they can be loaded
(the hub, the local cache, a local directory), else random ones, everything made from them
labelled `weights=random`. A home without the record keeps the setting's rule
(ML_PLATFORM_ALLOW_RANDOM_WEIGHTS, off by default: a model that cannot load is an error).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from ml_platform.settings import Settings

MARK_NAME = "made-offline.json"


def mark_path(home: Path) -> Path:
    return home / MARK_NAME


def mark_made_offline(home: Path) -> bool:
    """Record that the demo made `home` offline; True when the record is new."""
    path = mark_path(home)
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


def made_offline(home: Path) -> bool:
    """Whether the demo recorded that it made `home` offline."""
    return mark_path(home).is_file()


def random_weights_notice(settings: Settings) -> str:
    """One sentence: random weights are allowed on this home, why, and how results say so."""
    why = (
        f"the demo made this home offline ({mark_path(settings.resolved_home)})"
        if made_offline(settings.resolved_home)
        else "ML_PLATFORM_ALLOW_RANDOM_WEIGHTS is set"
    )
    return (
        f"RANDOM weights allowed: {why}; models that cannot load pretrained weights run on "
        "random ones, and everything made with them says weights=random (no meaning)"
    )


def with_home_rule(settings: Settings) -> Settings:
    """`settings`, allowing random weights when the demo made the home offline."""
    if settings.allow_random_weights or not made_offline(settings.resolved_home):
        return settings
    return settings.model_copy(update={"allow_random_weights": True})
