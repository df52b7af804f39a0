"""The gateway's settings (``GATEWAY_*``), and where its route table comes from.

The route table is the operator's (``GATEWAY_ROUTES_FILE``, a mounted ConfigMap); the quick
start and tests may pass it inline instead (``GATEWAY_ROUTES``). Setting both is refused:
which one would win is a question nobody should have to answer during an incident.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator, model_validator
from pydantic_settings import SettingsConfigDict

from mobileplane.services.gateway.breaker import BreakerConfig
from mobileplane.services.gateway.ratelimit import Limits, Quota
from mobileplane.services.gateway.routes import RouteTable, RouteTableError, parse_route_table
from mobileplane.services.kit.settings import KitSettings


class GatewaySettings(KitSettings):
    model_config = SettingsConfigDict(
        env_prefix="", case_sensitive=False, extra="ignore", frozen=True
    )

    # The gateway keeps no data: it has no database (the kit's field is required otherwise).
    database_url: str = ""

    gateway_routes_file: Path | None = None
    gateway_routes: str | None = Field(default=None, description="the route table, inline JSON")

    # Clock skew tolerated on exp/nbf/iat. Small: a token lives minutes.
    gateway_jwt_leeway_seconds: float = Field(default=30, ge=0, le=300)
    # The JWKS is fetched again after this long (keys removed by the issuer stop working).
    gateway_jwks_max_age_seconds: float = Field(default=300, ge=1)
    # At most one refetch per this many seconds on an unknown kid (forged kids cost nothing).
    gateway_jwks_refetch_interval_seconds: float = Field(default=30, ge=0)
    gateway_jwks_timeout_seconds: float = Field(default=5, gt=0, le=60)

    # Rate limits: requests per window; 0 turns a quota off. Per user: an app's normal use
    # is a few requests a second; per IP: higher, since carrier NAT puts many users behind one
    # address; per route: the sum every replica lets through to one service.
    gateway_rate_limit_user_requests: int = Field(default=600, ge=0)
    gateway_rate_limit_user_window_seconds: float = Field(default=60, gt=0)
    gateway_rate_limit_ip_requests: int = Field(default=1200, ge=0)
    gateway_rate_limit_ip_window_seconds: float = Field(default=60, gt=0)
    gateway_rate_limit_route_requests: int = Field(default=0, ge=0)
    gateway_rate_limit_route_window_seconds: float = Field(default=1, gt=0)
    gateway_rate_limit_fail_open: bool = True
    gateway_revocation_fail_open: bool = False
    # Redis is on every request's path: fail fast rather than hold requests for seconds.
    gateway_redis_timeout_seconds: float = Field(default=0.5, gt=0, le=10)

    gateway_breaker_failure_threshold: int = Field(default=5, ge=1)
    gateway_breaker_cooldown_seconds: float = Field(default=10, ge=0)
    # Bodies up to this size are read before the first attempt so that they can be retried.
    gateway_retry_buffer_bytes: int = Field(default=64 * 1024, ge=0, le=16 * 1024 * 1024)
    gateway_max_upstream_connections: int = Field(default=512, ge=1)
    # Verified access tokens remembered (tokencache.py): the signature is checked once per
    # token per this many seconds (and again after each JWKS fetch); claims, revocation and
    # scopes are checked on every request. 0 entries turns the cache off.
    gateway_token_cache_entries: int = Field(default=10_000, ge=0, le=1_000_000)
    gateway_token_cache_seconds: float = Field(default=60, gt=0, le=3600)

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str) -> str:
        # Overrides the kit's check (same name): the gateway never connects to a database.
        return value

    @model_validator(mode="after")
    def _one_route_source(self) -> GatewaySettings:
        if self.gateway_routes_file is not None and self.gateway_routes is not None:
            raise ValueError("set GATEWAY_ROUTES_FILE or GATEWAY_ROUTES, not both")
        return self

    def route_table(self) -> RouteTable:
        """The parsed table, or :class:`RouteTableError` saying what to fix."""
        if self.gateway_routes is not None:
            return parse_route_table(self.gateway_routes)
        if self.gateway_routes_file is None:
            raise RouteTableError(
                "no route table: set GATEWAY_ROUTES_FILE to the operator's routes.json "
                "(or GATEWAY_ROUTES to the table as JSON)"
            )
        try:
            text = self.gateway_routes_file.read_bytes()
        except OSError as e:
            raise RouteTableError(
                f"cannot read GATEWAY_ROUTES_FILE {self.gateway_routes_file}: {e.strerror}"
            ) from None
        return parse_route_table(text)

    def limits(self) -> Limits:
        def quota(name: str, requests: int, window: float) -> Quota | None:
            return Quota(name, requests, window) if requests else None  # type: ignore[arg-type]

        return Limits(
            user=quota(
                "user",
                self.gateway_rate_limit_user_requests,
                self.gateway_rate_limit_user_window_seconds,
            ),
            ip=quota(
                "ip", self.gateway_rate_limit_ip_requests, self.gateway_rate_limit_ip_window_seconds
            ),
            route=quota(
                "route",
                self.gateway_rate_limit_route_requests,
                self.gateway_rate_limit_route_window_seconds,
            ),
        )

    def breaker(self) -> BreakerConfig:
        return BreakerConfig(
            failure_threshold=self.gateway_breaker_failure_threshold,
            cooldown_seconds=self.gateway_breaker_cooldown_seconds,
        )
