"""A gateway in front of real uvicorn upstreams and a JWKS server, on the test's own Redis prefix.

``upstream`` echoes what it received (so tests see exactly what the gateway forwarded) and has
a few misbehaving paths; ``jwks`` serves a JWK Set the test can change (key rotation) and
counts fetches; ``gateway`` builds gateway apps on a route table pointing at both.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import httpx
import jwt
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from support.uvicorn_server import ServerHandle

from mobileplane.operator.keys import SigningKey, generate
from mobileplane.services.gateway.service import create_gateway_app
from mobileplane.services.gateway.settings import GatewaySettings

ISSUER = "https://api.example.test"


class Jwks:
    def __init__(self) -> None:
        self.keys: list[dict[str, Any]] = []
        self.fetches = 0


def jwks_app(state: Jwks) -> FastAPI:
    app = FastAPI()

    @app.get("/.well-known/jwks.json")
    async def jwks() -> dict[str, Any]:
        state.fetches += 1
        return {"keys": state.keys}

    return app


def upstream_app() -> FastAPI:
    app = FastAPI()
    failures: dict[str, int] = {}

    @app.api_route("/{path:path}", methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"])
    async def echo(request: Request, path: str) -> Response:
        if path.startswith("sync/status/"):
            return JSONResponse({"status": "forced"}, status_code=int(path.rsplit("/", 1)[1]))
        if path.startswith("sync/flaky/"):
            # Fails with 503 the first N times per id: /sync/flaky/<id>/<N>.
            _, _, ident, times = path.split("/")
            failures[ident] = failures.get(ident, 0) + 1
            if failures[ident] <= int(times):
                return JSONResponse({"status": "flaky"}, status_code=503)
        if path == "sync/hang":
            await asyncio.Event().wait()  # until the gateway gives up and disconnects
        if path.startswith("sync/download/"):
            size = int(path.rsplit("/", 1)[1])

            async def chunks() -> AsyncIterator[bytes]:
                for start in range(0, size, 65536):
                    yield bytes([start // 65536 % 256]) * min(65536, size - start)

            return StreamingResponse(chunks(), media_type="application/octet-stream")
        digest = hashlib.sha256()
        length = 0
        async for chunk in request.stream():
            digest.update(chunk)
            length += len(chunk)
        return JSONResponse(
            {
                "method": request.method,
                "path": request.url.path,
                "raw_path": request.scope["raw_path"].decode(),
                "query": request.url.query,
                "headers": [[k.decode(), v.decode()] for k, v in request.headers.raw],
                "body_bytes": length,
                "body_sha256": digest.hexdigest(),
                "attempt": failures.get(path.split("/")[2], 0) if path.count("/") > 2 else 0,
            },
            headers={"x-upstream": "yes", "connection": "x-drop-me", "x-drop-me": "1"},
        )

    return app


@pytest.fixture
def jwks_state() -> Jwks:
    return Jwks()


@pytest.fixture
def jwks_server(jwks_state: Jwks) -> Iterator[ServerHandle]:
    handle = ServerHandle(lambda: jwks_app(jwks_state))
    handle.start()
    yield handle
    handle.stop()


@pytest.fixture
def upstream() -> Iterator[ServerHandle]:
    handle = ServerHandle(upstream_app)
    handle.start()
    yield handle
    handle.stop()


@pytest.fixture
def es_key(jwks_state: Jwks) -> SigningKey:
    key = generate("ES256", datetime.now(UTC))
    jwks_state.keys.append(key.public_jwk)
    return key


def sign(key: SigningKey, **overrides: Any) -> str:
    """An access token as the auth service issues it; ``None`` overrides drop a claim."""
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": ISSUER,
        "aud": ISSUER,
        "sub": "alice",
        "exp": now + 300,
        "iat": now,
        "nbf": now,
        "jti": uuid.uuid4().hex,
        "scope": "sync content",
        "sid": "session-1",
        "client_id": "app",
    }
    header = {"kid": key.kid, "typ": "at+jwt"}
    header.update(overrides.pop("header", {}))
    claims.update(overrides)
    claims = {k: v for k, v in claims.items() if v is not None}
    return jwt.encode(claims, key.private_pem, algorithm=key.algorithm, headers=header)


def route_table(upstream: str, jwks_url: str, **route_overrides: Any) -> dict[str, Any]:
    retries = {
        "max": 2,
        "methods": ["GET", "HEAD", "PUT", "DELETE"],
        "on": ["connect-failure", "502", "503", "504"],
    }

    def route(service: str, prefix: str, auth: dict[str, Any], **extra: Any) -> dict[str, Any]:
        base = {
            "service": service,
            "pathPrefix": prefix,
            "upstream": upstream,
            "auth": auth,
            "timeoutSeconds": 5,
            "retries": retries,
            "maxBodyBytes": 64 * 1024,
        }
        base.update(extra)
        base.update(route_overrides.get(service, {}))
        return base

    return {
        "version": 1,
        "issuer": ISSUER,
        "audience": ISSUER,
        "algorithms": ["ES256", "RS256"],
        "jwksURL": jwks_url,
        "routes": [
            route("auth", "/auth/", {"mode": "public"}, maxBodyBytes=1024),
            route("sync", "/sync/", {"mode": "jwt", "scopes": ["sync"]}),
            route("profiles", "/profiles/", {"mode": "jwt", "scopes": ["profiles"]}),
        ],
    }


class FakeClock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


GatewayFactory = Callable[..., Any]


@pytest.fixture
def gateway(
    upstream: ServerHandle,
    jwks_server: ServerHandle,
    redis_url: str,
    redis_prefix: str,
) -> GatewayFactory:
    """``async with gateway(**settings) as client``: a gateway app over ASGI and its client."""

    @asynccontextmanager
    async def make(
        routes: dict[str, Any] | None = None,
        clock: Callable[[], float] = time.time,
        **overrides: Any,
    ) -> AsyncIterator[httpx.AsyncClient]:
        import json

        table = routes or route_table(upstream.url, f"{jwks_server.url}/.well-known/jwks.json")
        values: dict[str, Any] = {
            "redis_url": redis_url,
            "redis_prefix": redis_prefix,
            "log_format": "text",
            "gateway_routes": json.dumps(table),
            "gateway_jwks_refetch_interval_seconds": 0,
        }
        values.update(overrides)
        app = create_gateway_app(GatewaySettings(**values), clock=clock, configure_logs=False)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
            async with httpx.AsyncClient(transport=transport, base_url="http://gw.test") as client:
                client.app = app  # type: ignore[attr-defined]
                yield client

    return make


@pytest.fixture
def sign_token() -> Callable[..., str]:
    """``sign_token(key, **claims)``: an access token as the auth service issues it."""
    return sign


@pytest.fixture
def make_table(upstream: ServerHandle, jwks_server: ServerHandle) -> Callable[..., dict[str, Any]]:
    """``make_table(upstream_url=None, **route_overrides)``: the test route table."""

    def make(upstream_url: str | None = None, **route_overrides: Any) -> dict[str, Any]:
        return route_table(
            upstream_url or upstream.url,
            f"{jwks_server.url}/.well-known/jwks.json",
            **route_overrides,
        )

    return make
