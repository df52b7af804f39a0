"""Fetching the issuer's JWKS, cached, with the refetch rules of ``keyring.py``.

One fetch at a time (an asyncio lock): a burst of tokens with a new ``kid`` after a rotation
makes one request to the auth service, not one per token. A failed fetch keeps the keys the
gateway already has; only when it has none (or the token's key is unknown) does a failed
fetch answer 503 — the gateway cannot tell a good token from a forged one without keys.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable

import httpx

from mobileplane.services.gateway.keyring import (
    JwksError,
    KeyCacheState,
    PublicKey,
    lookup_decision,
    parse_jwks,
)
from mobileplane.services.gateway.tokens import TokenRejected
from mobileplane.services.kit.errors import Unavailable

_log = logging.getLogger("mobileplane.gateway.jwks")

#: A JWKS is a few kilobytes; anything far larger is not one.
MAX_JWKS_BYTES = 256 * 1024


class JwksCache:
    def __init__(
        self,
        url: str,
        client: httpx.AsyncClient,
        *,
        clock: Callable[[], float],
        max_age: float,
        min_refetch_interval: float,
    ) -> None:
        self.url = url
        self._client = client
        self._clock = clock
        self._max_age = max_age
        self._min_refetch_interval = min_refetch_interval
        self._state = KeyCacheState()
        self._lock = asyncio.Lock()
        self.fetches = 0  # for observability and tests

    async def key(self, kid: str) -> PublicKey:
        """The key named ``kid``; :class:`TokenRejected` if the JWKS has none such."""
        decision = self._decide(kid)
        if decision == "fetch":
            async with self._lock:
                # Another request may have fetched while this one waited for the lock.
                if self._decide(kid) == "fetch":
                    await self._fetch()
        ring = self._state.ring
        if ring is None:
            raise Unavailable("The token signing keys cannot be fetched now", retry_after=5)
        found = ring.keys.get(kid)
        if found is None:
            raise TokenRejected("the token's signing key is not known")
        return found

    def _decide(self, kid: str) -> str:
        return lookup_decision(
            self._state,
            kid,
            self._clock(),
            max_age=self._max_age,
            min_refetch_interval=self._min_refetch_interval,
        )

    async def _fetch(self) -> None:
        self._state.last_attempt_at = self._clock()
        self.fetches += 1
        try:
            async with self._client.stream(
                "GET", self.url, headers={"accept": "application/json"}
            ) as response:
                response.raise_for_status()
                body = bytearray()
                async for chunk in response.aiter_bytes():
                    body += chunk
                    if len(body) > MAX_JWKS_BYTES:
                        raise JwksError(f"the JWKS is larger than {MAX_JWKS_BYTES} bytes")
            ring = parse_jwks(json.loads(bytes(body)), self._clock())
        except (httpx.HTTPError, JwksError, ValueError) as e:
            _log.warning("cannot fetch the JWKS from %s: %s", self.url, e)
            return
        self._state.ring = ring
        _log.info("fetched the JWKS from %s: %d keys", self.url, len(ring.keys))
