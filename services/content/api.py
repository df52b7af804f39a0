"""The content service's HTTP surface.

Readers (scope ``content``): ``GET /content/items/{slug}``, ``GET /content/feed`` (ranked for
the caller, see :mod:`.ranking`), ``GET /content/media/{id}`` (a redirect to a short-lived
presigned URL). Responses carry strong ETags and ``Cache-Control: private``; ``If-None-Match``
gets 304. Item and feed bodies are cached in Redis (:mod:`.cache`) and invalidated by any write.

Editors (scope ``content`` plus ``content:write``): create, replace (``If-Match`` required:
428 without, 412 on a lost update) and delete items; set a user's audience segments; upload
media in two steps — ask for a presigned PUT (type, size and SHA-256 declared up front and
checked), then confirm, when the service verifies the stored object before anyone can use it.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, Query, Request, Response
from fastapi.responses import RedirectResponse
from pydantic import BaseModel, ConfigDict, Field

from mobileplane.services.content import store
from mobileplane.services.content.cache import ResponseCache
from mobileplane.services.content.etags import etag_for, none_match
from mobileplane.services.content.ranking import UserContext, preferred_locale, rank
from mobileplane.services.content.settings import ContentSettings
from mobileplane.services.kit.db import DbSession, get_database
from mobileplane.services.kit.errors import (
    Conflict,
    Forbidden,
    NotFound,
    ServiceError,
    Unavailable,
    ValidationFailed,
)
from mobileplane.services.kit.identity import Identity, require_scope
from mobileplane.services.kit.s3 import ObjectNotFound, S3Gateway
from mobileplane.services.kit.uploads import upload_mismatches

Reader = Annotated[Identity, require_scope("content")]
WRITE_SCOPE = "content:write"
SLUG = r"^[a-z0-9][a-z0-9-]{0,127}$"


class PreconditionFailed(ServiceError):
    status_code = 412
    code = "precondition_failed"


class PreconditionRequired(ServiceError):
    status_code = 428
    code = "precondition_required"


@dataclass
class ContentState:
    settings: ContentSettings
    cache: ResponseCache
    s3: S3Gateway | None


def get_state(request: Request) -> ContentState:
    state = getattr(request.app.state, "content", None)
    if not isinstance(state, ContentState):
        raise RuntimeError("the content service was not started (no app.state.content)")
    return state


State = Annotated[ContentState, Depends(get_state)]


def editor(identity: Reader) -> Identity:
    if not identity.has_scope(WRITE_SCOPE):
        raise Forbidden(f"Editing content needs the {WRITE_SCOPE!r} scope")
    return identity


Editor = Annotated[Identity, Depends(editor)]


class ItemIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    slug: str = Field(pattern=SLUG)
    kind: Literal["article", "feed", "config"]
    title: str = Field(min_length=1, max_length=300)
    body: dict[str, Any] = Field(default_factory=dict)
    locale: str | None = Field(default=None, pattern=r"^[A-Za-z]{2,3}([-_][A-Za-z0-9]{2,8})*$")
    tags: list[str] = Field(default_factory=list, max_length=50)
    segments: list[str] = Field(default_factory=list, max_length=50)
    priority: int = Field(default=0, ge=0, le=10)
    media: list[str] = Field(default_factory=list, max_length=20)
    published_at: datetime | None = None
    expires_at: datetime | None = None


class MediaIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    content_type: str
    size: int = Field(ge=1)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$", description="Hex SHA-256 of the bytes.")


class AudienceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    segments: list[str] = Field(max_length=100)


def _public(item: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in item.items() if k not in ("segments",)}
    out["id"] = str(out["id"])
    out["media"] = [f"/content/media/{m}" for m in item["media"]]
    return out


def _conditional(request: Request, body: bytes, max_age: int) -> Response:
    etag = etag_for(body)
    headers = {
        "ETag": etag,
        "Cache-Control": f"private, max-age={max_age}",
        "Vary": "Authorization",
    }
    if none_match(request.headers.get("if-none-match"), etag):
        return Response(status_code=304, headers=headers)
    return Response(content=body, media_type="application/json", headers=headers)


def _encode(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str).encode()


def router() -> APIRouter:
    api = APIRouter(tags=["content"])

    async def _check_media(session: DbSession, ids: list[str]) -> None:
        for media_id in ids:
            media = await store.get_media(session, media_id)
            if media is None or media["status"] != "ready":
                raise ValidationFailed(f"media {media_id!r} does not exist or is not uploaded yet")

    def _values(item: ItemIn) -> dict[str, Any]:
        values = item.model_dump()
        if item.published_at and item.expires_at and item.expires_at <= item.published_at:
            raise ValidationFailed("expires_at must be after published_at")
        return values

    @api.post("/items", status_code=201, summary="Create an item (editors)")
    async def create(
        item: ItemIn, session: DbSession, state: State, _: Editor, response: Response
    ) -> dict[str, Any]:
        await _check_media(session, item.media)
        try:
            created = await store.create_item(session, _values(item))
        except store.SlugTaken:
            raise Conflict(f"an item with slug {item.slug!r} exists", code="slug_taken") from None
        await session.commit()
        await state.cache.invalidate()
        public = _public(created)
        response.headers["Location"] = f"/content/items/{item.slug}"
        response.headers["ETag"] = etag_for(_encode(public))
        return public

    @api.put("/items/{slug}", summary="Replace an item (editors; If-Match required)")
    async def replace(
        slug: str,
        item: ItemIn,
        session: DbSession,
        state: State,
        _: Editor,
        response: Response,
        if_match: Annotated[str | None, Header()] = None,
    ) -> dict[str, Any]:
        if not if_match:
            raise PreconditionRequired("send If-Match with the ETag you read, to not lose updates")
        current = await store.get_item(session, slug, lock=True)
        if current is None:
            raise NotFound(f"no item {slug!r}")
        if not none_match(if_match, etag_for(_encode(_public(current)))):
            raise PreconditionFailed("the item changed since you read it: read it again")
        if item.slug != slug:
            raise ValidationFailed("the slug in the body must match the URL")
        await _check_media(session, item.media)
        updated = await store.update_item(session, slug, _values(item))
        await session.commit()
        await state.cache.invalidate()
        public = _public(updated)
        response.headers["ETag"] = etag_for(_encode(public))
        return public

    @api.delete("/items/{slug}", status_code=204, summary="Delete an item (editors)")
    async def remove(slug: str, session: DbSession, state: State, _: Editor) -> Response:
        if not await store.delete_item(session, slug):
            raise NotFound(f"no item {slug!r}")
        await session.commit()
        await state.cache.invalidate()
        return Response(status_code=204)

    @api.put("/audience/{subject}", summary="Set a user's audience segments (editors)")
    async def audience(
        subject: str, body: AudienceIn, session: DbSession, state: State, _: Editor
    ) -> dict[str, Any]:
        await store.set_segments(session, subject, body.segments)
        await session.commit()
        await state.cache.invalidate()
        return {"subject": subject, "segments": sorted(set(body.segments))}

    @api.get("/items/{slug}", summary="One published item")
    async def read(slug: str, request: Request, state: State, _: Reader) -> Response:
        async def load() -> bytes:
            async with get_database(request).transaction() as session:
                item = await store.get_item(session, slug)
            now = datetime.now(UTC)
            if (
                item is None
                or not item["published_at"]
                or datetime.fromisoformat(item["published_at"]) > now
            ):
                return b""
            return _encode(_public(item))

        body = await state.cache.get_or_load(f"item:{slug}", load)
        if not body:
            raise NotFound(f"no published item {slug!r}")
        return _conditional(request, body, state.settings.content_cache_ttl_seconds)

    @api.get("/feed", summary="Published items ranked for the caller")
    async def feed(
        request: Request,
        state: State,
        identity: Reader,
        interests: Annotated[str | None, Query(max_length=1000)] = None,
        limit: Annotated[int, Query(ge=1, le=100)] = 20,
    ) -> Response:
        async def load() -> bytes:
            async with get_database(request).transaction() as session:
                items = await store.published_items(session, datetime.now(UTC))
            return _encode(items)

        candidates = json.loads(await state.cache.get_or_load("published", load))
        async with get_database(request).transaction() as session:
            segments = await store.segments_of(session, identity.subject)
        user = UserContext(
            locale=preferred_locale(request.headers.get("accept-language")),
            interests=frozenset(t.strip() for t in (interests or "").split(",") if t.strip()),
            segments=segments,
        )
        by_id = {str(i["id"]): i for i in candidates}
        ranked = rank([store.as_rankable(i) for i in candidates], user, datetime.now(UTC), limit)
        body = _encode(
            {
                "items": [
                    {
                        **_public(by_id[r.item.id]),
                        "score": round(r.score, 4),
                        "why": list(r.reasons),
                    }
                    for r in ranked
                ]
            }
        )
        return _conditional(request, body, state.settings.content_cache_ttl_seconds)

    def _s3(state: ContentState) -> tuple[S3Gateway, str]:
        if state.s3 is None or not state.settings.content_media_bucket:
            raise Unavailable("media storage is not configured (CONTENT_MEDIA_BUCKET)")
        return state.s3, state.settings.content_media_bucket

    @api.post("/media", status_code=201, summary="Start a media upload (editors)")
    async def start_upload(
        body: MediaIn, session: DbSession, state: State, identity: Editor
    ) -> dict[str, Any]:
        s3, bucket = _s3(state)
        settings = state.settings
        if body.content_type not in settings.content_media_types:
            raise ValidationFailed(
                f"content type {body.content_type!r} is not accepted; accepted: "
                + ", ".join(settings.content_media_types)
            )
        if body.size > settings.content_media_max_bytes:
            raise ValidationFailed(f"at most {settings.content_media_max_bytes} bytes per file")
        media_id = str(uuid.uuid4())
        key = f"content/{media_id}"
        await store.create_media(
            session,
            {
                "id": media_id,
                "key": key,
                "content_type": body.content_type,
                "size": body.size,
                "sha256": body.sha256,
                "created_by": identity.subject,
            },
        )
        url = s3.presigned_put_url(
            bucket, key, content_type=body.content_type, expires_in=settings.content_url_ttl_seconds
        )
        return {
            "id": media_id,
            "upload": {"method": "PUT", "url": url, "headers": {"Content-Type": body.content_type}},
            "expires_in": settings.content_url_ttl_seconds,
        }

    @api.post("/media/{media_id}/complete", summary="Verify an uploaded file (editors)")
    async def complete_upload(
        media_id: str, session: DbSession, state: State, _: Editor
    ) -> dict[str, Any]:
        s3, bucket = _s3(state)
        media = await store.get_media(session, media_id)
        if media is None:
            raise NotFound(f"no media {media_id!r}")
        if media["status"] == "ready":
            return {"id": media_id, "status": "ready"}
        try:
            stored = await s3.get_object(bucket, media["key"])
        except ObjectNotFound:
            raise ValidationFailed(
                "nothing was uploaded yet: PUT the file to the upload URL"
            ) from None
        problems = upload_mismatches(
            stored.body,
            stored.info.content_type,
            size=media["size"],
            content_type=media["content_type"],
            sha256=media["sha256"],
        )
        if problems:
            await s3.delete_object(bucket, media["key"])
            raise ValidationFailed(
                "the uploaded file does not match what was declared: "
                + "; ".join(problems)
                + " (it was deleted: start the upload again)"
            )
        await store.mark_ready(session, media_id)
        return {"id": media_id, "status": "ready"}

    @api.get("/media/{media_id}", summary="Download a file (redirect to a short-lived URL)")
    async def download(media_id: str, session: DbSession, state: State, _: Reader) -> Response:
        s3, bucket = _s3(state)
        media = await store.get_media(session, media_id)
        if media is None or media["status"] != "ready":
            raise NotFound(f"no media {media_id!r}")
        url = s3.presigned_get_url(
            bucket, media["key"], expires_in=state.settings.content_url_ttl_seconds
        )
        return RedirectResponse(
            url, status_code=307, headers={"Cache-Control": "private, max-age=60"}
        )

    return api
