"""The route table the operator renders, as typed data, and which route serves a path.

The operator writes the table (``operator/render/routes.py``) into a ConfigMap the gateway
mounts; the gateway reads it once at startup (``GATEWAY_ROUTES_FILE``, or inline JSON in
``GATEWAY_ROUTES`` for the quick start and tests). A table that does not parse is a startup
error naming each problem: a gateway that guessed would expose a service without its policy.

Matching is by path prefix, the longest prefix wins (``/auth/`` and a later ``/auth/admin/``
would each get their own policy), and a prefix ``/sync/`` also matches the bare ``/sync``.
Paths are forwarded unchanged. Paths with ``.`` or ``..`` segments are refused before
matching (:func:`has_dot_segments`): an upstream that normalised ``/content/../auth/x`` would
serve a path under another route's policy.

Pure: no I/O.
"""

from __future__ import annotations

import json
from typing import Annotated, Literal
from urllib.parse import unquote, urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from mobileplane.services.gateway.keyring import KEY_TYPES

#: Methods a route may list as retryable: the idempotent ones of RFC 9110 §9.2.2.
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"})

RetryCondition = Literal["connect-failure", "502", "503", "504"]


class RouteTableError(ValueError):
    """The route table cannot be used; the message lists every problem."""


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


class AuthPolicy(_Model):
    mode: Literal["public", "jwt"]
    scopes: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _scopes_only_with_jwt(self) -> AuthPolicy:
        if self.mode == "public" and self.scopes:
            raise ValueError("a public route cannot require scopes")
        return self


class RetryPolicy(_Model):
    max: int = Field(default=0, ge=0, le=5)
    methods: tuple[str, ...] = ()
    on: tuple[RetryCondition, ...] = ()

    @field_validator("methods")
    @classmethod
    def _idempotent_only(cls, methods: tuple[str, ...]) -> tuple[str, ...]:
        upper = tuple(m.upper() for m in methods)
        unsafe = sorted(set(upper) - IDEMPOTENT_METHODS)
        if unsafe:
            raise ValueError(f"only idempotent methods may be retried, not {', '.join(unsafe)}")
        return upper


class Route(_Model):
    service: str = Field(min_length=1)
    path_prefix: Annotated[str, Field(alias="pathPrefix", min_length=1)]
    upstream: str
    auth: AuthPolicy
    timeout_seconds: Annotated[float, Field(alias="timeoutSeconds", gt=0, le=3600)]
    retries: RetryPolicy = RetryPolicy()
    max_body_bytes: Annotated[int, Field(alias="maxBodyBytes", ge=0)]

    @field_validator("path_prefix")
    @classmethod
    def _absolute(cls, prefix: str) -> str:
        if not prefix.startswith("/") or has_dot_segments(prefix):
            raise ValueError("must be an absolute path without . or .. segments")
        return prefix

    @field_validator("upstream")
    @classmethod
    def _http_url(cls, upstream: str) -> str:
        parts = urlsplit(upstream)
        if parts.scheme not in {"http", "https"} or not parts.hostname:
            raise ValueError("must be an http(s) URL such as http://sync.mp.svc:8080")
        if parts.query or parts.fragment or parts.path not in {"", "/"}:
            raise ValueError("must be a scheme and authority only: paths are forwarded unchanged")
        return upstream.rstrip("/")

    def matches(self, path: str) -> bool:
        prefix = self.path_prefix
        return path.startswith(prefix) or (prefix.endswith("/") and path == prefix[:-1])

    def retries_method(self, method: str) -> bool:
        return self.retries.max > 0 and method.upper() in self.retries.methods


class RouteTable(_Model):
    version: Literal[1]
    issuer: str = Field(min_length=1)
    audience: str = Field(min_length=1)
    algorithms: tuple[str, ...] = Field(min_length=1)
    jwks_url: Annotated[str | None, Field(alias="jwksURL")] = None
    routes: tuple[Route, ...] = ()

    @field_validator("algorithms")
    @classmethod
    def _asymmetric(cls, algorithms: tuple[str, ...]) -> tuple[str, ...]:
        refused = sorted(a for a in algorithms if a not in KEY_TYPES)
        if refused:
            raise ValueError(
                f"{', '.join(refused)} not allowed: only asymmetric signature algorithms "
                f"({', '.join(KEY_TYPES)}), never none or HS*"
            )
        return algorithms

    @model_validator(mode="after")
    def _consistent(self) -> RouteTable:
        prefixes = [r.path_prefix for r in self.routes]
        duplicates = sorted({p for p in prefixes if prefixes.count(p) > 1})
        if duplicates:
            raise ValueError(f"path prefixes appear twice: {', '.join(duplicates)}")
        if self.jwks_url is None and any(r.auth.mode == "jwt" for r in self.routes):
            raise ValueError("jwt routes need jwksURL (is the auth service enabled?)")
        return self

    def match(self, path: str) -> Route | None:
        """The route with the longest prefix of ``path``, or ``None``."""
        best: Route | None = None
        for route in self.routes:
            if route.matches(path) and (
                best is None or len(route.path_prefix) > len(best.path_prefix)
            ):
                best = route
        return best


def parse_route_table(text: str | bytes) -> RouteTable:
    """The table in ``text`` (JSON), or :class:`RouteTableError` naming each problem."""
    try:
        data = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise RouteTableError(f"the route table is not JSON: {e}") from None
    try:
        return RouteTable.model_validate(data)
    except ValidationError as e:
        problems = [
            f"  {'.'.join(str(p) for p in err['loc']) or '(table)'}: "
            f"{err['msg'].removeprefix('Value error, ')}"
            for err in e.errors(include_input=False, include_url=False)
        ]
        raise RouteTableError("invalid route table:\n" + "\n".join(problems)) from None


def has_dot_segments(path: str) -> bool:
    """Whether ``path`` (raw or decoded) has a ``.`` or ``..`` segment, or an encoded ``/``."""
    if "%2f" in path.lower() or "%5c" in path.lower() or "\\" in path:
        return True
    decoded = unquote(path)
    return any(segment in {".", ".."} for segment in decoded.split("/"))
