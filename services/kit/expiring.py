"""A small per-replica cache of answers that go stale: kept ``ttl`` seconds, bounded.

Ingestion services authenticate every request by a key (a DSN key, a write key); looking it
up in the database each time costs a query per request. They keep the answer — found or
not — for a few seconds; revoking a key thus takes effect within that time (or at once on
the replica that revoked it: :meth:`ExpiringCache.pop`). A flood of made-up keys cannot grow
it past ``size``: it is cleared when full.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

V = TypeVar("V")

#: Most entries one replica remembers.
DEFAULT_SIZE = 10_000


class ExpiringCache(Generic[V]):
    def __init__(
        self, size: int = DEFAULT_SIZE, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._size = size
        self._clock = clock
        self._entries: dict[str, tuple[float, V]] = {}

    async def get_or_load(self, key: str, ttl: float, load: Callable[[], Awaitable[V]]) -> V:
        """The cached answer for ``key``, or ``load()``'s, kept ``ttl`` seconds (0: not kept)."""
        now = self._clock()
        cached = self._entries.get(key)
        if cached is not None and cached[0] > now:
            return cached[1]
        value = await load()
        if ttl > 0:
            if len(self._entries) >= self._size:
                self._entries.clear()
            self._entries[key] = (now + ttl, value)
        return value

    def pop(self, key: str) -> None:
        """Forget ``key`` (a revoked key stops being accepted on this replica at once)."""
        self._entries.pop(key, None)

    def __len__(self) -> int:
        return len(self._entries)
