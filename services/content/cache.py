"""Response caching in Redis: generations for invalidation, one loader per key (no stampede).

- **Invalidation** by generation: every key embeds the content generation (a Redis counter);
  any write bumps it, so every cached response of the old generation is ignored at once and
  expires on its own (no scan, no race between "delete key" and "a reader refills it").
- **Stampede protection**: on a miss, one request takes a short lock (``SET NX PX``) and loads;
  the others wait for its result for up to ``wait`` seconds, polling, then load themselves
  (a stuck loader must not stall readers). TTLs get ±10% jitter so keys filled together do not
  expire together.
- The cache is an optimisation: when Redis fails, requests are served from Postgres.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Awaitable, Callable

from redis import exceptions as redis_exceptions
from redis.asyncio import Redis

from mobileplane.services.kit.redis import KeySpace

log = logging.getLogger("mobileplane.content.cache")
_REDIS_ERRORS = (redis_exceptions.ConnectionError, redis_exceptions.TimeoutError)


class ResponseCache:
    def __init__(self, redis: Redis, keyspace: KeySpace, ttl: int, *, wait: float = 2.0) -> None:
        self.redis = redis
        self.space = keyspace.child("content")
        self.ttl = ttl
        self.wait = wait
        self.loads = 0  # loads performed by this process (observability, tests)

    async def _generation(self) -> int:
        value = await self.redis.get(self.space.key("generation"))
        return int(value or 0)

    async def invalidate(self) -> None:
        """Every cached response is stale from now on."""
        try:
            await self.redis.incr(self.space.key("generation"))
        except _REDIS_ERRORS:
            log.warning("could not bump the content cache generation: Redis is unavailable")

    async def get_or_load(self, name: str, load: Callable[[], Awaitable[bytes]]) -> bytes:
        try:
            key = self.space.key("cache", f"g{await self._generation()}", name)
            cached = await self.redis.get(key)
            if isinstance(cached, bytes):
                return cached
            token = secrets.token_hex(8)
            lock = key + ":lock"
            if await self.redis.set(lock, token, nx=True, px=int(self.wait * 1000) * 2):
                try:
                    body = await self._load(load)
                    jitter = 1 + (secrets.randbelow(21) - 10) / 100
                    await self.redis.set(key, body, ex=max(1, round(self.ttl * jitter)))
                    return body
                finally:
                    if await self.redis.get(lock) == token.encode():
                        await self.redis.delete(lock)
            deadline = asyncio.get_running_loop().time() + self.wait
            while asyncio.get_running_loop().time() < deadline:
                await asyncio.sleep(0.02)
                cached = await self.redis.get(key)
                if isinstance(cached, bytes):
                    return cached
        except _REDIS_ERRORS:
            log.warning("content cache unavailable; serving from the database")
        return await self._load(load)

    async def _load(self, load: Callable[[], Awaitable[bytes]]) -> bytes:
        self.loads += 1
        return await load()
