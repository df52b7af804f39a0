"""A profiles service app on the test's own database, Redis prefix and avatar bucket."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence

import httpx
import pytest
from fastapi import FastAPI

from mobileplane.services.kit.identity import Identity, identity_headers
from mobileplane.services.kit.mount import ServiceDefinition, create_service_app
from mobileplane.services.kit.settings import KitSettings
from mobileplane.services.platform import SERVICES
from mobileplane.services.profiles.service import SERVICE

Client = Callable[..., httpx.AsyncClient]
MakeApp = Callable[..., FastAPI]


@pytest.fixture
def profiles_env(
    monkeypatch: pytest.MonkeyPatch, s3_config: dict[str, str], s3_bucket: str
) -> dict[str, str]:
    env = {
        "PROFILES_AVATAR_BUCKET": s3_bucket,
        "PROFILES_AVATAR_MAX_BYTES": "100000",
        # Tests wait for events; the wake-up after a commit is what publishes them, the poll
        # only backs it up. A long poll proves the wake-up works.
        "PROFILES_RELAY_POLL_SECONDS": "3600",
        "AWS_ENDPOINT_URL": s3_config["endpoint_url"],
        "AWS_ACCESS_KEY_ID": s3_config["access_key_id"],
        "AWS_SECRET_ACCESS_KEY": s3_config["secret_access_key"],
        "AWS_REGION": s3_config["region"],
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return env


@pytest.fixture
def kit_settings(database_url: str, redis_url: str, redis_prefix: str) -> KitSettings:
    return KitSettings(
        database_url=database_url, redis_url=redis_url, redis_prefix=redis_prefix, log_format="text"
    )


@pytest.fixture
def make_app(kit_settings: KitSettings, profiles_env: dict[str, str]) -> MakeApp:
    def make(all_services: Sequence[ServiceDefinition] = SERVICES) -> FastAPI:
        return create_service_app(SERVICE, settings=kit_settings, all_services=all_services)

    return make


@pytest.fixture
async def profiles_app(make_app: MakeApp) -> AsyncIterator[FastAPI]:
    app = make_app()
    async with app.router.lifespan_context(app):
        yield app


OpenClient = Callable[..., httpx.AsyncClient]


@pytest.fixture
async def open_client() -> AsyncIterator[OpenClient]:
    """``open_client(app, subject, scopes="profiles")``: a client of ``app`` as that user."""
    opened: list[httpx.AsyncClient] = []

    def make(app: FastAPI, subject: str, scopes: str = "profiles") -> httpx.AsyncClient:
        client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app, raise_app_exceptions=False),
            base_url="http://profiles",
            headers=identity_headers(Identity(subject, frozenset(scopes.split()))),
        )
        opened.append(client)
        return client

    yield make
    for client in opened:
        await client.aclose()


@pytest.fixture
def as_user(profiles_app: FastAPI, open_client: OpenClient) -> Client:
    """``as_user(subject, scopes="profiles")``: a client of the profiles app as that user."""

    def make(subject: str, scopes: str = "profiles") -> httpx.AsyncClient:
        return open_client(profiles_app, subject, scopes)

    return make
