"""The expiring cache: kept for ttl, reloaded after, not kept at ttl 0, bounded, forgettable."""

from __future__ import annotations

from mobileplane.services.kit.expiring import ExpiringCache


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def test_answers_are_kept_for_ttl_then_reloaded() -> None:
    clock, loads = Clock(), []

    async def load() -> str | None:
        loads.append(1)
        return None if len(loads) == 1 else "found"

    cache: ExpiringCache[str | None] = ExpiringCache(clock=clock)
    assert await cache.get_or_load("k", 10, load) is None  # "unknown" is kept too
    clock.now += 9.9
    assert await cache.get_or_load("k", 10, load) is None
    clock.now += 0.2
    assert await cache.get_or_load("k", 10, load) == "found"
    assert len(loads) == 2


async def test_ttl_zero_keeps_nothing_and_pop_forgets() -> None:
    cache: ExpiringCache[int] = ExpiringCache(clock=Clock())

    async def one() -> int:
        return 1

    await cache.get_or_load("a", 0, one)
    assert len(cache) == 0
    await cache.get_or_load("a", 5, one)
    cache.pop("a")
    cache.pop("never-there")
    assert len(cache) == 0


async def test_a_full_cache_is_cleared_not_grown() -> None:
    cache: ExpiringCache[int] = ExpiringCache(size=3, clock=Clock())

    async def one() -> int:
        return 1

    for key in "abcd":
        await cache.get_or_load(key, 5, one)
    assert len(cache) == 1
