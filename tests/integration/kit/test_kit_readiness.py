"""``/readyz`` of a kit app against the real PostgreSQL and Redis."""

from __future__ import annotations

import httpx
import pytest

from mobileplane.services.kit.app import create_app
from mobileplane.services.kit.settings import KitSettings

pytestmark = pytest.mark.integration


async def readyz(settings: KitSettings) -> httpx.Response:
    app = create_app(name="itest", settings=settings, configure_logs=False)
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://itest") as client,
    ):
        return await client.get("/readyz")


async def test_ready_when_every_dependency_answers(database_url: str, redis_url: str) -> None:
    response = await readyz(KitSettings(database_url=database_url, redis_url=redis_url))
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ready"
    assert body["checks"]["postgres"]["ok"] is True
    assert body["checks"]["redis"]["ok"] is True


async def test_not_ready_names_the_failed_check(database_url: str, unused_tcp_port: int) -> None:
    dead_redis = f"redis://127.0.0.1:{unused_tcp_port}/0"
    response = await readyz(KitSettings(database_url=database_url, redis_url=dead_redis))
    assert response.status_code == 503
    body = response.json()
    assert body["failed"] == ["redis"]
    assert body["checks"]["postgres"]["ok"] is True
    assert "ConnectionError" in body["checks"]["redis"]["error"]
