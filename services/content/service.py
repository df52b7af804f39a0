"""The content service's definition: routes under ``/content``, migrations, startup."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI

from mobileplane.services.content.api import ContentState, router
from mobileplane.services.content.cache import ResponseCache
from mobileplane.services.content.privacy import ContentSubjectData
from mobileplane.services.content.settings import ContentSettings
from mobileplane.services.kit.migrate import MigrationSet
from mobileplane.services.kit.mount import ServiceDefinition, service_settings
from mobileplane.services.kit.s3 import S3Config, S3Gateway
from mobileplane.services.kit.settings import S3Settings, load_settings

MIGRATIONS = MigrationSet("content", Path(__file__).parent / "migrations")


async def start(app: FastAPI) -> None:
    settings = service_settings(app, ContentSettings)
    s3 = None
    if settings.content_media_bucket:
        s3 = S3Gateway(S3Config.from_settings(load_settings(S3Settings)))
        await s3.ensure_bucket(settings.content_media_bucket)
    cache = ResponseCache(app.state.redis, app.state.keyspace, settings.content_cache_ttl_seconds)
    app.state.content = ContentState(settings=settings, cache=cache, s3=s3)


async def stop(app: FastAPI) -> None:
    state = getattr(app.state, "content", None)
    if isinstance(state, ContentState) and state.s3 is not None:
        state.s3.close()


def routers() -> list[APIRouter]:
    return [router()]


SERVICE = ServiceDefinition(
    name="content",
    base_path="/content",
    summary="Content delivery: items and feeds, personalised and cached; media via S3",
    routers=routers,
    migrations=MIGRATIONS,
    endpoints=("/content/feed", "/content/items/{slug}", "/content/media/{id}"),
    on_startup=(start,),
    on_shutdown=(stop,),
    subject_data=ContentSubjectData,
    settings=(ContentSettings, S3Settings),
)
