"""Checking an object a client uploaded through a presigned URL against what it declared.

A presigned PUT lets the client send any bytes; the service learns what arrived only when the
client says it is done. The content and profiles services both then compare the stored
object with the declared size, content type and SHA-256, and refuse (and delete) a mismatch.
This is that comparison, pure: the caller reads the object and acts on the answer.
"""

from __future__ import annotations

import hashlib


def upload_mismatches(
    body: bytes,
    stored_content_type: str | None,
    *,
    size: int,
    content_type: str,
    sha256: str,
) -> list[str]:
    """What differs between the stored object and the declaration (empty: it matches)."""
    problems = []
    if len(body) != size:
        problems.append(f"size {len(body)} != declared {size}")
    if stored_content_type != content_type:
        problems.append(f"type {stored_content_type} != declared {content_type}")
    if hashlib.sha256(body).hexdigest() != sha256:
        problems.append("SHA-256 differs from the declared one")
    return problems
