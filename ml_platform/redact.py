"""Keep credentials out of messages, logs and metadata: `redact_url` and `redact_text`.

A URL's user-info (`https://user:secret@host/`) and the values of query parameters whose
name suggests a secret (`token`, `key`, `password`, `signature`, ...) become `***`.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

MASK = "***"
SECRET_PARAMS = re.compile(
    r"(token|key|secret|pass|password|pwd|auth|signature|sig|credential)", re.I
)
_USERINFO = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<userinfo>[^/@\s]+)@")


def redact_url(url: str) -> str:
    """`url` with its password (or lone user token) and secret query values masked.

    Never raises: a URL that does not parse is returned with any user-info masked.
    """
    try:
        parts = urlsplit(url)
        netloc = parts.netloc
        if "@" in netloc:
            userinfo, _, host = netloc.rpartition("@")
            user = userinfo.split(":", 1)[0] if ":" in userinfo else MASK
            netloc = f"{user}:{MASK}@{host}" if ":" in userinfo else f"{MASK}@{host}"
        query = parts.query
        if query:
            pairs = parse_qsl(query, keep_blank_values=True)
            masked = [(k, MASK if SECRET_PARAMS.search(k) else v) for k, v in pairs]
            query = urlencode(masked, safe="*")
        return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))
    except ValueError:
        return redact_text(url)


def redact_text(text: str) -> str:
    """Every `scheme://user:password@` inside free text (an exception message) masked."""
    return _USERINFO.sub(lambda m: f"{m['scheme']}{_mask_userinfo(m['userinfo'])}@", text)


def _mask_userinfo(userinfo: str) -> str:
    return f"{userinfo.split(':', 1)[0]}:{MASK}" if ":" in userinfo else MASK
