"""The projects and DSNs the operator makes work end to end: telemetry seeded with the
``TELEMETRY_PROJECTS`` the operator writes to ``<name>-app-keys``, the real sentry-sdk given
the DSN the MobilePlatform's status shows, and each crash lands in that platform's project —
the slug a MobileRelease reads release health by."""

from __future__ import annotations

import secrets

import httpx
import pytest
import sentry_sdk
from fastapi import FastAPI
from support.uvicorn_server import ServerHandle

from mobileplane.operator.render.appkeys import PROJECTS_KEY, app_keys_data, apps_status
from mobileplane.operator.render.inputs import PlatformRef
from mobileplane.operator.spec import MobilePlatformSpec
from mobileplane.services.kit.identity import Identity, identity_headers
from mobileplane.services.kit.mount import create_service_app
from mobileplane.services.kit.settings import KitSettings
from mobileplane.services.telemetry.service import SERVICE

pytestmark = pytest.mark.integration

READER = identity_headers(Identity("release-controller", frozenset({"telemetry:read"})))

SPEC = MobilePlatformSpec.model_validate(
    {
        "app": {
            "displayName": "Shop",
            "ios": {"bundleIds": ["com.example.shop"]},
            "android": {"packageNames": ["com.example.shop"]},
            "redirectURIs": ["com.example.shop:/oauth2redirect"],
        }
    }
)


def _send_crash(dsn: str, release: str, message: str) -> None:
    sentry_sdk.init(
        dsn=dsn,
        release=release,
        default_integrations=False,
        auto_enabling_integrations=False,
        auto_session_tracking=False,
    )
    try:
        sentry_sdk.capture_message(message, level="fatal")
        sentry_sdk.flush(timeout=10)
    finally:
        sentry_sdk.get_client().close(timeout=10)
        sentry_sdk.get_global_scope().set_client(None)


def test_each_platforms_dsn_reaches_its_project(
    monkeypatch: pytest.MonkeyPatch, database_url: str, redis_url: str, redis_prefix: str
) -> None:
    platform = PlatformRef(name="shop", namespace="apps", uid="uid-1")
    keys = {"ios": secrets.token_hex(16), "android": secrets.token_hex(16)}
    monkeypatch.setenv("TELEMETRY_PROJECTS", app_keys_data(platform, SPEC, keys)[PROJECTS_KEY])
    settings = KitSettings(
        database_url=database_url, redis_url=redis_url, redis_prefix=redis_prefix, log_format="text"
    )

    def make_app() -> FastAPI:
        return create_service_app(SERVICE, settings=settings)

    server = ServerHandle(make_app)
    server.start()
    try:
        # The gateway URL in the status is where the SDK posts; here the service itself.
        apps = apps_status(platform, SPEC, keys, server.url)
        assert set(apps) == {"ios", "android"}
        for name, app in apps.items():
            _send_crash(app["sentryDSN"], f"com.example.shop@1.0.0+{name}", f"crash on {name}")

        for name, app in apps.items():
            answer = httpx.get(
                f"{server.url}/telemetry/projects/{app['telemetryProject']}/issues",
                headers=READER,
            )
            assert answer.status_code == 200, answer.text
            titles = [issue["title"] for issue in answer.json()["issues"]]
            assert titles == [f"crash on {name}"], (name, titles)
    finally:
        server.stop()
