"""An analytics service on the test's own database, with sources seeded through
ANALYTICS_SOURCES (fixed write keys), in-process (ASGI) or under a real uvicorn (for the
Segment SDK); and a psycopg helper to read what was stored."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import psycopg
import pytest
from fastapi import FastAPI
from psycopg.rows import dict_row
from support.analytics import SOURCES, Query, kit_settings
from support.uvicorn_server import ServerHandle

from mobileplane.services.analytics.service import SERVICE
from mobileplane.services.kit.mount import create_service_app


@pytest.fixture
def analytics_env(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    env = {
        "ANALYTICS_SOURCES": json.dumps(SOURCES),
        # Tests revoke keys and expect the next request to see it at once.
        "ANALYTICS_KEY_CACHE_SECONDS": "0",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return env


@pytest.fixture
async def analytics_app(
    analytics_env: dict[str, str], database_url: str, redis_url: str, redis_prefix: str
) -> AsyncIterator[FastAPI]:
    app = create_service_app(SERVICE, settings=kit_settings(database_url, redis_url, redis_prefix))
    async with app.router.lifespan_context(app):
        yield app


@pytest.fixture
async def client(analytics_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=analytics_app, raise_app_exceptions=False),
        base_url="http://analytics",
    ) as c:
        yield c


@pytest.fixture
def make_server(
    analytics_env: dict[str, str], database_url: str, redis_url: str, redis_prefix: str
) -> Iterator[Callable[..., ServerHandle]]:
    """Start the analytics service under uvicorn; ``wrap`` may add ASGI middleware."""
    handles: list[ServerHandle] = []

    def start(wrap: Callable[[FastAPI], None] | None = None) -> ServerHandle:
        def make_app() -> FastAPI:
            app = create_service_app(
                SERVICE, settings=kit_settings(database_url, redis_url, redis_prefix)
            )
            if wrap is not None:
                wrap(app)
            return app

        handle = ServerHandle(make_app)
        handle.start()
        handles.append(handle)
        return handle

    yield start
    for handle in handles:
        handle.stop()


@pytest.fixture
def analytics_url(make_server: Callable[..., ServerHandle]) -> str:
    return make_server().url


@pytest.fixture
def query(database_url: str) -> Query:
    """Run SQL on the test's database (plain psycopg): rows as dicts."""
    url = database_url.replace("postgresql+psycopg://", "postgresql://", 1)

    def run(sql: str, *params: Any) -> list[dict[str, Any]]:
        with psycopg.connect(url, row_factory=dict_row) as conn:
            return list(conn.execute(sql, params).fetchall())  # type: ignore[arg-type]

    return run
