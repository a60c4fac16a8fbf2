"""The platform home: private (folders 0700, files 0600: they hold registry and run data),
and what it records about how it was made.

`secure_home` sets the process umask so that everything created from now on (by this
process and the Dagster and MLflow processes it starts) is private, and closes the home
folder itself to other users when it exists.

A home the demo made while the model hub was unreachable holds `made-offline.json` (the demo
writes it: `demo/offline_home.py`); its models rest on random weights. Every command on such
a home, `serve` included, follows the demo's rule for models it cannot load: pretrained
weights when they load (the hub, the local cache, a local directory), else random ones,
everything made from them labelled `weights=random`. A home without the record keeps the
setting's rule (ML_PLATFORM_ALLOW_RANDOM_WEIGHTS, off by default: such a model is an error).
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

from ml_platform.settings import Settings

log = logging.getLogger(__name__)
PRIVATE_UMASK = 0o077
MADE_OFFLINE = "made-offline.json"


def secure_home(path: Path) -> None:
    """umask 077 for this process, and `path` (when it exists and is ours) made 0700."""
    os.umask(PRIVATE_UMASK)
    try:
        info = path.stat()
    except FileNotFoundError:
        return
    if info.st_uid == os.getuid() and stat.S_IMODE(info.st_mode) & 0o077:
        log.info("making %s private (0700)", path)
        path.chmod(0o700)


def made_offline_mark(home: Path) -> Path:
    """Where the demo records that it made `home` while the model hub was unreachable."""
    return home / MADE_OFFLINE


def made_offline(home: Path) -> bool:
    """Whether the demo recorded that it made `home` offline."""
    return made_offline_mark(home).is_file()


def with_home_rule(settings: Settings) -> Settings:
    """`settings`, allowing random weights when the demo made the home offline."""
    if settings.allow_random_weights or not made_offline(settings.resolved_home):
        return settings
    return settings.model_copy(update={"allow_random_weights": True})


def random_weights_notice(settings: Settings) -> str:
    """One sentence: random weights are allowed on this home, why, and how results say so."""
    home = settings.resolved_home
    why = (
        f"the demo made this home offline ({made_offline_mark(home)})"
        if made_offline(home)
        else "ML_PLATFORM_ALLOW_RANDOM_WEIGHTS is set"
    )
    return (
        f"RANDOM weights allowed: {why}; models that cannot load pretrained weights run on "
        "random ones, and everything made with them says weights=random (no meaning)"
    )
