"""The analytics service's definition: routes under ``/analytics``, migrations, startup
(seeding ``ANALYTICS_SOURCES``) and the retention purge."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

from fastapi import APIRouter, FastAPI
from sqlalchemy import text

from mobileplane.services.analytics import admin, api, store
from mobileplane.services.analytics.privacy import AnalyticsSubjectData
from mobileplane.services.analytics.settings import AnalyticsSettings
from mobileplane.services.kit.db import Database
from mobileplane.services.kit.migrate import MigrationSet
from mobileplane.services.kit.mount import ServiceDefinition, service_settings

log = logging.getLogger("mobileplane.analytics")

MIGRATIONS = MigrationSet("analytics", Path(__file__).parent / "migrations")
#: Advisory lock ids (the platform's services share one database): profiles' relay holds
#: 727_200, telemetry's are 727_3xx; analytics' are 727_4xx. One replica at a time seeds
#: sources or purges old events.
SEED_LOCK = 727_400
PURGE_LOCK = 727_401
#: How long shutdown waits for a purge in progress before cancelling it.
STOP_TIMEOUT = 10.0


async def purge_once(database: Database, retention: timedelta, now: datetime) -> int:
    """Delete the events older than ``retention``; 0 when another replica is purging."""
    async with database.transaction() as session:
        got = await session.scalar(text(f"SELECT pg_try_advisory_xact_lock({PURGE_LOCK})"))
        if not got:
            return 0
        return await store.purge(session, before=now - retention)


async def _purge_loop(app: FastAPI, settings: AnalyticsSettings, stopping: asyncio.Event) -> None:
    retention = timedelta(days=settings.analytics_retention_days)
    while not stopping.is_set():
        # Wait for the interval or for shutdown: a stop never cancels a purge mid-way.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), settings.analytics_purge_interval_seconds)
        if stopping.is_set():
            return
        try:
            deleted = await purge_once(app.state.database, retention, datetime.now(UTC))
            if deleted:
                log.info("purged expired analytics events", extra={"deleted": deleted})
        except Exception:
            log.exception("analytics purge failed; retrying at the next interval")


async def start(app: FastAPI) -> None:
    settings = service_settings(app, AnalyticsSettings)
    seeds = settings.seed_sources()
    if seeds:
        async with app.state.database.transaction() as session:
            await session.execute(text(f"SELECT pg_advisory_xact_lock({SEED_LOCK})"))
            await store.seed_sources(session, seeds)
    app.state.analytics = api.AnalyticsState(settings=settings)
    stopping = asyncio.Event()
    app.state.analytics_purge_stopping = stopping
    app.state.analytics_purge = asyncio.create_task(_purge_loop(app, settings, stopping))


async def stop(app: FastAPI) -> None:
    task = getattr(app.state, "analytics_purge", None)
    if task is None:
        return
    app.state.analytics_purge_stopping.set()
    try:
        await asyncio.wait_for(asyncio.shield(task), STOP_TIMEOUT)
    except TimeoutError:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def routers() -> list[APIRouter]:
    return [api.router(), admin.router()]


SERVICE = ServiceDefinition(
    name="analytics",
    base_path="/analytics",
    summary="Product analytics: the Segment HTTP Tracking API, event counts, user profiles",
    routers=routers,
    migrations=MIGRATIONS,
    endpoints=(
        "/analytics/v1/batch",
        "/analytics/sources",
        "/analytics/counts",
    ),
    on_startup=(start,),
    on_shutdown=(stop,),
    subject_data=AnalyticsSubjectData,
    use_redis=False,
    settings=(AnalyticsSettings,),
)
