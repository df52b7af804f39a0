"""The Redis gateway on a real Redis: key spaces isolate, unreachable Redis is a 503."""

from __future__ import annotations

import pytest

from mobileplane.services.kit.errors import Unavailable
from mobileplane.services.kit.redis import KeySpace, create_redis, ping, unavailable_on_error

pytestmark = pytest.mark.integration


async def test_keyspaces_isolate(redis_url: str, redis_prefix: str) -> None:
    client = create_redis(redis_url, decode_responses=True)
    try:
        await ping(client)
        root = KeySpace(redis_prefix)
        tenant_a, tenant_b = root.child("tenant-a"), root.child("tenant-b")
        await client.set(tenant_a.key("greeting"), "hello a", ex=60)
        await client.set(tenant_b.key("greeting"), "hello b", ex=60)
        assert await client.get(tenant_a.key("greeting")) == "hello a"
        keys = sorted([key async for key in client.scan_iter(match=tenant_a.pattern())])
        assert keys == [tenant_a.key("greeting")]
        assert [tenant_a.strip(key) for key in keys] == ["greeting"]
    finally:
        await client.aclose()


async def test_unreachable_redis_is_unavailable(unused_tcp_port: int) -> None:
    client = create_redis(f"redis://127.0.0.1:{unused_tcp_port}/0", socket_timeout=1)
    try:
        with pytest.raises(Unavailable) as raised:
            async with unavailable_on_error():
                await client.get("anything")
        assert raised.value.status_code == 503
        assert raised.value.headers["retry-after"] == "1"
    finally:
        await client.aclose()
