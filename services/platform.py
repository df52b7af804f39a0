"""The platform app: every service of the platform mounted in one FastAPI app.

The quick start (``mobileplane up``) serves this app; in a cluster each service runs on its
own and the gateway routes to it. A service joins the platform by adding one entry to
:data:`SERVICES`: its name, base path, a factory for its routers and its migrations. The
platform's index (``GET /``) lists what is mounted and how to reach the components behind it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from fastapi import APIRouter, FastAPI, Request

from mobileplane import __version__
from mobileplane.services.analytics.service import SERVICE as ANALYTICS
from mobileplane.services.appconfig.service import SERVICE as APPCONFIG
from mobileplane.services.auth.service import SERVICE as AUTH
from mobileplane.services.content.service import SERVICE as CONTENT
from mobileplane.services.kit.app import create_app
from mobileplane.services.kit.health import get_readiness, readiness_report
from mobileplane.services.kit.migrate import MigrationSet
from mobileplane.services.kit.mount import (
    MountedService,
    ServiceDefinition,
    migration_sets,
    mounted_router,
    startup_hooks,
)
from mobileplane.services.kit.settings import KitSettings
from mobileplane.services.profiles.service import SERVICE as PROFILES
from mobileplane.services.sync.service import SERVICE as SYNC
from mobileplane.services.telemetry.service import SERVICE as TELEMETRY

__all__ = ["SERVICES", "MountedService", "create_platform_app", "platform_migrations"]

HEALTH = ServiceDefinition(
    name="health",
    base_path="/",
    summary="Liveness and readiness probes (provided by the services kit)",
    endpoints=("/healthz", "/readyz"),
)

#: Every service of the platform, in the order they are mounted. A service joins by adding
#: its ``SERVICE`` (from ``services/<name>/service.py``) here.
SERVICES: tuple[ServiceDefinition, ...] = (
    HEALTH,
    AUTH,
    CONTENT,
    SYNC,
    PROFILES,
    TELEMETRY,
    APPCONFIG,
    ANALYTICS,
)


def platform_migrations(services: Sequence[ServiceDefinition] = SERVICES) -> list[MigrationSet]:
    """Every migration set the platform needs, the kit's first."""
    return migration_sets(services)


def service_by_name(
    name: str, services: Sequence[ServiceDefinition] = SERVICES
) -> ServiceDefinition:
    for service in services:
        if service.name == name:
            return service
    known = ", ".join(s.name for s in services if s is not HEALTH)
    raise KeyError(f"no service named {name!r}; the platform has: {known}")


def service_index(services: Sequence[ServiceDefinition]) -> list[dict[str, Any]]:
    return [
        {
            "name": service.name,
            "base_path": service.base_path,
            "summary": service.summary,
            "endpoints": list(service.endpoints),
            "status": "up",
        }
        for service in services
    ]


def _index_router(
    services: Sequence[ServiceDefinition], components: Mapping[str, Mapping[str, Any]]
) -> APIRouter:
    router = APIRouter(tags=["platform"])

    @router.get("/", summary="The platform: mounted services and the components behind them")
    async def index(request: Request) -> dict[str, Any]:
        _, readiness = readiness_report(await get_readiness(request).run())
        return {
            "name": "mobileplane",
            "version": __version__,
            "status": readiness["status"],
            "services": service_index(services),
            "components": {name: dict(info) for name, info in components.items()},
            "checks": readiness["checks"],
        }

    return router


def create_platform_app(
    *,
    settings: KitSettings | Callable[[], KitSettings],
    services: Sequence[ServiceDefinition] = SERVICES,
    components: Mapping[str, Mapping[str, Any]] | None = None,
    configure_logs: bool = True,
) -> FastAPI:
    """The platform app; ``components`` (connection info of Postgres, Redis...) is shown in
    the index and must hold no secrets. ``configure_logs=False`` leaves logging to the caller
    (the quick start writes it to files)."""
    routers = [_index_router(services, components or {}), *(mounted_router(s) for s in services)]
    hooks = [hook for s in services for hook in s.on_shutdown]
    return create_app(
        name="platform",
        routers=routers,
        settings=settings,
        on_startup=startup_hooks(services, services),
        on_shutdown=hooks,
        configure_logs=configure_logs,
    )
