"""The auth service on the test's own database and Redis prefix, under a real uvicorn."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from fastapi import FastAPI
from support.oidc import clients_json, keyset_json
from support.uvicorn_server import ServerHandle

from mobileplane.services.auth.service import SERVICE
from mobileplane.services.kit.mount import create_service_app
from mobileplane.services.kit.settings import KitSettings

AuthFactory = Callable[..., ServerHandle]


@pytest.fixture
def auth_server(
    monkeypatch: pytest.MonkeyPatch, database_url: str, redis_url: str, redis_prefix: str
) -> Iterator[AuthFactory]:
    """Start the auth service with ``AUTH_*`` overrides; the issuer is its own URL."""
    handles: list[ServerHandle] = []

    def start(**env: str) -> ServerHandle:
        def make() -> FastAPI:
            settings = KitSettings(
                database_url=database_url,
                redis_url=redis_url,
                redis_prefix=redis_prefix,
                log_format="text",
            )
            return create_service_app(SERVICE, settings=settings)

        handle = ServerHandle(make)
        defaults = {
            "AUTH_ISSUER": handle.url,
            "AUTH_CLIENTS": clients_json(),
            "AUTH_SIGNING_KEYS": keyset_json(),
            "AUTH_LOGIN_ATTEMPTS_PER_IP_PER_MINUTE": "1000",
        }
        for key, value in {**defaults, **env}.items():
            monkeypatch.setenv(key, value)
        handle.start()
        handles.append(handle)
        return handle

    yield start
    for handle in handles:
        handle.stop()
