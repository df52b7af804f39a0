"""The gateway's request path: route, authenticate, limit, then proxy with streaming.

For each request, in this order (each step's refusal is a JSON error of the kit's shape):

1. **route** — paths with dot segments 400; no route 404; a ``Content-Length`` over the
   route's ``maxBodyBytes`` 413 before any byte is read;
2. **token** — on ``jwt`` routes, the access token is validated (``tokens.py``, keys from
   ``jwks.py``; a token whose signature was verified recently skips only that step,
   ``tokencache.py``); a failure is remembered, not answered yet;
3. **Redis, one round trip** (``limiter.py``) — the rate-limit quotas (429 with
   ``RateLimit*`` and ``Retry-After``) and, for a valid token, its revoked session. Quotas
   come first so that floods of bad tokens are limited per address too;
4. **401** for a missing/invalid token or a revoked session (``WWW-Authenticate: Bearer
   error="invalid_token"``), **403** ``insufficient_scope`` for missing scopes;
5. **upstream** — through the circuit breaker, with the identity headers set by the gateway
   (``forwarding.py``), the request body streamed from the client (or buffered when small, so
   that idempotent requests can be retried: ``attempts.py``) and the response streamed back.
   Chunked bodies are counted as they stream and cut off with 413 past the limit. Failures:
   502 (unreachable), 504 (no answer within ``timeoutSeconds``), 503 (circuit open).
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import httpx
from fastapi import Request
from starlette.background import BackgroundTask
from starlette.requests import ClientDisconnect
from starlette.responses import Response, StreamingResponse

from mobileplane.services.gateway import breaker as circuit
from mobileplane.services.gateway.attempts import Failure, body_plan, failure_of, should_retry
from mobileplane.services.gateway.errors import BadGateway, GatewayTimeout, NoRoute, PayloadTooLarge
from mobileplane.services.gateway.forwarding import (
    client_response_headers,
    upstream_request_headers,
)
from mobileplane.services.gateway.jwks import JwksCache
from mobileplane.services.gateway.limiter import Guard
from mobileplane.services.gateway.ratelimit import headers as ratelimit_headers
from mobileplane.services.gateway.routes import Route, RouteTable, has_dot_segments
from mobileplane.services.gateway.tokencache import VerifiedTokens
from mobileplane.services.gateway.tokens import (
    TokenPolicy,
    TokenRejected,
    bearer_token,
    check_claims,
    missing_scopes,
    read_header,
    verify_signature,
    www_authenticate,
)
from mobileplane.services.kit.context import current_request_id, new_request_id
from mobileplane.services.kit.errors import (
    BadRequest,
    Forbidden,
    RateLimited,
    Unauthorized,
    Unavailable,
)
from mobileplane.services.kit.identity import Identity, identity_headers
from mobileplane.services.kit.telemetry import inject_trace_headers

_log = logging.getLogger("mobileplane.gateway")

#: Methods the gateway routes (TRACE and CONNECT are never forwarded).
METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


class _BodyTooLarge(Exception):
    pass


@dataclass
class Gateway:
    """Everything the request path needs; built once at startup (``service.py``)."""

    table: RouteTable
    policy: TokenPolicy
    jwks: JwksCache | None
    guard: Guard
    client: httpx.AsyncClient
    breaker_config: circuit.BreakerConfig
    buffer_limit: int
    clock: Callable[[], float] = time.time
    #: Tokens whose signature was verified recently (``None``: verify every time).
    verified: VerifiedTokens | None = None
    breakers: dict[str, circuit.Breaker] = field(default_factory=dict)
    _upstreams: dict[str, tuple[httpx.URL, dict[str, float | None]]] = field(
        default_factory=dict, init=False, repr=False
    )

    async def handle(self, request: Request) -> Response:
        raw_path = request.scope.get("raw_path") or request.url.path.encode()
        if has_dot_segments(raw_path.decode("latin-1")):
            raise BadRequest("The path must not hold . or .. segments or encoded slashes")
        route = self.table.match(request.url.path)
        if route is None:
            raise NoRoute(f"No route serves {request.url.path}")
        content_length = _content_length(request)
        if content_length is not None and content_length > route.max_body_bytes:
            raise PayloadTooLarge(
                f"The request body is over this route's limit of {route.max_body_bytes} bytes"
            )

        identity: Identity | None = None
        rejection: TokenRejected | None = None
        if route.auth.mode == "jwt":
            try:
                identity = await self._authenticate(request.headers.get("authorization"))
            except TokenRejected as e:
                rejection = e

        client_ip = request.client.host if request.client else None
        admission = await self.guard.admit(
            route=route.path_prefix, client_ip=client_ip, identity=identity
        )
        verdict = admission.verdict
        limit_headers = ratelimit_headers(verdict) if verdict is not None else {}
        if verdict is not None and not verdict.allowed:
            raise RateLimited(
                "Too many requests: slow down",
                retry_after=verdict.retry_after,
                headers=limit_headers,
            )
        if route.auth.mode == "jwt":
            self._authorize(route, identity, rejection, revoked=admission.revoked)

        response = await self._forward(request, route, identity, content_length)
        for name, value in limit_headers.items():
            response.raw_headers.append((name.encode(), value.encode()))
        return response

    async def _authenticate(self, authorization: str | None) -> Identity | None:
        token = bearer_token(authorization)
        if token is None:
            return None
        assert self.jwks is not None  # a table with jwt routes has a jwksURL
        if self.verified is not None:
            seen = self.verified.get(token, self.clock())
            # Only with the key the signature was verified with: a JWKS fetch since then
            # (rotation, removal, refresh) means verifying again.
            if seen is not None and await self.jwks.key(seen.kid) is seen.key:
                return check_claims(seen.claims, self.policy, self.clock())
        header = read_header(token, self.policy)
        key = await self.jwks.key(header.kid)
        claims = verify_signature(token, header, key)
        now = self.clock()
        identity = check_claims(claims, self.policy, now)
        if self.verified is not None:
            self.verified.put(token, claims, kid=header.kid, key=key, now=now)
        return identity

    def _authorize(
        self,
        route: Route,
        identity: Identity | None,
        rejection: TokenRejected | None,
        *,
        revoked: bool,
    ) -> None:
        if rejection is not None:
            raise Unauthorized(
                f"Invalid access token: {rejection.description}",
                code="invalid_token",
                headers={
                    "www-authenticate": www_authenticate("invalid_token", rejection.description)
                },
            )
        if identity is None:
            raise Unauthorized(
                "This route needs an access token (Authorization: Bearer ...)",
                headers={"www-authenticate": www_authenticate(None)},
            )
        if revoked:
            description = "the token's session has been revoked"
            raise Unauthorized(
                f"Invalid access token: {description}",
                code="invalid_token",
                headers={"www-authenticate": www_authenticate("invalid_token", description)},
            )
        missing = missing_scopes(identity, route.auth.scopes)
        if missing:
            raise Forbidden(
                f"The access token lacks the scope(s) {' '.join(missing)}",
                code="insufficient_scope",
                headers={
                    "www-authenticate": www_authenticate(
                        "insufficient_scope",
                        "the token lacks a required scope",
                        scope=" ".join(route.auth.scopes),
                    )
                },
            )

    async def _forward(
        self, request: Request, route: Route, identity: Identity | None, content_length: int | None
    ) -> Response:
        method = request.method
        chunked = "chunked" in request.headers.get("transfer-encoding", "").lower()
        plan = body_plan(route, method, content_length, chunked, self.buffer_limit)
        body: bytes | None = None
        if plan.kind == "buffer":
            try:
                body = await _read_body(request, route.max_body_bytes)
            except _BodyTooLarge:
                raise PayloadTooLarge(
                    f"The request body is over this route's limit of {route.max_body_bytes} bytes"
                ) from None
            except ClientDisconnect:
                raise BadRequest("The client closed the connection mid-request") from None
        headers = upstream_request_headers(
            [(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.headers.raw],
            identity_headers=identity_headers(identity) if identity else {},
            client_ip=request.client.host if request.client else None,
            scheme=request.url.scheme,
            host=request.headers.get("host"),
            request_id=current_request_id(request.scope) or new_request_id(),
        )
        trace: dict[str, str] = {}
        inject_trace_headers(trace)
        headers.extend(trace.items())
        base, timeout = self._upstream_of(route)
        url = base.copy_with(
            raw_path=(request.scope.get("raw_path") or request.url.path.encode())
            + (b"?" + request.scope["query_string"] if request.scope.get("query_string") else b"")
        )

        attempts = 0
        started = time.perf_counter()
        while True:
            attempts += 1
            admission = circuit.admit(self._breaker(route), self.breaker_config, self.clock())
            self.breakers[route.upstream] = admission.breaker
            if not admission.allowed:
                raise Unavailable(
                    f"The {route.service} service is unavailable (circuit open)",
                    retry_after=admission.retry_after,
                )
            content: bytes | AsyncIterator[bytes] | None
            if plan.kind == "stream":
                content = _limited_stream(request, route.max_body_bytes)
            else:
                content = body
            upstream_request = httpx.Request(
                method, url, headers=headers, content=content, extensions={"timeout": timeout}
            )
            failure: Failure | None = None
            error: httpx.HTTPError | None = None
            try:
                upstream = await self.client.send(upstream_request, stream=True)
            except _BodyTooLarge:
                self._release(route)
                raise PayloadTooLarge(
                    f"The request body is over this route's limit of {route.max_body_bytes} bytes"
                ) from None
            except ClientDisconnect:
                self._release(route)
                raise BadRequest("The client closed the connection mid-request") from None
            except (httpx.ConnectError, httpx.ConnectTimeout) as e:
                failure, error = "connect-failure", e
            except httpx.TimeoutException as e:
                failure, error = "timeout", e
            except httpx.HTTPError as e:  # the connection broke: protocol errors, resets
                failure, error = "protocol-error", e
            if failure is not None:
                self._failed(route)
                if should_retry(route, method, failure, attempts, plan.replayable):
                    continue
                _log.warning(
                    "upstream %s failed: %s: %s",
                    route.service,
                    failure,
                    error,
                    extra={"upstream": route.service, "attempts": attempts},
                )
                if failure == "timeout":
                    raise GatewayTimeout(
                        f"The {route.service} service did not answer within "
                        f"{route.timeout_seconds:g} s"
                    ) from error
                raise BadGateway(f"The {route.service} service cannot be reached") from error

            status_failure = failure_of(upstream.status_code)
            if status_failure is not None:
                self._failed(route)
                if should_retry(route, method, status_failure, attempts, plan.replayable):
                    await upstream.aclose()
                    continue
            else:
                self.breakers[route.upstream] = circuit.record_success(self._breaker(route))
            _log.info(
                "%s %s -> %s %d",
                method,
                request.url.path,
                route.service,
                upstream.status_code,
                extra={
                    "upstream": route.service,
                    "upstream_status": upstream.status_code,
                    "attempts": attempts,
                    "upstream_ms": round((time.perf_counter() - started) * 1000, 2),
                },
            )
            response = StreamingResponse(
                upstream.aiter_raw(),
                status_code=upstream.status_code,
                background=BackgroundTask(upstream.aclose),
            )
            response.raw_headers = [
                (name.encode("latin-1"), value.encode("latin-1"))
                for name, value in client_response_headers(
                    (k.decode("latin-1"), v.decode("latin-1")) for k, v in upstream.headers.raw
                )
            ]
            return response

    def _upstream_of(self, route: Route) -> tuple[httpx.URL, dict[str, float | None]]:
        """The route's upstream URL and timeouts, parsed once per route rather than per request."""
        found = self._upstreams.get(route.path_prefix)
        if found is None:
            found = (httpx.URL(route.upstream), httpx.Timeout(route.timeout_seconds).as_dict())
            self._upstreams[route.path_prefix] = found
        return found

    def _breaker(self, route: Route) -> circuit.Breaker:
        return self.breakers.get(route.upstream) or circuit.Breaker()

    def _failed(self, route: Route) -> None:
        self.breakers[route.upstream] = circuit.record_failure(
            self._breaker(route), self.breaker_config, self.clock()
        )

    def _release(self, route: Route) -> None:
        self.breakers[route.upstream] = circuit.release_probe(self._breaker(route))


def _content_length(request: Request) -> int | None:
    raw = request.headers.get("content-length")
    if raw is None:
        return None
    value = raw.strip()
    # isascii: "¹" (a Latin-1 byte in a header) is a digit to str.isdigit, not to int().
    if not (value.isascii() and value.isdigit()) or len(value) > 18:
        raise BadRequest("Content-Length must be a non-negative integer")
    return int(value)


async def _read_body(request: Request, limit: int) -> bytes:
    body = bytearray()
    async for chunk in _limited_stream(request, limit):
        body += chunk
    return bytes(body)


async def _limited_stream(request: Request, limit: int) -> AsyncIterator[bytes]:
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _BodyTooLarge
        if chunk:
            yield chunk
