"""The platform app: every service of the platform mounted in one FastAPI app.

The quick start (``mobileplane up``) serves this app; in a cluster each service runs on its
own and the gateway routes to it. A service joins the platform by adding one entry to
:data:`SERVICES`: its name, base path, a factory for its routers and its migrations. The
platform's index (``GET /``) lists what is mounted and how to reach the components behind it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, FastAPI, Request

from mobileplane import __version__
from mobileplane.services.kit.app import create_app
from mobileplane.services.kit.health import get_readiness, readiness_report
from mobileplane.services.kit.migrate import KIT_MIGRATIONS, MigrationSet
from mobileplane.services.kit.settings import KitSettings


def _no_routers() -> Sequence[APIRouter]:
    return ()


@dataclass(frozen=True)
class MountedService:
    """One service in the platform app."""

    name: str
    base_path: str
    summary: str
    routers: Callable[[], Sequence[APIRouter]] = _no_routers
    migrations: MigrationSet | None = None
    endpoints: Sequence[str] = ()  # notable paths, shown in the index


SERVICES: tuple[MountedService, ...] = (
    MountedService(
        name="health",
        base_path="/",
        summary="Liveness and readiness probes (provided by the services kit)",
        endpoints=("/healthz", "/readyz"),
    ),
    # Next: MountedService("auth", "/auth", "OIDC login and tokens", auth_routers, AUTH_MIGRATIONS)
)


def platform_migrations(services: Sequence[MountedService] = SERVICES) -> list[MigrationSet]:
    """Every migration set the platform needs, the kit's first."""
    return [KIT_MIGRATIONS, *(s.migrations for s in services if s.migrations is not None)]


def service_index(services: Sequence[MountedService]) -> list[dict[str, Any]]:
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
    services: Sequence[MountedService], components: Mapping[str, Mapping[str, Any]]
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


def _mounted(service: MountedService) -> APIRouter:
    prefix = "" if service.base_path == "/" else service.base_path.rstrip("/")
    outer = APIRouter(prefix=prefix)
    for router in service.routers():
        outer.include_router(router)
    return outer


def create_platform_app(
    *,
    settings: KitSettings | Callable[[], KitSettings],
    services: Sequence[MountedService] = SERVICES,
    components: Mapping[str, Mapping[str, Any]] | None = None,
) -> FastAPI:
    """The platform app; ``components`` (connection info of Postgres, Redis...) is shown in
    the index and must hold no secrets."""
    routers = [_index_router(services, components or {}), *(_mounted(s) for s in services)]
    return create_app(name="platform", routers=routers, settings=settings)
