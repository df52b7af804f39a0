"""Running the release controller and its real neighbours in tests.

- the controller in-process (kopf's KopfRunner), as the chart's ServiceAccount, watching
  one namespace, with a fast tick and short requeues;
- the telemetry and app-config services under real uvicorn on the test's database;
- the fake stores (``support.stores``) under real uvicorn;
- sessions sent with the real sentry-sdk (``send_sessions``).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import sentry_sdk
from fastapi import FastAPI
from kubernetes import client as k8s
from sentry_sdk.utils import event_from_exception

from mobileplane.services.kit.mount import ServiceDefinition, create_service_app
from mobileplane.services.kit.settings import KitSettings
from support.uvicorn_server import ServerHandle

GROUP, VERSION, PLURAL = "mobileplane.io", "v1alpha1", "mobilereleases"
ANDROID_KEY = "e5" * 16
IOS_KEY = "f6" * 16
PROJECTS = [
    {"id": 7, "slug": "shop-android", "platform": "android", "keys": [{"public_key": ANDROID_KEY}]},
    {"id": 8, "slug": "shop-ios", "platform": "ios", "keys": [{"public_key": IOS_KEY}]},
]


def service_server(
    service: ServiceDefinition, database_url: str, redis_url: str, redis_prefix: str
) -> ServerHandle:
    def make_app() -> FastAPI:
        settings = KitSettings(
            database_url=database_url,
            redis_url=redis_url,
            redis_prefix=redis_prefix,
            log_format="text",
        )
        return create_service_app(service, settings=settings)

    handle = ServerHandle(make_app)
    handle.start()
    return handle


def telemetry_env() -> dict[str, str]:
    return {"TELEMETRY_PROJECTS": json.dumps(PROJECTS), "TELEMETRY_KEY_CACHE_SECONDS": "0"}


def dsn(base_url: str) -> str:
    scheme, _, host = base_url.partition("://")
    return f"{scheme}://{ANDROID_KEY}@{host}/telemetry/7"


def _crash(user: str) -> None:
    try:
        raise KeyError(user)
    except KeyError:
        client = sentry_sdk.get_client()
        event, hint = event_from_exception(
            sys.exc_info(), client.options, mechanism={"type": "test", "handled": False}
        )
        sentry_sdk.capture_event(event, hint=hint)


def send_sessions(telemetry_url: str, release: str, healthy: int, crashed: int, users: int) -> None:
    """``healthy + crashed`` application sessions of ``release`` spread over ``users`` users,
    sent by the real sentry-sdk (crashes are unhandled exceptions), flushed before returning."""
    sentry_sdk.init(
        dsn=dsn(telemetry_url),
        release=release,
        environment="production",
        default_integrations=False,
        auto_enabling_integrations=False,
        auto_session_tracking=False,
        traces_sample_rate=None,
    )
    try:
        for i in range(healthy + crashed):
            scope = sentry_sdk.get_isolation_scope()
            sentry_sdk.set_user({"id": f"user-{i % users}"})
            scope.start_session(session_mode="application")
            if i < crashed:
                _crash(f"user-{i % users}")
            scope.end_session()
        sentry_sdk.flush(timeout=20)
    finally:
        sentry_sdk.get_client().close(timeout=20)
        sentry_sdk.get_global_scope().set_client(None)
        sentry_sdk.get_isolation_scope().set_user(None)


def get_release(kube_api: k8s.ApiClient, namespace: str, name: str) -> dict[str, Any]:
    obj: dict[str, Any] = k8s.CustomObjectsApi(kube_api).get_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, name
    )
    return obj


def create_release(kube_api: k8s.ApiClient, namespace: str, body: dict[str, Any]) -> None:
    k8s.CustomObjectsApi(kube_api).create_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, body
    )


def events_of(kube_api: k8s.ApiClient, namespace: str, name: str) -> list[tuple[str, str]]:
    """(reason, message) of the Events about release ``name``, oldest first."""
    items = k8s.CoreV1Api(kube_api).list_namespaced_event(namespace).items
    mine = [e for e in items if e.involved_object.name == name]
    mine.sort(key=lambda e: (e.first_timestamp or e.event_time or 0, e.metadata.name))
    return [(e.reason, e.message) for e in mine]


@contextmanager
def serving(handle: ServerHandle) -> Iterator[ServerHandle]:
    try:
        yield handle
    finally:
        handle.stop()
