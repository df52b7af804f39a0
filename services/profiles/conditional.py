"""Entity tags and ``If-Match`` for a profile (RFC 9110 sections 8.8.3 and 13.1.1), pure.

A profile's representation carries a strong ETag computed from its exact bytes. Writes need
``If-Match`` with the ETag the client read: a write without one is refused (428 Precondition
Required, RFC 6585) because a client that did not read first would overwrite a change it never
saw; a stale tag is a lost update (412). ``If-Match`` uses the strong comparison: a weak tag
(``W/"..."``) never matches; ``*`` matches any existing profile.
"""

from __future__ import annotations

import enum
import hashlib


def etag_for(body: bytes) -> str:
    return '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


class Precondition(enum.Enum):
    HOLDS = "holds"
    MISSING = "missing"  # no If-Match: 428
    FAILED = "failed"  # no tag matches: 412


def check_if_match(header: str | None, etag: str, *, required: bool = True) -> Precondition:
    """Whether ``If-Match: header`` holds for a resource whose current tag is ``etag``."""
    if header is None or not header.strip():
        return Precondition.MISSING if required else Precondition.HOLDS
    if header.strip() == "*":
        return Precondition.HOLDS
    for tag in header.split(","):
        tag = tag.strip()
        if tag and not tag.startswith("W/") and tag == etag:
            return Precondition.HOLDS
    return Precondition.FAILED


def none_match(header: str | None, etag: str) -> bool:
    """Whether ``If-None-Match: header`` matches ``etag`` (weak comparison, for GET)."""
    if not header:
        return False
    if header.strip() == "*":
        return True
    opaque = etag.removeprefix("W/")
    return any(tag.strip().removeprefix("W/") == opaque for tag in header.split(","))
