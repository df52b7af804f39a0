"""Rate-limit counters in Redis: each envelope's items counted into the current window.

Counting is one pipelined ``INCRBY`` + ``EXPIRE`` per limited category (and one for the DSN
key), only for categories that have a limit; :func:`.ratelimit.decide` then says what is over.
If Redis cannot be reached the limiter *fails open* — telemetry is accepted, and a warning is
logged: losing crash reports because a cache is down would be worse than a burst getting
through, and durability depends on PostgreSQL alone.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from redis import exceptions as redis_exceptions

from mobileplane.services.kit.redis import KeySpace, Redis
from mobileplane.services.telemetry.ratelimit import (
    EVENT_CATEGORIES,
    WINDOW_SECONDS,
    Decision,
    Limits,
    decide,
    window,
)

log = logging.getLogger("mobileplane.telemetry")

NO_LIMIT = Decision(frozenset(), 0, None)


async def check(
    redis: Redis,
    keyspace: KeySpace,
    *,
    project_id: int,
    public_key: str,
    limits: Limits,
    requested: Mapping[str, int],
    now: float,
) -> Decision:
    per_category = limits.category_per_minute or {}
    categories = [c for c in requested if c in per_category and requested[c] > 0]
    events = sum(n for c, n in requested.items() if c in EVENT_CATEGORIES)
    count_key = limits.key_per_minute is not None and events > 0
    if not categories and not count_key:
        return NO_LIMIT
    index, _ = window(now)
    space = keyspace.child("telemetry").child("rl")
    try:
        async with redis.pipeline(transaction=False) as pipe:
            for category in categories:
                name = space.key(str(project_id), category, str(index))
                pipe.incrby(name, requested[category])
                pipe.expire(name, 2 * WINDOW_SECONDS)
            if count_key:
                name = space.key("key", public_key, str(index))
                pipe.incrby(name, events)
                pipe.expire(name, 2 * WINDOW_SECONDS)
            results = await pipe.execute()
    except (redis_exceptions.ConnectionError, redis_exceptions.TimeoutError):
        log.warning("rate limits not enforced: Redis is unreachable")
        return NO_LIMIT
    counts = results[0::2]
    counted = dict(zip(categories, (int(c) for c in counts), strict=False))
    key_counted = int(counts[-1]) if count_key else 0
    return decide(limits, counted=counted, key_counted=key_counted, now=now)
