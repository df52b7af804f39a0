"""The gateway's composition root: ``create_gateway_app`` (what ``mobileplane serve gateway`` runs).

Unlike the other services the gateway is not a ``ServiceDefinition`` mounted in the platform
app: it runs on its own, in front of them, with no database. The kit's ``create_app`` gives it
request ids (the client's ``x-request-id`` when safe, else a new one, echoed and forwarded),
W3C trace context, JSON access logs, error rendering, ``/healthz`` and ``/readyz``; the
startup hook below reads the route table (a bad table stops the process with the problems
listed), opens the HTTP clients and Redis, and wires :class:`~gateway.proxy.Gateway`.

``/openapi.json`` and ``/docs`` describe every service's API as routed here, merged from the
upstreams' documents (``apidocs.py``), not just the gateway's own probes.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from functools import partial
from typing import Any

import httpx
from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.openapi.utils import get_openapi
from starlette.responses import HTMLResponse, JSONResponse, Response

from mobileplane.services.gateway.apidocs_source import ApiDocs
from mobileplane.services.gateway.jwks import JwksCache
from mobileplane.services.gateway.limiter import Guard
from mobileplane.services.gateway.proxy import METHODS, Gateway
from mobileplane.services.gateway.settings import GatewaySettings
from mobileplane.services.gateway.tokencache import VerifiedTokens
from mobileplane.services.gateway.tokens import TokenPolicy
from mobileplane.services.kit.app import create_app
from mobileplane.services.kit.redis import KeySpace, create_redis, ping
from mobileplane.services.kit.settings import load_settings


def own_document(app: FastAPI) -> dict[str, Any]:
    """The gateway's own routes (its probes) as OpenAPI."""
    return get_openapi(title=app.title, version=app.version, routes=app.routes)


@functools.cache
def get_gateway_settings() -> GatewaySettings:
    """The process's gateway settings, read from the environment on first call."""
    return load_settings(GatewaySettings)


def create_gateway_app(
    settings: GatewaySettings | None = None,
    *,
    clock: Callable[[], float] = time.time,
    configure_logs: bool = True,
) -> FastAPI:
    """The gateway app; ``settings`` default to the environment's (read at startup)."""

    async def start(app: FastAPI) -> None:
        loaded = app.state.settings
        assert isinstance(loaded, GatewaySettings)
        table = loaded.route_table()
        redis = create_redis(
            loaded.redis_url,
            socket_timeout=loaded.gateway_redis_timeout_seconds,
            retry_on_timeout=False,
            # Under a burst, requests wait (up to the timeout) for a pooled connection rather
            # than failing as if Redis were down.
            blocking=True,
            max_connections=loaded.gateway_max_upstream_connections,
        )
        app.state.gateway_redis = redis
        if not (loaded.gateway_rate_limit_fail_open and loaded.gateway_revocation_fail_open):
            # Fail-closed on Redis: without it this replica cannot serve, so it is not ready.
            app.state.readiness.add("redis", partial(ping, redis))
        pool = loaded.gateway_max_upstream_connections
        client = httpx.AsyncClient(
            limits=httpx.Limits(max_connections=pool, max_keepalive_connections=pool),
            follow_redirects=False,
            trust_env=False,
        )
        app.state.gateway_clients = [client]
        jwks: JwksCache | None = None
        if table.jwks_url is not None:
            jwks_client = httpx.AsyncClient(
                timeout=loaded.gateway_jwks_timeout_seconds, trust_env=False
            )
            app.state.gateway_clients.append(jwks_client)
            jwks = JwksCache(
                table.jwks_url,
                jwks_client,
                clock=clock,
                max_age=loaded.gateway_jwks_max_age_seconds,
                min_refetch_interval=loaded.gateway_jwks_refetch_interval_seconds,
            )
        app.state.api_docs = ApiDocs(table, client, lambda: own_document(app))
        app.state.gateway = Gateway(
            table=table,
            policy=TokenPolicy(
                issuer=table.issuer,
                audience=table.audience,
                algorithms=frozenset(table.algorithms),
                leeway=loaded.gateway_jwt_leeway_seconds,
            ),
            jwks=jwks,
            guard=Guard(
                redis,
                KeySpace(loaded.redis_prefix),
                loaded.limits(),
                rate_limit_fail_open=loaded.gateway_rate_limit_fail_open,
                revocation_fail_open=loaded.gateway_revocation_fail_open,
            ),
            client=client,
            breaker_config=loaded.breaker(),
            buffer_limit=loaded.gateway_retry_buffer_bytes,
            clock=clock,
            verified=VerifiedTokens(
                max_entries=loaded.gateway_token_cache_entries,
                ttl=loaded.gateway_token_cache_seconds,
                leeway=loaded.gateway_jwt_leeway_seconds,
            )
            if loaded.gateway_token_cache_entries
            else None,
        )

    async def stop(app: FastAPI) -> None:
        for client in getattr(app.state, "gateway_clients", []):
            await client.aclose()
        redis = getattr(app.state, "gateway_redis", None)
        if redis is not None:
            await redis.aclose()

    app = create_app(
        name="gateway",
        settings=settings if settings is not None else get_gateway_settings,
        use_database=False,
        use_redis=False,
        on_startup=(start,),
        on_shutdown=(stop,),
        configure_logs=configure_logs,
        api_docs=False,
    )

    async def openapi(request: Request) -> JSONResponse:
        docs = request.app.state.api_docs
        assert isinstance(docs, ApiDocs)
        return JSONResponse(await docs.document())

    async def swagger(request: Request) -> HTMLResponse:
        return get_swagger_ui_html(openapi_url="/openapi.json", title="mobileplane API")

    app.add_api_route("/openapi.json", openapi, methods=["GET"], include_in_schema=False)
    app.add_api_route("/docs", swagger, methods=["GET"], include_in_schema=False)

    async def proxy(request: Request) -> Response:
        gateway = request.app.state.gateway
        assert isinstance(gateway, Gateway)
        return await gateway.handle(request)

    app.add_api_route(
        "/{path:path}", proxy, methods=METHODS, include_in_schema=False, name="gateway"
    )
    return app
