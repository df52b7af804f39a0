"""``create_app``: the composition root shared by every service.

A service is a few lines::

    app = create_app(name="profiles", routers=[profiles_router()])

The factory wires what every service has — error rendering, request ids and access logs,
tracing, ``/healthz`` and ``/readyz`` — and a lifespan that, at startup, loads the settings
(lazily: importing the service module reads no environment), configures logging and tracing,
opens the database engine and the Redis client, and registers their readiness checks; at
shutdown it closes them in reverse order. Endpoints reach them through the kit's dependencies
(``DbSession``, ``get_redis``, ``get_keyspace``), which read ``app.state``.
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from functools import partial
from typing import Any

from fastapi import APIRouter, FastAPI, Request

from mobileplane import __version__
from mobileplane.services.kit.db import Database
from mobileplane.services.kit.errors import install_error_handlers
from mobileplane.services.kit.health import Check, Readiness, health_router
from mobileplane.services.kit.logging import RequestContextMiddleware, configure_logging
from mobileplane.services.kit.redis import KeySpace, create_redis, ping
from mobileplane.services.kit.settings import KitSettings, get_settings
from mobileplane.services.kit.telemetry import TracingMiddleware, create_tracer_provider

Hook = Callable[[FastAPI], Awaitable[None]]

#: FastAPI builds an app's OpenAPI document lazily, with pydantic schema building that is not
#: thread-safe: two apps of one process (the tests' services, each served from its own thread)
#: answering their first ``/openapi.json`` at once failed now and then with a 500. One lock per
#: process; the document is built once per app and cached by FastAPI, so nothing waits after.
_OPENAPI_LOCK = threading.Lock()


def create_app(
    *,
    name: str,
    routers: Sequence[APIRouter] = (),
    settings: KitSettings | Callable[[], KitSettings] = get_settings,
    version: str = __version__,
    use_database: bool = True,
    use_redis: bool = True,
    checks: Mapping[str, Check] | None = None,
    on_startup: Sequence[Hook] = (),
    on_shutdown: Sequence[Hook] = (),
    configure_logs: bool = True,
    api_docs: bool = True,
) -> FastAPI:
    """A FastAPI app for service ``name`` with the kit's wiring and ``routers`` included.

    ``settings`` is an instance or a loader called at startup. ``checks`` are extra readiness
    checks next to ``postgres`` and ``redis``. ``on_startup`` hooks run after the kit's
    resources exist; ``on_shutdown`` hooks run before they are closed. ``api_docs=False``
    leaves ``/openapi.json`` and ``/docs`` to the caller (the gateway serves the merged API).
    """

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        loaded = settings() if callable(settings) else settings
        if configure_logs:
            configure_logging(loaded.log_level, service=name, fmt=loaded.log_format)
        async with AsyncExitStack() as stack:
            provider = create_tracer_provider(
                name,
                otlp_endpoint=loaded.otel_exporter_otlp_endpoint,
                service_version=version,
                environment=loaded.environment,
            )
            stack.callback(provider.shutdown)
            readiness = Readiness()
            app.state.settings = loaded
            app.state.tracer_provider = provider
            app.state.readiness = readiness
            app.state.keyspace = KeySpace(loaded.redis_prefix)
            if use_database:
                database = Database.from_url(loaded.database_url, application_name=name)
                stack.push_async_callback(database.dispose)
                app.state.database = database
                readiness.add("postgres", database.ping)
            if use_redis:
                client = create_redis(loaded.redis_url)
                stack.push_async_callback(client.aclose)
                app.state.redis = client
                readiness.add("redis", partial(ping, client))
            for check_name, check in (checks or {}).items():
                readiness.add(check_name, check)
            for hook in on_startup:
                await hook(app)
            for hook in reversed(on_shutdown):
                stack.push_async_callback(hook, app)
            yield

    docs_urls: dict[str, Any] = {} if api_docs else {"openapi_url": None}
    app = FastAPI(title=f"mobileplane {name}", version=version, lifespan=lifespan, **docs_urls)
    install_error_handlers(app)
    # Added last = outermost: the span wraps the request context, so access logs carry trace ids.
    app.add_middleware(RequestContextMiddleware, service=name)
    app.add_middleware(TracingMiddleware)
    app.include_router(health_router())
    for router in routers:
        app.include_router(router)
    _serialize_openapi(app)
    return app


def _serialize_openapi(app: FastAPI) -> None:
    """Build ``app``'s OpenAPI document under the process-wide lock (see ``_OPENAPI_LOCK``)."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        with _OPENAPI_LOCK:
            return build()

    app.openapi = openapi  # type: ignore[method-assign]


def get_settings_from(request: Request) -> KitSettings:
    """FastAPI dependency: the settings the app was started with."""
    loaded = getattr(request.app.state, "settings", None)
    if not isinstance(loaded, KitSettings):
        raise RuntimeError("no settings on app.state: create the app with kit.app.create_app")
    return loaded


def get_keyspace(request: Request) -> KeySpace:
    """FastAPI dependency: the deployment's Redis key namespace (``REDIS_PREFIX``)."""
    keyspace = getattr(request.app.state, "keyspace", None)
    if not isinstance(keyspace, KeySpace):
        raise RuntimeError("no KeySpace on app.state: create the app with kit.app.create_app")
    return keyspace
