"""The sources and write keys the operator makes work end to end: analytics seeded with the
``ANALYTICS_SOURCES`` the operator writes to ``<name>-app-keys``, the real Segment SDK given
the write key the MobilePlatform's status shows, and each event lands in its platform's
source."""

from __future__ import annotations

import secrets

import psycopg
import pytest
from fastapi import FastAPI
from segment.analytics.client import Client
from support.uvicorn_server import ServerHandle

from mobileplane.operator.render.appkeys import SOURCES_KEY, app_keys_data, apps_status
from mobileplane.operator.render.inputs import PlatformRef
from mobileplane.operator.spec import MobilePlatformSpec
from mobileplane.services.analytics.service import SERVICE
from mobileplane.services.kit.mount import create_service_app
from mobileplane.services.kit.settings import KitSettings

pytestmark = pytest.mark.integration

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


def test_each_platforms_write_key_reaches_its_source(
    monkeypatch: pytest.MonkeyPatch, database_url: str, redis_url: str, redis_prefix: str
) -> None:
    platform = PlatformRef(name="shop", namespace="apps", uid="uid-1")
    keys = {"ios": secrets.token_hex(16), "android": secrets.token_hex(16)}
    write = {"ios": secrets.token_urlsafe(24), "android": secrets.token_urlsafe(24)}
    data = app_keys_data(platform, SPEC, keys, write)
    monkeypatch.setenv("ANALYTICS_SOURCES", data[SOURCES_KEY])
    settings = KitSettings(
        database_url=database_url, redis_url=redis_url, redis_prefix=redis_prefix, log_format="text"
    )

    def make_app() -> FastAPI:
        return create_service_app(SERVICE, settings=settings)

    server = ServerHandle(make_app)
    server.start()
    try:
        apps = apps_status(platform, SPEC, keys, server.url, write)
        for name, app in apps.items():
            errors: list[Exception] = []
            client = Client(
                app["analyticsWriteKey"],
                host=f"{server.url}/analytics",
                on_error=lambda e, batch, errors=errors: errors.append(e),
                upload_interval=0.05,
            )
            client.track(f"usr_{name}", "App Opened", {"platform": name})
            client.flush()
            client.shutdown()
            assert errors == [], errors
    finally:
        server.stop()

    with psycopg.connect(database_url.replace("+psycopg", "")) as conn:
        rows = conn.execute(
            "SELECT s.slug, e.user_id FROM analytics_events e "
            "JOIN analytics_sources s ON s.id = e.source_id ORDER BY 1"
        ).fetchall()
    assert rows == [("shop-android", "usr_android"), ("shop-ios", "usr_ios")]
