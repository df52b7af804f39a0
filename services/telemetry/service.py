"""The telemetry service's definition: routes under ``/telemetry``, migrations, startup
(seeding ``TELEMETRY_PROJECTS``, the debug-file bucket) and the retention purge."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

from fastapi import APIRouter, FastAPI
from sqlalchemy import text

from mobileplane.services.kit.db import Database
from mobileplane.services.kit.migrate import MigrationSet
from mobileplane.services.kit.mount import ServiceDefinition, service_settings
from mobileplane.services.kit.s3 import S3Config, S3Gateway
from mobileplane.services.kit.settings import S3Settings, load_settings
from mobileplane.services.telemetry import admin, api, releases, store
from mobileplane.services.telemetry.artifacts import Artifacts
from mobileplane.services.telemetry.privacy import TelemetrySubjectData
from mobileplane.services.telemetry.settings import TelemetrySettings

log = logging.getLogger("mobileplane.telemetry")

MIGRATIONS = MigrationSet("telemetry", Path(__file__).parent / "migrations")
#: Advisory locks: one replica at a time seeds projects or purges old data.
#: Advisory lock ids (the platform's services share one database): profiles' relay holds
#: 727_200; telemetry's are 727_3xx.
SEED_LOCK = 727_300
PURGE_LOCK = 727_301


async def purge_once(database: Database, retention: timedelta, now: datetime) -> int:
    async with database.transaction() as session:
        got = await session.scalar(text(f"SELECT pg_try_advisory_xact_lock({PURGE_LOCK})"))
        if not got:
            return 0
        return await store.purge(session, before=now - retention)


async def _purge_loop(app: FastAPI, settings: TelemetrySettings) -> None:
    retention = timedelta(days=settings.telemetry_retention_days)
    while True:
        await asyncio.sleep(settings.telemetry_purge_interval_seconds)
        try:
            deleted = await purge_once(app.state.database, retention, datetime.now(UTC))
            if deleted:
                log.info("purged expired telemetry", extra={"deleted": deleted})
        except Exception:
            log.exception("telemetry purge failed; retrying at the next interval")


async def start(app: FastAPI) -> None:
    settings = service_settings(app, TelemetrySettings)
    seeds = settings.seed_projects()
    if seeds:
        async with app.state.database.transaction() as session:
            await session.execute(text(f"SELECT pg_advisory_xact_lock({SEED_LOCK})"))
            await store.seed_projects(session, seeds)
    artifacts = None
    if settings.telemetry_artifacts_bucket:
        s3 = S3Gateway(S3Config.from_settings(load_settings(S3Settings)))
        await s3.ensure_bucket(settings.telemetry_artifacts_bucket)
        artifacts = Artifacts(s3, settings.telemetry_artifacts_bucket)
    app.state.telemetry = api.TelemetryState(settings=settings, artifacts=artifacts)
    app.state.telemetry_purge = asyncio.create_task(_purge_loop(app, settings))


async def stop(app: FastAPI) -> None:
    task = getattr(app.state, "telemetry_purge", None)
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    state = getattr(app.state, "telemetry", None)
    if isinstance(state, api.TelemetryState) and state.artifacts is not None:
        state.artifacts.s3.close()


def routers() -> list[APIRouter]:
    return [api.router(), admin.router(), releases.router()]


SERVICE = ServiceDefinition(
    name="telemetry",
    base_path="/telemetry",
    summary="Crash and performance telemetry: Sentry envelopes, issues, release health, OTLP",
    routers=routers,
    migrations=MIGRATIONS,
    endpoints=(
        "/telemetry/api/{project}/envelope/",
        "/telemetry/v1/traces",
        "/telemetry/v1/metrics",
        "/telemetry/projects",
        "/telemetry/projects/{project}/issues",
        "/telemetry/projects/{project}/releases/{release}/health",
    ),
    on_startup=(start,),
    on_shutdown=(stop,),
    subject_data=TelemetrySubjectData,
    settings=(TelemetrySettings, S3Settings),
)
