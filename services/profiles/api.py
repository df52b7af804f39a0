"""The profiles service's HTTP surface (scope ``profiles``), under ``/profiles``.

- ``GET /me``: the caller's profile, created at their first authenticated request (with a
  ``profile.created`` event, once). Strong ``ETag``; ``If-None-Match`` gets 304.
- ``PATCH /me``: a JSON Merge Patch (RFC 7396) of the editable members (:mod:`.document`);
  ``If-Match`` required (428 without it, 412 on a lost update); 422 lists every failing path.
- Avatar, in two steps like the content service's media: ``POST /me/avatar/uploads`` declares
  type, size and SHA-256 and gets a presigned PUT; ``POST /me/avatar/uploads/{id}/complete``
  verifies the stored object against all three (a mismatch deletes it) and makes it the
  avatar. ``GET /me/avatar`` redirects (307) to a short-lived presigned GET; ``DELETE`` removes.
- GDPR: ``GET /me/export`` returns what every service holds about the caller;
  ``DELETE /me`` erases it in every service in one transaction (and the avatar objects), and
  emits ``profile.deleted``.
- ``GET /users/{subject}``: the public part of someone's profile (display name, avatar link).

Every change writes its event to the outbox in the request's transaction; after the commit the
relay is woken to publish it (:mod:`.outbox`).
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Header, Path, Request, Response
from fastapi.responses import JSONResponse, RedirectResponse
from pydantic import BaseModel, ConfigDict, Field
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession

from mobileplane.services.kit.app import get_keyspace
from mobileplane.services.kit.db import DbSession
from mobileplane.services.kit.errors import (
    BadRequest,
    NotFound,
    ServiceError,
    Unavailable,
    ValidationFailed,
)
from mobileplane.services.kit.identity import Identity, require_scope
from mobileplane.services.kit.privacy import erase_subject, export_subject, get_subject_stores
from mobileplane.services.kit.redis import KeySpace, get_redis
from mobileplane.services.kit.revocation import announce_pending
from mobileplane.services.kit.s3 import ObjectNotFound, S3Gateway
from mobileplane.services.kit.uploads import upload_mismatches
from mobileplane.services.profiles import store
from mobileplane.services.profiles.conditional import (
    Precondition,
    check_if_match,
    etag_for,
    none_match,
)
from mobileplane.services.profiles.document import (
    EDITABLE,
    BadDocument,
    apply_patch,
    parse_body,
)
from mobileplane.services.profiles.events import DELETED, new_event
from mobileplane.services.profiles.outbox import OutboxRelay
from mobileplane.services.profiles.settings import ProfilesSettings
from mobileplane.services.profiles.settings_schema import SettingsSchema

log = logging.getLogger("mobileplane.profiles")

User = Annotated[Identity, require_scope("profiles")]
MERGE_PATCH = "application/merge-patch+json"
PATCH_TYPES = (MERGE_PATCH, "application/json")
#: A patch is a few preferences; 64 KiB leaves room for the 16 KiB settings plus escaping.
MAX_PATCH_BYTES = 64 * 1024
#: Subjects in paths: what a token's ``sub`` can be (printable, bounded).
SUBJECT = r"^[^\x00-\x1f\x7f]{1,255}$"
ME = "/profiles/me"


class PreconditionFailed(ServiceError):
    status_code = 412
    code = "precondition_failed"


class PreconditionRequired(ServiceError):
    status_code = 428
    code = "precondition_required"


class UnsupportedMediaType(ServiceError):
    status_code = 415
    code = "unsupported_media_type"


class PayloadTooLarge(ServiceError):
    status_code = 413
    code = "payload_too_large"


@dataclass
class ProfilesState:
    settings: ProfilesSettings
    schema: SettingsSchema
    time_zones: Collection[str]
    relay: OutboxRelay
    s3: S3Gateway | None


def get_state(request: Request) -> ProfilesState:
    state = getattr(request.app.state, "profiles", None)
    if not isinstance(state, ProfilesState):
        raise RuntimeError("the profiles service was not started (no app.state.profiles)")
    return state


State = Annotated[ProfilesState, Depends(get_state)]
RedisDep = Annotated[Redis, Depends(get_redis)]
Keys = Annotated[KeySpace, Depends(get_keyspace)]


class AvatarIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    content_type: str = Field(max_length=100)
    size: int = Field(ge=1, description="Bytes of the image.")
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$", description="Hex SHA-256 of the bytes.")


class ProfilePatch(BaseModel):
    """The members a merge patch may name (documentation of the request body)."""

    model_config = ConfigDict(extra="forbid")

    display_name: str | None = Field(default=None, max_length=100)
    locale: str | None = Field(default=None, max_length=35, examples=["pt-BR"])
    time_zone: str | None = Field(default=None, max_length=64, examples=["Europe/Paris"])
    settings: dict[str, Any] | None = None


_PATCH_BODY = {"schema": ProfilePatch.model_json_schema()}


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def view(profile: Mapping[str, Any]) -> dict[str, Any]:
    """The owner's representation of a profile."""
    avatar = None
    if profile["avatar_key"]:
        avatar = {
            "url": f"{ME}/avatar",
            "content_type": profile["avatar_content_type"],
            "size": profile["avatar_size"],
            "sha256": profile["avatar_sha256"],
            "updated_at": _iso(profile["avatar_updated_at"]),
        }
    return {
        "subject": profile["subject"],
        "display_name": profile["display_name"],
        "locale": profile["locale"],
        "time_zone": profile["time_zone"],
        "settings": profile["settings"],
        "avatar": avatar,
        "version": profile["version"],
        "created_at": _iso(profile["created_at"]),
        "updated_at": _iso(profile["updated_at"]),
    }


