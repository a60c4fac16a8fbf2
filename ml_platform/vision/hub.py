"""Is the model hub reachable? Loading code goes offline (local cache only) when it is not,
and the demo falls back to random weights only then."""

from __future__ import annotations

import os
import socket

HUB_HOST = "huggingface.co"


def hub_offline() -> bool:
    """True when HF_HUB_OFFLINE is set or the hub's name does not resolve (a DNS query only)."""
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes"):
        return True
    try:
        socket.getaddrinfo(HUB_HOST, 443)
    except OSError:
        return True
    return False
