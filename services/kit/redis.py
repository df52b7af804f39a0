"""The one module that talks to Redis: the async client factory and key namespaces.

Services get a ``redis.asyncio.Redis`` from :func:`create_redis` (one connection pool per
process, opened lazily, closed at shutdown) and name keys through a :class:`KeySpace`, so that
deployments, tenants and tests sharing one Redis never see each other's keys:

    >>> KeySpace("mp").child("sessions").key("abc")
    'mp:sessions:abc'

Redis errors that mean "cannot reach Redis" become :class:`~kit.errors.Unavailable` through
:func:`unavailable_on_error`.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from fastapi import Request
from redis import exceptions as redis_exceptions
from redis.asyncio import BlockingConnectionPool, Redis

from mobileplane.services.kit.errors import Unavailable

__all__ = ["KeySpace", "Redis", "create_redis", "get_redis", "ping", "unavailable_on_error"]

_SEPARATOR = ":"
_PREFIX = re.compile(r"[A-Za-z0-9._:-]+")


@dataclass(frozen=True)
class KeySpace:
    """A key prefix: ``key("a", "b")`` is ``"<prefix>:a:b"``; ``child`` nests a namespace.

    A trailing ``:`` in the prefix is dropped (``KeySpace("t-1:")`` is ``KeySpace("t-1")``).
    """

    prefix: str

    def __post_init__(self) -> None:
        prefix = self.prefix.removesuffix(_SEPARATOR)
        if not _PREFIX.fullmatch(prefix) or prefix.endswith(_SEPARATOR):
            raise ValueError(f"key prefix {self.prefix!r} must match {_PREFIX.pattern}")
        object.__setattr__(self, "prefix", prefix)

    def key(self, *parts: str) -> str:
        if not parts:
            raise ValueError("a key needs at least one part")
        return _SEPARATOR.join((self.prefix, *parts))

    def child(self, name: str) -> KeySpace:
        return KeySpace(self.key(name))

    def pattern(self) -> str:
        """A ``SCAN MATCH`` pattern for every key of this namespace."""
        escaped = re.sub(r"([*?\[\]\\])", r"\\\1", self.prefix)
        return f"{escaped}{_SEPARATOR}*"

    def owns(self, key: str) -> bool:
        return key.startswith(self.prefix + _SEPARATOR)

    def strip(self, key: str) -> str:
        """The key without this namespace's prefix (the inverse of :meth:`key`)."""
        if not self.owns(key):
            raise ValueError(f"{key!r} is not in namespace {self.prefix!r}")
        return key[len(self.prefix) + 1 :]


def create_redis(
    url: str,
    *,
    decode_responses: bool = False,
    socket_timeout: float = 5.0,
    max_connections: int = 50,
    blocking: bool = False,
    **options: Any,
) -> Redis:
    """A client for ``url``; it connects on first use, so creating it never blocks or fails.

    With ``blocking``, a caller finding all ``max_connections`` in use waits for one (up to
    ``socket_timeout``) instead of getting "too many connections" at once.
    """
    if blocking:
        pool = BlockingConnectionPool.from_url(
            url,
            decode_responses=decode_responses,
            socket_timeout=socket_timeout,
            socket_connect_timeout=socket_timeout,
            max_connections=max_connections,
            timeout=socket_timeout,
            health_check_interval=30,
            **options,
        )
        return Redis.from_pool(pool)  # the client owns the pool: closing it closes the pool
    return Redis.from_url(
        url,
        decode_responses=decode_responses,
        socket_timeout=socket_timeout,
        socket_connect_timeout=socket_timeout,
        max_connections=max_connections,
        health_check_interval=30,  # re-check idle pooled connections before reuse
        **options,
    )


async def ping(client: Redis) -> None:
    """``PING``; raises if Redis cannot be reached (used by readiness)."""
    if not await client.ping():
        raise Unavailable("Redis did not answer PING")


@asynccontextmanager
async def unavailable_on_error() -> AsyncIterator[None]:
    """Turn "Redis is unreachable or busy" into a 503 :class:`Unavailable`."""
    try:
        yield
    except (redis_exceptions.ConnectionError, redis_exceptions.TimeoutError) as e:
        # BusyLoadingError (Redis loading its snapshot) is a ConnectionError too.
        raise Unavailable("The cache is unavailable", retry_after=1) from e


def get_redis(request: Request) -> Redis:
    """FastAPI dependency: the process's Redis client (created by ``kit.app.create_app``)."""
    client = getattr(request.app.state, "redis", None)
    if not isinstance(client, Redis):
        raise RuntimeError("no Redis client on app.state: create the app with kit.app.create_app")
    return client
