"""An app-config service on the test's own database, called in process."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from mobileplane.services.appconfig.service import SERVICE
from mobileplane.services.kit.identity import Identity, identity_headers
from mobileplane.services.kit.mount import create_service_app
from mobileplane.services.kit.settings import KitSettings

WRITER = identity_headers(Identity("release-controller", frozenset({"appconfig:write"})))


@pytest.fixture
async def appconfig_app(
    monkeypatch: pytest.MonkeyPatch, database_url: str, redis_url: str, redis_prefix: str
) -> AsyncIterator[FastAPI]:
    monkeypatch.setenv("APPCONFIG_MAX_AGE_SECONDS", "15")
    settings = KitSettings(
        database_url=database_url, redis_url=redis_url, redis_prefix=redis_prefix, log_format="text"
    )
    app = create_service_app(SERVICE, settings=settings)
    async with app.router.lifespan_context(app):
        yield app


@pytest.fixture
async def appconfig(appconfig_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=appconfig_app, raise_app_exceptions=False),
        base_url="http://appconfig",
    ) as c:
        yield c


@pytest.fixture
def writer() -> dict[str, str]:
    return dict(WRITER)
