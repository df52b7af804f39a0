"""The app-config service's definition: routes under ``/appconfig``, migrations, startup."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI

from mobileplane.services.appconfig.api import AppConfigState, router
from mobileplane.services.appconfig.settings import AppConfigSettings
from mobileplane.services.kit.migrate import MigrationSet
from mobileplane.services.kit.mount import ServiceDefinition, service_settings

MIGRATIONS = MigrationSet("appconfig", Path(__file__).parent / "migrations")


async def start(app: FastAPI) -> None:
    app.state.appconfig = AppConfigState(settings=service_settings(app, AppConfigSettings))


def routers() -> list[APIRouter]:
    return [router()]


SERVICE = ServiceDefinition(
    name="appconfig",
    base_path="/appconfig",
    summary="App config: latest and minimum versions, halted versions, kill switches",
    routers=routers,
    migrations=MIGRATIONS,
    endpoints=("/appconfig/{app}",),
    on_startup=(start,),
    use_redis=False,
    settings=(AppConfigSettings,),
)
