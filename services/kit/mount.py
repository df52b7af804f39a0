"""How a service describes itself, so it can run alone or mounted in the platform app.

Each service package exposes one :class:`ServiceDefinition` named ``SERVICE`` in its
``service.py``: its name and base path, its routers, its migrations, the hooks that build and
tear down its own state (settings with its prefix, key sets, workers) and, if it holds user
data, its :class:`~kit.privacy.SubjectData` store.

- ``mobileplane serve <name>`` runs :func:`create_service_app` (one service per process, as the
  operator deploys it); the service's hooks run in the kit's lifespan.
- The platform app (``services/platform.py``, the quick start) mounts every definition in one
  process, running all their hooks.

Hooks receive the FastAPI app and keep their state on ``app.state.<service name>``, so the same
code works in both shapes. A hook reads its service's settings with :func:`service_settings`,
which takes the kit's part (database, Redis) from the app rather than the environment.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from fastapi import APIRouter, FastAPI
from pydantic_settings import BaseSettings

from mobileplane.services.kit.app import create_app
from mobileplane.services.kit.migrate import KIT_MIGRATIONS, MigrationSet
from mobileplane.services.kit.privacy import SUBJECT_STORES_STATE, SubjectData
from mobileplane.services.kit.settings import KitSettings, get_settings, load_settings

SettingsT = TypeVar("SettingsT", bound=KitSettings)

Hook = Callable[[FastAPI], Awaitable[None]]


def _no_routers() -> Sequence[APIRouter]:
    return ()


@dataclass(frozen=True)
class ServiceDefinition:
    """One service of the platform."""

    name: str
    base_path: str
    summary: str
    routers: Callable[[], Sequence[APIRouter]] = _no_routers
    migrations: MigrationSet | None = None
    endpoints: Sequence[str] = ()  # notable paths, shown in the platform's index
    on_startup: Sequence[Hook] = ()
    on_shutdown: Sequence[Hook] = ()
    subject_data: Callable[[], SubjectData] | None = None
    use_database: bool = True
    use_redis: bool = True
    #: Paths served outside ``base_path`` (e.g. ``/.well-known/`` for auth): the routers
    #: declare full paths and the platform app mounts them without a prefix.
    absolute_paths: bool = field(default=False)
    #: The settings classes the service reads its environment with (its own, plus the
    #: kit's S3 settings where it keeps objects): what ``serve`` checks the environment
    #: against, and what the operator's rendered keys are tested against.
    settings: Sequence[type[BaseSettings]] = ()

    @property
    def prefix(self) -> str:
        if self.absolute_paths or self.base_path == "/":
            return ""
        return self.base_path.rstrip("/")


#: Kept for the platform module's name; a mounted service is a service definition.
MountedService = ServiceDefinition


def migration_sets(services: Sequence[ServiceDefinition]) -> list[MigrationSet]:
    """Every migration set ``services`` need, the kit's first."""
    return [KIT_MIGRATIONS, *(s.migrations for s in services if s.migrations is not None)]


def mounted_router(service: ServiceDefinition) -> APIRouter:
    outer = APIRouter(prefix=service.prefix)
    for router in service.routers():
        outer.include_router(router)
    return outer


def subject_stores(services: Sequence[ServiceDefinition]) -> list[SubjectData]:
    return [s.subject_data() for s in services if s.subject_data is not None]


def startup_hooks(
    services: Sequence[ServiceDefinition], all_services: Sequence[ServiceDefinition]
) -> list[Hook]:
    """The hooks of ``services``, after one that registers the data-subject stores of
    ``all_services`` (they share the database, so one export covers every service)."""
    stores = subject_stores(all_services)

    async def register_stores(app: FastAPI) -> None:
        setattr(app.state, SUBJECT_STORES_STATE, stores)

    return [register_stores, *(hook for s in services for hook in s.on_startup)]


def service_settings(app: FastAPI, cls: type[SettingsT]) -> SettingsT:
    """A service's own settings (``cls``, from the environment), sharing the app's kit
    settings: in the platform app the kit's (database, Redis, log format) are given in code,
    and a service must run on the same ones."""
    kit = getattr(app.state, "settings", None)
    if not isinstance(kit, KitSettings):
        raise RuntimeError("no kit settings on app.state: create the app with kit.app.create_app")
    return load_settings(cls, **kit.model_dump())


def create_service_app(
    service: ServiceDefinition,
    *,
    settings: KitSettings | Callable[[], KitSettings] = get_settings,
    all_services: Sequence[ServiceDefinition] = (),
    extra_routers: Sequence[APIRouter] = (),
) -> FastAPI:
    """``service`` alone in a process (``mobileplane serve``)."""
    return create_app(
        name=service.name,
        routers=[*extra_routers, mounted_router(service)],
        settings=settings,
        use_database=service.use_database,
        use_redis=service.use_redis,
        on_startup=startup_hooks([service], all_services or [service]),
        on_shutdown=list(service.on_shutdown),
    )
