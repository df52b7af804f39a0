"""Reads the upstreams' OpenAPI documents and keeps the merged one for a while.

The documents change only when a service is deployed, and a docs page asks for them at each
visit: the merged document is kept :data:`KEEP_SECONDS` (:data:`KEEP_FAILED_SECONDS` when an
upstream could not be read, so a service that was starting is described soon after). One
refresh at a time; the others wait for it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from typing import Any

import httpx

from mobileplane.services.gateway.apidocs import Document, merge_openapi, upstreams
from mobileplane.services.gateway.routes import RouteTable

#: A deployment changes the documents; a minute later the page shows it.
KEEP_SECONDS = 60.0
#: An upstream that was not up yet is asked again this soon.
KEEP_FAILED_SECONDS = 5.0
#: Per upstream: a docs page should not hang on one slow service.
FETCH_TIMEOUT_SECONDS = 5.0


class ApiDocs:
    """The merged document of ``table``'s upstreams, as :func:`merge_openapi` makes it."""

    def __init__(
        self,
        table: RouteTable,
        client: httpx.AsyncClient,
        gateway_document: Callable[[], Mapping[str, Any]],
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.table = table
        self.client = client
        self.gateway_document = gateway_document
        self.clock = clock
        self._document: Document | None = None
        self._until = 0.0
        self._lock = asyncio.Lock()

    async def document(self) -> Document:
        async with self._lock:
            if self._document is None or self.clock() >= self._until:
                documents = dict(
                    zip(
                        upstreams(self.table),
                        await asyncio.gather(*map(self._read, upstreams(self.table))),
                        strict=True,
                    )
                )
                failed = any(isinstance(d, str) for d in documents.values())
                self._document = merge_openapi(self.gateway_document(), documents, self.table)
                self._until = self.clock() + (KEEP_FAILED_SECONDS if failed else KEEP_SECONDS)
            return self._document

    async def _read(self, upstream: str) -> Document | str:
        try:
            response = await self.client.get(
                f"{upstream}/openapi.json", timeout=FETCH_TIMEOUT_SECONDS
            )
            if response.status_code != 200:
                return f"HTTP {response.status_code}"
            document = response.json()
        except httpx.HTTPError as e:
            return f"{type(e).__name__}: {e}" if str(e) else type(e).__name__
        except ValueError:
            return "not JSON"
        return document if isinstance(document, dict) else "not an OpenAPI document"
