"""Media the app shows, downloaded once and kept on the device.

Content items reference media as ``/content/media/<id>``; the platform answers with a
redirect to a short-lived S3 URL. A media id names one uploaded file for ever (a new upload
gets a new id), so a downloaded copy never goes stale: it is kept until the cache is over its
size budget, then the least recently used files go first. Downloads are written to a
temporary file and renamed, so a crash never leaves half a file in the cache.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Mapping
from pathlib import Path

import httpx

_MEDIA_PATH = re.compile(r"^/content/media/([0-9a-fA-F-]{36})$")


class MediaCache:
    def __init__(
        self,
        base_url: str,
        directory: str | Path,
        *,
        max_bytes: int = 200 * 1024 * 1024,
        headers: Mapping[str, str] | None = None,
        auth: httpx.Auth | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.max_bytes = max_bytes
        self.downloads = 0
        self._http = httpx.Client(
            base_url=base_url.rstrip("/"),
            headers=dict(headers or {}),
            auth=auth,
            follow_redirects=True,
            timeout=60,
            transport=transport,
        )

    def close(self) -> None:
        self._http.close()

    def path(self, reference: str) -> Path:
        """A local file with the media ``reference`` (``/content/media/<id>``) points at."""
        match = _MEDIA_PATH.match(reference)
        if match is None:
            raise ValueError(f"{reference!r} is not a media reference (/content/media/<id>)")
        target = self.directory / match[1].lower()
        if target.exists():
            os.utime(target)  # recently used
            return target
        with self._http.stream("GET", reference) as response:
            response.raise_for_status()
            fd, temp = tempfile.mkstemp(dir=self.directory, prefix=".part-")
            with os.fdopen(fd, "wb") as out:
                for chunk in response.iter_bytes():
                    out.write(chunk)
        os.replace(temp, target)
        self.downloads += 1
        self._evict(keep=target)
        return target

    def _evict(self, keep: Path) -> None:
        files = [p for p in self.directory.iterdir() if p.is_file() and not p.name.startswith(".")]
        total = sum(p.stat().st_size for p in files)
        for victim in sorted(files, key=lambda p: p.stat().st_mtime):
            if total <= self.max_bytes:
                break
            if victim != keep:
                total -= victim.stat().st_size
                victim.unlink()