def public_view(profile: Mapping[str, Any]) -> dict[str, Any]:
    """What any signed-in user may see of someone's profile."""
    subject = profile["subject"]
    return {
        "subject": subject,
        "display_name": profile["display_name"],
        "avatar_url": (
            f"/profiles/users/{quote(subject, safe='')}/avatar" if profile["avatar_key"] else None
        ),
    }


def _encode(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _tag(profile: Mapping[str, Any]) -> tuple[bytes, str]:
    body = _encode(view(profile))
    return body, etag_for(body)


def _profile_response(profile: Mapping[str, Any], status_code: int = 200) -> Response:
    body, etag = _tag(profile)
    return Response(
        content=body,
        status_code=status_code,
        media_type="application/json",
        headers={"ETag": etag, "Cache-Control": "private, no-cache"},
    )


def _require(if_match: str | None, profile: Mapping[str, Any], *, required: bool = True) -> None:
    outcome = check_if_match(if_match, _tag(profile)[1], required=required)
    if outcome is Precondition.MISSING:
        raise PreconditionRequired(
            "send If-Match with the ETag of the profile you read, so no change is lost"
        )
    if outcome is Precondition.FAILED:
        raise PreconditionFailed("the profile changed since you read it: read it again")


def _now() -> datetime:
    return datetime.now(UTC)


def _s3(state: ProfilesState) -> tuple[S3Gateway, str]:
    bucket = state.settings.profiles_avatar_bucket
    if state.s3 is None or not bucket:
        raise Unavailable("avatar storage is not configured (PROFILES_AVATAR_BUCKET)")
    return state.s3, bucket


async def _commit(session: AsyncSession, state: ProfilesState) -> None:
    """Commit now (so the response reflects a durable change) and wake the relay."""
    await session.commit()
    state.relay.wake()


async def _delete_objects(s3: S3Gateway, bucket: str, keys: Collection[str]) -> None:
    for key in keys:
        await s3.delete_object(bucket, key)


def router() -> APIRouter:
    api = APIRouter(tags=["profiles"])

    @api.get("/me", summary="The caller's profile (created at the first request)")
    async def read_me(request: Request, session: DbSession, state: State, user: User) -> Response:
        profile, created = await store.ensure_profile(session, user.subject, _now())
        if created:
            await _commit(session, state)
        body, etag = _tag(profile)
        headers = {"ETag": etag, "Cache-Control": "private, no-cache"}
        if none_match(request.headers.get("if-none-match"), etag):
            return Response(status_code=304, headers=headers)
        return Response(content=body, media_type="application/json", headers=headers)

    @api.patch(
        "/me",
        summary="Change the caller's profile (JSON Merge Patch; If-Match required)",
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {MERGE_PATCH: _PATCH_BODY, "application/json": _PATCH_BODY},
            }
        },
    )
    async def patch_me(
        request: Request,
        session: DbSession,
        state: State,
        user: User,
        if_match: Annotated[str | None, Header()] = None,
    ) -> Response:
        media_type = (request.headers.get("content-type") or "").split(";")[0].strip().lower()
        if media_type not in PATCH_TYPES:
            raise UnsupportedMediaType(f"send the patch as {' or '.join(PATCH_TYPES)}")
        raw = await request.body()
        if len(raw) > MAX_PATCH_BYTES:
            raise PayloadTooLarge(f"a profile patch is at most {MAX_PATCH_BYTES} bytes")
        try:
            patch = parse_body(raw)
        except BadDocument as e:
            raise BadRequest(f"the body is not a usable JSON document: {e}") from None
        profile, _ = await store.ensure_profile(session, user.subject, _now(), lock=True)
        _require(if_match, profile)
        result = apply_patch(
            {name: profile[name] for name in EDITABLE},
            patch,
            schema=state.schema,
            time_zones=state.time_zones,
        )
        if not result.ok:
            raise ValidationFailed(
                "the patched profile is invalid: "
                + "; ".join(f"{p.path or '/'} {p.message}" for p in result.problems[:5]),
                details=[p.as_dict() for p in result.problems],
            )
        if result.changed:
            values = {name: result.document[name] for name in result.changed}
            profile = await store.update_profile(
                session, user.subject, values, result.changed, _now()
            )
        await _commit(session, state)
        return _profile_response(profile)

    @api.post("/me/avatar/uploads", status_code=201, summary="Start an avatar upload")
    async def start_upload(
        body: AvatarIn, session: DbSession, state: State, user: User
    ) -> dict[str, Any]:
        s3, bucket = _s3(state)
        settings = state.settings
        if body.content_type not in settings.profiles_avatar_types:
            raise ValidationFailed(
                "this content type is not accepted for avatars; accepted: "
                + ", ".join(settings.profiles_avatar_types)
            )
        if body.size > settings.profiles_avatar_max_bytes:
            raise ValidationFailed(
                f"an avatar is at most {settings.profiles_avatar_max_bytes} bytes"
            )
        await store.ensure_profile(session, user.subject, _now(), lock=True)
        # One upload at a time per user: starting one abandons an unfinished one.
        abandoned = await store.abandon_uploads(session, user.subject)
        upload_id = str(uuid.uuid4())
        key = f"profiles/avatars/{upload_id}"
        await store.create_upload(
            session,
            {
                "id": upload_id,
                "subject": user.subject,
                "key": key,
                "content_type": body.content_type,
                "size": body.size,
                "sha256": body.sha256,
            },
        )
        await _delete_objects(s3, bucket, abandoned)
        ttl = settings.profiles_url_ttl_seconds
        url = s3.presigned_put_url(bucket, key, content_type=body.content_type, expires_in=ttl)
        return {
            "id": upload_id,
            "upload": {"method": "PUT", "url": url, "headers": {"Content-Type": body.content_type}},
            "complete": f"{ME}/avatar/uploads/{upload_id}/complete",
            "expires_in": ttl,
        }

    @api.post(
        "/me/avatar/uploads/{upload_id}/complete",
        summary="Verify the uploaded image and make it the avatar",
    )
    async def complete_upload(
        upload_id: Annotated[str, Path(max_length=36)],
        session: DbSession,
        state: State,
        user: User,
        if_match: Annotated[str | None, Header()] = None,
    ) -> Response:
        s3, bucket = _s3(state)
        # Lock order everywhere: the profile, then its uploads (as erasure does).
        profile, _ = await store.ensure_profile(session, user.subject, _now(), lock=True)
        upload = await store.get_upload(session, user.subject, upload_id, lock=True)
        if upload is None:
            raise NotFound("no such avatar upload (it may have been replaced by a newer one)")
        _require(if_match, profile, required=False)
        try:
            stored = await s3.get_object(bucket, upload["key"])
        except ObjectNotFound:
            raise ValidationFailed(
                "nothing was uploaded yet: PUT the image to the upload URL"
            ) from None
        problems = upload_mismatches(
            stored.body,
            stored.info.content_type,
            size=upload["size"],
            content_type=upload["content_type"],
            sha256=upload["sha256"],
        )
        if problems:
            await s3.delete_object(bucket, upload["key"])
            raise ValidationFailed(
                "the uploaded image does not match what was declared: "
                + "; ".join(problems)
                + " (it was deleted: PUT it again or start a new upload)"
            )
        previous = profile["avatar_key"]
        profile = await store.update_profile(
            session,
            user.subject,
            {
                "avatar_key": upload["key"],
                "avatar_content_type": upload["content_type"],
                "avatar_size": upload["size"],
                "avatar_sha256": upload["sha256"],
                "avatar_updated_at": _now(),
            },
            ("avatar",),
            _now(),
        )
        await store.delete_upload(session, upload_id)
        await _commit(session, state)
        if previous:
            await _forget_object(s3, bucket, previous)
        return _profile_response(profile)

    @api.get(
        "/me/avatar",
        status_code=307,
        response_class=RedirectResponse,
        summary="The caller's avatar (redirect to a short-lived URL)",
    )
    async def my_avatar(session: DbSession, state: State, user: User) -> Response:
        return await _avatar_redirect(session, state, user.subject)

    @api.delete("/me/avatar", summary="Remove the caller's avatar")
    async def remove_avatar(
        session: DbSession,
        state: State,
        user: User,
        if_match: Annotated[str | None, Header()] = None,
    ) -> Response:
        s3, bucket = _s3(state)
        profile, _ = await store.ensure_profile(session, user.subject, _now(), lock=True)
        _require(if_match, profile, required=False)
        previous = profile["avatar_key"]
        if previous:
            cleared = dict.fromkeys(
                (*store.AVATAR_COLUMNS, "avatar_updated_at"),
            )
            profile = await store.update_profile(
                session, user.subject, cleared, ("avatar",), _now()
            )
        await _commit(session, state)
        if previous:
            await _forget_object(s3, bucket, previous)
        return _profile_response(profile)

    @api.get("/me/export", summary="Everything the platform holds about the caller (GDPR)")
    async def export_me(request: Request, session: DbSession, user: User) -> JSONResponse:
        stores = get_subject_stores(request)
        services = await export_subject(session, stores, user.subject)
        return JSONResponse(
            {"subject": user.subject, "exported_at": _now().isoformat(), "services": services},
            headers={"Cache-Control": "no-store"},
        )

    @api.delete("/me", summary="Erase everything the platform holds about the caller (GDPR)")
    async def erase_me(
        request: Request,
        session: DbSession,
        state: State,
        user: User,
        redis: RedisDep,
        keyspace: Keys,
    ) -> dict[str, Any]:
        stores = get_subject_stores(request)
        keys = await store.object_keys(session, user.subject)
        erased = await erase_subject(session, stores, user.subject)
        await store.add_event(session, new_event(DELETED, user.subject, _now()))
        # Before the commit, like the objects below: the user's access tokens stop working
        # at the gateway now, or nothing is erased and the user retries (503).
        await announce_pending(redis, keyspace, session)
        if keys:
            # Before the commit: if storage refuses, nothing is erased and the user retries.
            s3, bucket = _s3(state)
            await _delete_objects(s3, bucket, keys)
        await _commit(session, state)
        return {"subject": user.subject, "erased": erased, "objects_deleted": len(keys)}

    @api.get("/users/{subject}", summary="The public part of a user's profile")
    async def public_profile(
        subject: Annotated[str, Path(pattern=SUBJECT)], session: DbSession, _: User
    ) -> dict[str, Any]:
        profile = await store.get_profile(session, subject)
        if profile is None:
            raise NotFound("no profile for this user")
        return public_view(profile)

    @api.get(
        "/users/{subject}/avatar",
        status_code=307,
        response_class=RedirectResponse,
        summary="A user's avatar (redirect to a short-lived URL)",
    )
    async def user_avatar(
        subject: Annotated[str, Path(pattern=SUBJECT)], session: DbSession, state: State, _: User
    ) -> Response:
        return await _avatar_redirect(session, state, subject)

    return api


async def _avatar_redirect(session: AsyncSession, state: ProfilesState, subject: str) -> Response:
    s3, bucket = _s3(state)
    profile = await store.get_profile(session, subject)
    if profile is None or not profile["avatar_key"]:
        raise NotFound("this user has no avatar")
    ttl = state.settings.profiles_url_ttl_seconds
    url = s3.presigned_get_url(bucket, profile["avatar_key"], expires_in=ttl)
    return RedirectResponse(url, status_code=307, headers={"Cache-Control": "private, max-age=60"})


async def _forget_object(s3: S3Gateway, bucket: str, key: str) -> None:
    """Delete a replaced avatar after the commit; a failure leaves an orphan, logged."""
    try:
        await s3.delete_object(bucket, key)
    except ServiceError:
        log.warning("could not delete a replaced avatar object", extra={"key": key})
