"""The profiles service's definition: routes under ``/profiles``, migrations, the outbox relay.

Startup checks the settings schema (an invalid one stops the service with the reason), loads
the time-zone names, opens S3 when ``PROFILES_AVATAR_BUCKET`` is set, and starts this replica's
outbox relay; shutdown stops the relay (pending events stay in the outbox for the next one).
"""

from __future__ import annotations

import logging
import zoneinfo
from datetime import timedelta
from pathlib import Path

from fastapi import APIRouter, FastAPI

from mobileplane.services.kit.migrate import MigrationSet
from mobileplane.services.kit.mount import ServiceDefinition, service_settings
from mobileplane.services.kit.s3 import S3Config, S3Gateway
from mobileplane.services.kit.settings import S3Settings, load_settings
from mobileplane.services.profiles.api import ProfilesState, router
from mobileplane.services.profiles.outbox import OutboxRelay, StreamPublisher, stream_key
from mobileplane.services.profiles.settings import ProfilesSettings
from mobileplane.services.profiles.store import ProfilesSubjectData

log = logging.getLogger("mobileplane.profiles")

MIGRATIONS = MigrationSet("profiles", Path(__file__).parent / "migrations")


def time_zone_names() -> frozenset[str]:
    """The IANA names this machine's time-zone database knows (the ``tzdata`` package or
    ``/usr/share/zoneinfo``)."""
    names = frozenset(zoneinfo.available_timezones())
    if not names:
        log.warning("no time-zone database found: profiles cannot set time_zone (install tzdata)")
    return names


async def start(app: FastAPI) -> None:
    settings = service_settings(app, ProfilesSettings)
    schema = settings.settings_schema()
    s3 = None
    if settings.profiles_avatar_bucket:
        s3 = S3Gateway(S3Config.from_settings(load_settings(S3Settings)))
        await s3.ensure_bucket(settings.profiles_avatar_bucket)
    publish = StreamPublisher(
        app.state.redis, stream_key(app.state.keyspace), maxlen=settings.profiles_events_maxlen
    )
    relay = OutboxRelay(
        app.state.database,
        publish,
        batch=settings.profiles_relay_batch,
        poll_seconds=settings.profiles_relay_poll_seconds,
        retention=timedelta(hours=settings.profiles_outbox_retention_hours),
    )
    app.state.profiles = ProfilesState(
        settings=settings, schema=schema, time_zones=time_zone_names(), relay=relay, s3=s3
    )
    relay.start()


async def stop(app: FastAPI) -> None:
    state = getattr(app.state, "profiles", None)
    if isinstance(state, ProfilesState):
        await state.relay.stop()
        if state.s3 is not None:
            state.s3.close()


def routers() -> list[APIRouter]:
    return [router()]


SERVICE = ServiceDefinition(
    name="profiles",
    base_path="/profiles",
    summary="User profiles: settings, avatars, profile events, GDPR export and erasure",
    routers=routers,
    migrations=MIGRATIONS,
    endpoints=("/profiles/me", "/profiles/me/avatar", "/profiles/me/export"),
    on_startup=(start,),
    on_shutdown=(stop,),
    subject_data=ProfilesSubjectData,
    settings=(ProfilesSettings, S3Settings),
)
