"""Unique, valid names for per-test resources (databases, buckets, namespaces, flags)."""

from __future__ import annotations

import re
import uuid


def unique(prefix: str, request_name: str = "", max_len: int = 40) -> str:
    """``prefix-<slug of the test name>-<8 hex>``: DNS-1123 safe, readable in listings."""
    slug = re.sub(r"[^a-z0-9]+", "-", request_name.lower()).strip("-")
    suffix = uuid.uuid4().hex[:8]
    room = max_len - len(prefix) - len(suffix) - 2
    slug = slug[: max(room, 0)].strip("-")
    return "-".join(p for p in (prefix, slug, suffix) if p)
