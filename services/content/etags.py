"""Entity tags and conditional requests (RFC 9110 §8.8.3, §13.1.2), pure.

Responses carry a strong ETag computed from the exact bytes served, so a client's
``If-None-Match`` is answered with 304 when nothing changed, whichever replica it asks.
"""

from __future__ import annotations

import hashlib


def etag_for(body: bytes) -> str:
    return '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


def none_match(header: str | None, etag: str) -> bool:
    """Whether ``If-None-Match: header`` matches ``etag`` (weak comparison, as GET uses)."""
    if not header:
        return False
    if header.strip() == "*":
        return True
    opaque = etag.removeprefix("W/")
    return any(tag.strip().removeprefix("W/") == opaque for tag in header.split(","))
