"""The SDK's media cache against the real content service and S3."""

from __future__ import annotations

import hashlib
from pathlib import Path

import httpx
import pytest
from mobileplane_client import MediaCache

from mobileplane.services.kit.identity import Identity, identity_headers

pytestmark = pytest.mark.integration


def upload(url: str, data: bytes) -> str:
    editor = identity_headers(Identity("ed", frozenset({"content", "content:write"})))
    with httpx.Client(base_url=url, headers=editor) as client:
        plan = client.post(
            "/content/media",
            json={
                "content_type": "image/png",
                "size": len(data),
                "sha256": hashlib.sha256(data).hexdigest(),
            },
        ).json()
        httpx.put(plan["upload"]["url"], content=data, headers=plan["upload"]["headers"])
        assert client.post(f"/content/media/{plan['id']}/complete").status_code == 200
    return f"/content/media/{plan['id']}"


def test_media_is_downloaded_once_and_evicted_least_recently_used(
    content_url: str, tmp_path: Path
) -> None:
    first, second = upload(content_url, b"a" * 600), upload(content_url, b"b" * 600)
    reader = identity_headers(Identity("alice", frozenset({"content"})))
    cache = MediaCache(content_url, tmp_path / "media", max_bytes=1000, headers=reader)
    try:
        assert cache.path(first).read_bytes() == b"a" * 600
        assert cache.path(first).read_bytes() == b"a" * 600  # from the device
        assert cache.downloads == 1
        assert cache.path(second).read_bytes() == b"b" * 600
        # Over budget: the least recently used file went.
        assert not (tmp_path / "media" / first.rsplit("/", 1)[1]).exists()
        assert cache.downloads == 2
        with pytest.raises(ValueError, match="not a media reference"):
            cache.path("/etc/passwd")
        with pytest.raises(httpx.HTTPStatusError):
            cache.path("/content/media/00000000-0000-0000-0000-000000000000")
    finally:
        cache.close()
