"""The analytics service's management and query surface (behind the gateway).

Scopes: ``analytics:admin`` manages sources and write keys; the counts, top events and
profiles need ``analytics:read`` (or ``analytics:admin``).

- ``/analytics/sources`` — sources (one per app or backend sending events) and their write
  keys: create, list, revoke;
- ``/analytics/counts`` — events and distinct users per hour or day between two times, for one
  event (or page/screen name), one type, one source, or everything;
- ``/analytics/events/top`` — the most frequent events of a range;
- ``/analytics/profiles/{user_id}`` — a user's merged traits, first and last seen.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from sqlalchemy.ext.asyncio import AsyncSession

from mobileplane.services.analytics import store
from mobileplane.services.analytics.api import State
from mobileplane.services.analytics.buckets import Interval, RangeError, buckets, series
from mobileplane.services.analytics.settings import SLUG
from mobileplane.services.analytics.spec import TYPES
from mobileplane.services.kit.db import DbSession
from mobileplane.services.kit.errors import Conflict, NotFound, ValidationFailed
from mobileplane.services.kit.identity import Identity, require_scope

ADMIN_SCOPE = "analytics:admin"
READ_SCOPE = "analytics:read"
Admin = Annotated[Identity, require_scope(ADMIN_SCOPE)]
Reader = Annotated[Identity, require_scope(READ_SCOPE, ADMIN_SCOPE)]
MessageType = Literal["track", "identify", "page", "screen", "group", "alias"]
assert set(TYPES) == set(MessageType.__args__)  # type: ignore[attr-defined]


class SourceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    slug: str = Field(pattern=SLUG)
    name: str | None = Field(default=None, max_length=200)


class KeyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    label: str = Field(default="", max_length=200)


def new_write_key() -> str:
    return secrets.token_urlsafe(24)  # 32 characters, like Segment's


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _key_json(key: dict[str, Any]) -> dict[str, Any]:
    return {
        "write_key": key["write_key"],
        "label": key["label"],
        "enabled": key["enabled"],
        "created_at": _iso(key["created_at"]),
        "revoked_at": _iso(key["revoked_at"]),
    }


def _source_json(source: dict[str, Any], keys: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "id": source["id"],
        "slug": source["slug"],
        "name": source["name"],
        "created_at": _iso(source["created_at"]),
        "write_keys": [_key_json(k) for k in keys],
    }


async def find_source(session: AsyncSession, slug: str) -> dict[str, Any]:
    source = await store.get_source(session, slug)
    if source is None:
        raise NotFound(f"no analytics source {slug[:100]!r}", code="source_not_found")
    return source


def _range(start: datetime, end: datetime, interval: Interval = "day") -> None:
    try:
        buckets(start, end, interval)
    except RangeError as e:
        raise ValidationFailed(str(e)) from None


def router() -> APIRouter:
    api = APIRouter(tags=["analytics"])

    # -- sources and write keys ---------------------------------------------------------

    @api.post("/sources", status_code=201, summary="Create a source (and its first write key)")
    async def create_source(body: SourceIn, session: DbSession, _: Admin) -> dict[str, Any]:
        try:
            source = await store.create_source(session, body.slug, body.name or body.slug)
        except store.AlreadyExists:
            raise Conflict(f"source {body.slug!r} exists", code="source_exists") from None
        key = await store.create_key(session, source["id"], new_write_key(), "default")
        return _source_json(source, [key])

    @api.get("/sources", summary="Every source, with its write keys")
    async def list_sources(session: DbSession, _: Admin) -> dict[str, Any]:
        return {
            "sources": [
                _source_json(s, await store.list_keys(session, s["id"]))
                for s in await store.list_sources(session)
            ]
        }

    @api.get("/sources/{slug}", summary="One source, with its write keys")
    async def get_source(slug: str, session: DbSession, _: Admin) -> dict[str, Any]:
        source = await find_source(session, slug)
        return _source_json(source, await store.list_keys(session, source["id"]))

    @api.post("/sources/{slug}/keys", status_code=201, summary="Add a write key")
    async def create_key(slug: str, body: KeyIn, session: DbSession, _: Admin) -> dict[str, Any]:
        source = await find_source(session, slug)
        return _key_json(await store.create_key(session, source["id"], new_write_key(), body.label))

    @api.delete("/sources/{slug}/keys/{write_key}", summary="Revoke a write key")
    async def revoke_key(
        slug: str, write_key: str, session: DbSession, state: State, _: Admin
    ) -> dict[str, Any]:
        source = await find_source(session, slug)
        key = await store.revoke_key(session, source["id"], write_key, datetime.now(UTC))
        if key is None:
            raise NotFound("no such write key in this source", code="write_key_not_found")
        state.keys.pop(write_key)  # this replica stops accepting it at once
        return _key_json(key)

    # -- queries ------------------------------------------------------------------------

    @api.get("/counts", summary="Events and distinct users per hour or day")
    async def counts(
        session: DbSession,
        _: Reader,
        start: Annotated[AwareDatetime, Query(description="Inclusive, ISO 8601 with a zone")],
        end: Annotated[AwareDatetime, Query(description="Exclusive, ISO 8601 with a zone")],
        interval: Annotated[Literal["hour", "day"], Query()] = "day",
        event: Annotated[
            str | None, Query(max_length=512, description="A track event or page/screen name")
        ] = None,
        type: Annotated[MessageType | None, Query()] = None,
        source: Annotated[str | None, Query(max_length=63)] = None,
    ) -> dict[str, Any]:
        _range(start, end, interval)
        source_id = None if source is None else (await find_source(session, source))["id"]
        query = store.CountQuery(start, end, interval, source_id, type, event)
        per_bucket, total = await store.counts(session, query)
        points = series(start, end, interval, per_bucket)
        return {
            "interval": interval,
            "start": start.isoformat(),
            "end": end.isoformat(),
            "event": event,
            "type": type,
            "source": source,
            "total": {"events": total[0], "users": total[1]},
            "buckets": [
                {"start": p.start.isoformat(), "events": p.events, "users": p.users} for p in points
            ],
        }

    @api.get("/events/top", summary="The most frequent events of a range")
    async def top_events(
        session: DbSession,
        _: Reader,
        start: Annotated[AwareDatetime, Query()],
        end: Annotated[AwareDatetime, Query()],
        source: Annotated[str | None, Query(max_length=63)] = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
    ) -> dict[str, Any]:
        _range(start, end)
        source_id = None if source is None else (await find_source(session, source))["id"]
        query = store.CountQuery(start, end, "day", source_id)
        return {"events": await store.top_events(session, query, limit)}

    @api.get("/profiles/{user_id}", summary="A user's profile: merged traits, first/last seen")
    async def get_profile(user_id: str, session: DbSession, _: Reader) -> dict[str, Any]:
        profile = await store.get_profile(session, user_id)
        if profile is None:
            raise NotFound("no analytics profile for this user", code="profile_not_found")
        return {
            "user_id": profile["user_id"],
            "traits": profile["traits"],
            "first_seen": _iso(profile["first_seen"]),
            "last_seen": _iso(profile["last_seen"]),
        }

    return api
