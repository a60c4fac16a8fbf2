"""The platform home is private: folders 0700, files 0600 (they hold registry and run data).

`secure_home` sets the process umask so that everything created from now on (by this
process and the Dagster and MLflow processes it starts) is private, and closes the home
folder itself to other users when it exists.
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

log = logging.getLogger(__name__)
PRIVATE_UMASK = 0o077


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
