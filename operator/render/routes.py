"""The gateway's route table: which path goes to which service, and under what policy.

Apps reach every service through the gateway, so the table is the platform's public surface.
It is rendered as JSON into the ConfigMap ``<name>-gateway-routes`` (key ``routes.json``),
which the gateway mounts; only enabled services appear, in the order of ``SERVICE_NAMES``.

Policy per route:

- **auth** — ``jwt``: the gateway validates the access token against the JWKS (issuer,
  audience, expiry, algorithm allow-list) and requires the route's scopes; ``public``: no
  token. Public are the auth service itself (``/auth/``: login, token, revocation) and
  ``/.well-known/`` (OIDC discovery, JWKS, and the Apple/Android app-association files), which
  apps read before they have a token. Telemetry's ingestion and analytics are public *at the
  gateway* on purpose: the Sentry and Segment SDKs authenticate with a DSN key / write key,
  not a user's token, and a crash on the login screen must still be reported; those services
  check the keys themselves. Telemetry's read and management API (``/telemetry/projects/``)
  is ``jwt`` without route scopes: the gateway validates the token and forwards the identity,
  the service requires ``telemetry:read`` or ``telemetry:admin`` per route (issue 21 §3).
- **timeoutSeconds** per attempt, **maxBodyBytes** per request: sized per service below.
- **retries** only for idempotent methods (RFC 9110 §9.2.2), and only on failures that a
  second attempt can cure (connection refused, 502/503/504): retrying a POST could apply a
  mutation twice.

Paths are forwarded unchanged: each service serves under its own base path, as in the
platform app (``/auth/…`` on the auth service).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from mobileplane.operator.render.inputs import RenderInput
from mobileplane.operator.render.names import (
    child_name,
    gateway_url,
    metadata,
    service_url,
)

ROUTES_KEY = "routes.json"

KIB = 1024
MIB = 1024 * KIB

#: RFC 9110 idempotent methods a gateway may retry (TRACE is idempotent but never routed).
IDEMPOTENT_METHODS = ("DELETE", "GET", "HEAD", "OPTIONS", "PUT")
#: Failures a second attempt can cure; anything else is the upstream's answer.
RETRY_ON = ("connect-failure", "502", "503", "504")
#: Two retries: rides out one pod being replaced during a rollout without tripling load.
MAX_RETRIES = 2


@dataclass(frozen=True)
class RoutePolicy:
    """One path prefix of a service and how the gateway treats it."""

    path_prefix: str
    auth: str  # "public" or "jwt"
    timeout_seconds: int
    max_body_bytes: int
    scopes: tuple[str, ...] = ()


def _jwt(service: str, timeout: int, body: int) -> RoutePolicy:
    # The scope a client needs for a service is the service's name ("sync" for /sync/).
    return RoutePolicy(f"/{service}/", "jwt", timeout, body, scopes=(service,))


#: Routes of each service (the gateway itself has none: it is the one routing).
ROUTES: dict[str, tuple[RoutePolicy, ...]] = {
    "auth": (
        # Discovery documents and the JWKS: small GETs, cached by clients.
        RoutePolicy("/.well-known/", "public", 10, 64 * KIB),
        # Login forms and token requests are small; a slow login page is a broken one.
        RoutePolicy("/auth/", "public", 10, 64 * KIB),
    ),
    "profiles": (_jwt("profiles", 10, 1 * MIB),),
    # Content is read-mostly; media bytes go straight to S3 through presigned URLs.
    "content": (_jwt("content", 15, 1 * MIB),),
    # An offline device uploads its whole mutation queue in one request when it reconnects.
    "sync": (_jwt("sync", 30, 5 * MIB),),
    # Device registration and preferences only.
    "notifications": (_jwt("notifications", 10, 64 * KIB),),
    "telemetry": (
        # Sentry envelopes may carry attachments and minidumps: the one large body we accept.
        RoutePolicy("/telemetry/", "public", 30, 20 * MIB),
        # Issues, release health and management are for people and the release controller:
        # a token is required here, and the service checks its scope per route
        # (telemetry:read to read, telemetry:admin to manage), which one route-wide scope list
        # could not say. Debug-file uploads keep the envelope route's body limit.
        RoutePolicy("/telemetry/projects/", "jwt", 30, 20 * MIB),
    ),
    "analytics": (
        # Segment caps a batch at 500 KB (32 KB per event); 1 MiB leaves headroom.
        RoutePolicy("/analytics/", "public", 10, 1 * MIB),
        # Sources, counts, top events and profiles are for people: a token is required and
        # the service checks analytics:read or analytics:admin per route, as telemetry does.
        *(
            RoutePolicy(prefix, "jwt", 10, 64 * KIB)
            for prefix in (
                "/analytics/sources/",
                "/analytics/counts/",
                "/analytics/events/",
                "/analytics/profiles/",
            )
        ),
    ),
    # Read before sign-in (is this version still supported?); writes need the
    # appconfig:write scope in identity headers the gateway always strips, so only the release
    # controller, inside the cluster, can make them.
    "appconfig": (RoutePolicy("/appconfig/", "public", 10, 64 * KIB),),
}


def enabled_services(inp: RenderInput) -> list[str]:
    """Names of the enabled services, in ``SERVICE_NAMES`` order."""
    return [name for name, svc in inp.spec.services.by_name().items() if svc.enabled]


def service_scopes(inp: RenderInput) -> list[str]:
    """Every scope some enabled route requires (what OIDC clients may ask for)."""
    enabled = set(enabled_services(inp))
    return sorted(
        {s for name, rs in ROUTES.items() if name in enabled for r in rs for s in r.scopes}
    )


def route_entry(service: str, upstream: str, policy: RoutePolicy) -> dict[str, Any]:
    """One route of the table: ``policy`` for ``service``, reached at ``upstream``."""
    auth: dict[str, Any] = {"mode": policy.auth}
    if policy.auth == "jwt":
        auth["scopes"] = list(policy.scopes)
    return {
        "service": service,
        "pathPrefix": policy.path_prefix,
        "upstream": upstream,
        "auth": auth,
        "timeoutSeconds": policy.timeout_seconds,
        "retries": {"max": MAX_RETRIES, "methods": list(IDEMPOTENT_METHODS), "on": list(RETRY_ON)},
        "maxBodyBytes": policy.max_body_bytes,
    }


def route_table(inp: RenderInput) -> dict[str, Any]:
    """The gateway's whole configuration of routing and token validation."""
    spec, platform = inp.spec, inp.platform
    issuer = gateway_url(inp)
    enabled = enabled_services(inp)
    # Accept every algorithm a published key uses, not only the configured one: after a
    # switch from ES256 to RS256, tokens signed by the old key stay valid until they expire.
    algorithms = {spec.auth.signing_algorithm} | {
        k.algorithm for k in inp.generated.signing_keys.keys
    }
    table: dict[str, Any] = {
        "version": 1,
        "issuer": issuer,
        # Access tokens are issued for the platform's API as a whole: the gateway's URL.
        "audience": issuer,
        "algorithms": sorted(algorithms),
    }
    if "auth" in enabled:
        # In-cluster, so validation never depends on the public DNS name resolving.
        table["jwksURL"] = f"{service_url(platform, 'auth')}/.well-known/jwks.json"
    table["routes"] = [
        route_entry(name, service_url(platform, name), policy)
        for name in enabled
        for policy in ROUTES.get(name, ())
    ]
    return table


def routes_json(inp: RenderInput) -> str:
    """The route table as canonical JSON (sorted keys), so equal tables are equal bytes."""
    return json.dumps(route_table(inp), sort_keys=True, indent=2) + "\n"


def routes_config_map(inp: RenderInput) -> dict[str, Any]:
    """ConfigMap ``<name>-gateway-routes``, mounted by the gateway."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": metadata(inp.platform, child_name(inp.platform, "gateway-routes"), "gateway"),
        "data": {ROUTES_KEY: routes_json(inp)},
    }
