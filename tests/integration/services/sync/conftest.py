"""A sync service app on the test's own database and Redis prefix, and a client per user."""

from __future__ import annotations

import json
import secrets
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from support.uvicorn_server import ServerHandle

from mobileplane.services.kit.identity import Identity, identity_headers
from mobileplane.services.kit.mount import create_service_app
from mobileplane.services.kit.settings import KitSettings
from mobileplane.services.sync.service import SERVICE

SCHEMA: dict[str, Any] = {
    "version": 2,
    "minClientVersion": 1,
    "tables": {
        "notes": {
            "bucket": "user",
            "columns": {
                "title": {"type": "text"},
                "done": {"type": "boolean"},
                "views": {"type": "integer", "resolver": "counter"},
                "tags": {"type": "array", "resolver": "set"},
                "due": {"type": "timestamp", "since": 2},
            },
        },
        "categories": {"bucket": "global", "columns": {"name": {"type": "text"}}},
    },
}


@pytest.fixture
def sync_env(
    monkeypatch: pytest.MonkeyPatch, database_url: str, redis_url: str, redis_prefix: str
) -> dict[str, str]:
    env = {
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "REDIS_PREFIX": redis_prefix,
        "SYNC_SCHEMA": json.dumps(SCHEMA),
        "SYNC_MAX_BATCH": "50",
        "SYNC_MAX_ROWS_PER_USER": "20",
        # Generated per test, as the operator does per platform.
        "SYNC_CHECKPOINT_KEYS": secrets.token_urlsafe(32),
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return env


@pytest.fixture
async def sync_app(sync_env: dict[str, str]) -> AsyncIterator[FastAPI]:
    settings = KitSettings(
        database_url=sync_env["DATABASE_URL"],
        redis_url=sync_env["REDIS_URL"],
        redis_prefix=sync_env["REDIS_PREFIX"],
        log_format="text",
    )
    app = create_service_app(SERVICE, settings=settings)
    async with app.router.lifespan_context(app):
        yield app


UserClient = Callable[..., httpx.AsyncClient]


@pytest.fixture
async def as_user(sync_app: FastAPI) -> AsyncIterator[UserClient]:
    opened: list[httpx.AsyncClient] = []

    def make(subject: str, scopes: str = "sync") -> httpx.AsyncClient:
        identity = Identity(subject=subject, scopes=frozenset(scopes.split()))
        client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=sync_app, raise_app_exceptions=False),
            base_url="http://sync",
            headers=identity_headers(identity),
        )
        opened.append(client)
        return client

    yield make
    for client in opened:
        await client.aclose()


@pytest.fixture
def sync_server(sync_env: dict[str, str]) -> Iterator[ServerHandle]:
    """The sync service under a real uvicorn: streams and the SDK need a real server."""

    def make_app() -> FastAPI:
        settings = KitSettings(
            database_url=sync_env["DATABASE_URL"],
            redis_url=sync_env["REDIS_URL"],
            redis_prefix=sync_env["REDIS_PREFIX"],
            log_format="text",
        )
        return create_service_app(SERVICE, settings=settings)

    handle = ServerHandle(make_app)
    handle.start()
    yield handle
    handle.stop()


@pytest.fixture
def sync_url(sync_server: ServerHandle) -> str:
    return sync_server.url
