"""The sync service's definition: routes under ``/sync``, migrations, startup and compaction."""

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
from mobileplane.services.sync import store
from mobileplane.services.sync.api import SyncState, load_schema, router
from mobileplane.services.sync.privacy import SyncSubjectData
from mobileplane.services.sync.settings import SyncSettings

log = logging.getLogger("mobileplane.sync")

MIGRATIONS = MigrationSet("sync", Path(__file__).parent / "migrations")
#: Advisory lock that makes one replica at a time compact the log.
COMPACTION_LOCK = 727_100


async def compact_once(database: Database, horizon: timedelta) -> int:
    async with database.transaction() as session:
        got = await session.scalar(text(f"SELECT pg_try_advisory_xact_lock({COMPACTION_LOCK})"))
        if not got:
            return 0
        return await store.compact(session, horizon=horizon, now=datetime.now(UTC))


#: How long shutdown waits for a compaction in progress before cancelling it.
STOP_TIMEOUT = 10.0


async def _compaction_loop(app: FastAPI, settings: SyncSettings, stopping: asyncio.Event) -> None:
    horizon = timedelta(days=settings.sync_offline_horizon_days)
    while not stopping.is_set():
        # Wait for the interval, or for shutdown: a stop never cancels a compaction mid-way
        # (cancelling psycopg's async connection inside a transaction can hang the shutdown).
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), settings.sync_compaction_interval_seconds)
        if stopping.is_set():
            return
        try:
            dropped = await compact_once(app.state.database, horizon)
            if dropped:
                log.info("compacted the sync log", extra={"dropped": dropped})
        except Exception:
            log.exception("sync log compaction failed; retrying at the next interval")


async def start(app: FastAPI) -> None:
    settings = service_settings(app, SyncSettings)
    app.state.sync = SyncState(
        settings=settings, schema=load_schema(settings), keys=settings.checkpoint_keys()
    )
    stopping = asyncio.Event()
    app.state.sync_compaction_stopping = stopping
    app.state.sync_compaction = asyncio.create_task(_compaction_loop(app, settings, stopping))


async def stop(app: FastAPI) -> None:
    task = getattr(app.state, "sync_compaction", None)
    if task is None:
        return
    app.state.sync_compaction_stopping.set()
    try:
        await asyncio.wait_for(asyncio.shield(task), STOP_TIMEOUT)
    except TimeoutError:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def routers() -> list[APIRouter]:
    return [router()]


SERVICE = ServiceDefinition(
    name="sync",
    base_path="/sync",
    summary="Offline sync: ordered idempotent uploads, complete checkpoints, live updates",
    routers=routers,
    migrations=MIGRATIONS,
    endpoints=("/sync/upload", "/sync/download", "/sync/events", "/sync/schema"),
    on_startup=(start,),
    on_shutdown=(stop,),
    subject_data=SyncSubjectData,
    settings=(SyncSettings,),
)
