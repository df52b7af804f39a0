"""A telemetry service on the test's own database, Redis prefix and artifacts bucket, with
projects seeded through TELEMETRY_PROJECTS (fixed ids and DSN keys)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from support.uvicorn_server import ServerHandle

from mobileplane.services.kit.identity import Identity, identity_headers
from mobileplane.services.kit.mount import create_service_app
from mobileplane.services.kit.settings import KitSettings
from mobileplane.services.telemetry.service import SERVICE

ANDROID_KEY = "a1" * 16
IOS_KEY = "b2" * 16
PY_KEY = "c3" * 16
LIMITED_KEY = "d4" * 16
PROJECTS = [
    {"id": 1, "slug": "shop-python", "platform": "python", "keys": [{"public_key": PY_KEY}]},
    {"id": 2, "slug": "shop-android", "platform": "android", "keys": [{"public_key": ANDROID_KEY}]},
    {"id": 3, "slug": "shop-ios", "platform": "ios", "keys": [{"public_key": IOS_KEY}]},
    {
        "id": 4,
        "slug": "limited",
        "platform": "python",
        "keys": [{"public_key": LIMITED_KEY, "rate_limit_per_minute": 1000}],
        "category_limits": {"error": 3},
    },
]
ADMIN = identity_headers(Identity("ops", frozenset({"telemetry:admin"})))
READER = identity_headers(Identity("release-controller", frozenset({"telemetry:read"})))


def auth(key: str) -> dict[str, str]:
    return {"x-sentry-auth": f"Sentry sentry_key={key}, sentry_version=7, sentry_client=test/1"}


@pytest.fixture
def telemetry_env(
    monkeypatch: pytest.MonkeyPatch, s3_config: dict[str, str], s3_bucket: str
) -> dict[str, str]:
    env = {
        "TELEMETRY_PROJECTS": json.dumps(PROJECTS),
        "TELEMETRY_ARTIFACTS_BUCKET": s3_bucket,
        # Tests disable keys and expect the next request to see it at once.
        "TELEMETRY_KEY_CACHE_SECONDS": "0",
        "TELEMETRY_MAX_BODY_BYTES": "200000",
        "TELEMETRY_MAX_ENVELOPE_BYTES": "400000",
        "TELEMETRY_MAX_ITEM_BYTES": "300000",
        "TELEMETRY_MAX_EVENT_BYTES": "100000",
        "AWS_ENDPOINT_URL": s3_config["endpoint_url"],
        "AWS_ACCESS_KEY_ID": s3_config["access_key_id"],
        "AWS_SECRET_ACCESS_KEY": s3_config["secret_access_key"],
        "AWS_REGION": s3_config["region"],
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return env


def _settings(database_url: str, redis_url: str, redis_prefix: str) -> KitSettings:
    return KitSettings(
        database_url=database_url, redis_url=redis_url, redis_prefix=redis_prefix, log_format="text"
    )


@pytest.fixture
async def telemetry_app(
    telemetry_env: dict[str, str], database_url: str, redis_url: str, redis_prefix: str
) -> AsyncIterator[FastAPI]:
    app = create_service_app(SERVICE, settings=_settings(database_url, redis_url, redis_prefix))
    async with app.router.lifespan_context(app):
        yield app


@pytest.fixture
async def client(telemetry_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=telemetry_app, raise_app_exceptions=False),
        base_url="http://telemetry",
    ) as c:
        yield c


@pytest.fixture
def telemetry_url(
    telemetry_env: dict[str, str], database_url: str, redis_url: str, redis_prefix: str
) -> Iterator[str]:
    """The telemetry service under a real uvicorn (for the Sentry and OpenTelemetry SDKs)."""

    def make_app() -> FastAPI:
        return create_service_app(
            SERVICE, settings=_settings(database_url, redis_url, redis_prefix)
        )

    handle = ServerHandle(make_app)
    handle.start()
    yield handle.url
    handle.stop()


def dsn(base_url: str, key: str, project_id: int) -> str:
    scheme, _, host = base_url.partition("://")
    return f"{scheme}://{key}@{host}/telemetry/{project_id}"


Query = Callable[..., Any]


@pytest.fixture
def keys() -> dict[str, str]:
    """DSN public keys of the seeded projects, by slug."""
    return {p["slug"]: p["keys"][0]["public_key"] for p in PROJECTS}  # type: ignore[index]


@pytest.fixture
def admin_headers() -> dict[str, str]:
    return dict(ADMIN)


@pytest.fixture
def reader_headers() -> dict[str, str]:
    return dict(READER)


@pytest.fixture
def make_dsn() -> Callable[[str, str, int], str]:
    return dsn


@pytest.fixture
def sentry_auth() -> Callable[[str], dict[str, str]]:
    return auth
