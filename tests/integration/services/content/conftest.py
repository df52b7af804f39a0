"""A content service app on the test's own database, Redis prefix and media bucket."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator

import httpx
import pytest
from fastapi import FastAPI
from support.uvicorn_server import ServerHandle

from mobileplane.services.content.service import SERVICE
from mobileplane.services.kit.identity import Identity, identity_headers
from mobileplane.services.kit.mount import create_service_app
from mobileplane.services.kit.settings import KitSettings


@pytest.fixture
async def content_app(
    monkeypatch: pytest.MonkeyPatch,
    database_url: str,
    redis_url: str,
    redis_prefix: str,
    s3_config: dict[str, str],
    s3_bucket: str,
) -> AsyncIterator[FastAPI]:
    env = {
        "CONTENT_MEDIA_BUCKET": s3_bucket,
        "CONTENT_MEDIA_MAX_BYTES": "100000",
        "AWS_ENDPOINT_URL": s3_config["endpoint_url"],
        "AWS_ACCESS_KEY_ID": s3_config["access_key_id"],
        "AWS_SECRET_ACCESS_KEY": s3_config["secret_access_key"],
        "AWS_REGION": s3_config["region"],
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    settings = KitSettings(
        database_url=database_url, redis_url=redis_url, redis_prefix=redis_prefix, log_format="text"
    )
    app = create_service_app(SERVICE, settings=settings)
    async with app.router.lifespan_context(app):
        yield app


Client = Callable[..., httpx.AsyncClient]


@pytest.fixture
async def as_user(content_app: FastAPI) -> AsyncIterator[Client]:
    opened: list[httpx.AsyncClient] = []

    def make(subject: str, scopes: str = "content", **headers: str) -> httpx.AsyncClient:
        client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=content_app, raise_app_exceptions=False),
            base_url="http://content",
            headers={**identity_headers(Identity(subject, frozenset(scopes.split()))), **headers},
        )
        opened.append(client)
        return client

    yield make
    for client in opened:
        await client.aclose()


@pytest.fixture
def content_url(
    monkeypatch: pytest.MonkeyPatch,
    database_url: str,
    redis_url: str,
    redis_prefix: str,
    s3_config: dict[str, str],
    s3_bucket: str,
) -> Iterator[str]:
    """The content service under a real uvicorn (blocking clients such as the SDK)."""
    for key, value in {
        "CONTENT_MEDIA_BUCKET": s3_bucket,
        "AWS_ENDPOINT_URL": s3_config["endpoint_url"],
        "AWS_ACCESS_KEY_ID": s3_config["access_key_id"],
        "AWS_SECRET_ACCESS_KEY": s3_config["secret_access_key"],
        "AWS_REGION": s3_config["region"],
    }.items():
        monkeypatch.setenv(key, value)

    def make_app() -> FastAPI:
        settings = KitSettings(
            database_url=database_url,
            redis_url=redis_url,
            redis_prefix=redis_prefix,
            log_format="text",
        )
        return create_service_app(SERVICE, settings=settings)

    handle = ServerHandle(make_app)
    handle.start()
    yield handle.url
    handle.stop()
