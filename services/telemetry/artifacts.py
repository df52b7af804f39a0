"""Debug files in object storage: ProGuard/R8 mappings per release, dSYMs per debug id.

Uploads go to the ``TELEMETRY_ARTIFACTS_BUCKET`` under ``<project>/<kind>/<ident>/<sha256>``
(content-addressed: re-uploading the same file is a no-op, a new file for the same release
replaces the record); the database row points at the current object. Parsed mappings are kept
in a small in-process cache keyed by content hash, since deobfuscating a crash needs the whole
mapping and mappings are megabytes.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections import OrderedDict
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from mobileplane.services.kit.s3 import S3Gateway
from mobileplane.services.telemetry import store
from mobileplane.services.telemetry.proguard import ProguardMapping, parse_mapping

#: Parsed mappings kept in memory; a large app's mapping parses to tens of MB.
CACHE_SIZE = 8


def object_key(project_id: int, kind: str, ident: str, sha256: str) -> str:
    safe = "".join(c if c.isalnum() or c in "._-@+" else "_" for c in ident)
    return f"{project_id}/{kind}/{safe}/{sha256}"


class Artifacts:
    def __init__(self, s3: S3Gateway, bucket: str) -> None:
        self.s3 = s3
        self.bucket = bucket
        self._parsed: OrderedDict[str, ProguardMapping] = OrderedDict()
        self._lock = asyncio.Lock()

    async def put(
        self,
        session: AsyncSession,
        project_id: int,
        kind: str,
        ident: str,
        body: bytes,
        content_type: str,
    ) -> dict[str, Any]:
        sha = hashlib.sha256(body).hexdigest()
        key = object_key(project_id, kind, ident, sha)
        await self.s3.put_object(
            self.bucket, key, body, content_type=content_type, metadata={"sha256": sha}
        )
        return await store.put_artifact(
            session,
            {
                "project_id": project_id,
                "kind": kind,
                "ident": ident,
                "key": key,
                "sha256": sha,
                "size": len(body),
            },
        )

    async def proguard(
        self, session: AsyncSession, project_id: int, release: str
    ) -> tuple[ProguardMapping, str] | None:
        row = await store.get_artifact(session, project_id, "proguard", release)
        if row is None:
            return None
        sha = str(row["sha256"])
        async with self._lock:
            cached = self._parsed.get(sha)
            if cached is not None:
                self._parsed.move_to_end(sha)
                return cached, sha
        stored = await self.s3.get_object(self.bucket, str(row["key"]))
        mapping = await asyncio.to_thread(parse_mapping, stored.body.decode("utf-8", "replace"))
        async with self._lock:
            self._parsed[sha] = mapping
            while len(self._parsed) > CACHE_SIZE:
                self._parsed.popitem(last=False)
        return mapping, sha
