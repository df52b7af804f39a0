"""The app-config service's HTTP surface.

Apps (public, no token: an app reads it before anyone signs in):
``GET /appconfig/{app}[?platform=ios&version=2.4.0]`` — the app's document (see
:mod:`.document`), and with ``platform`` and ``version`` what that install must do. Strong
ETag, ``If-None-Match`` → 304, ``Cache-Control: public, max-age=APPCONFIG_MAX_AGE_SECONDS``.

Writers (scope ``appconfig:write``; the release controller, release managers):
``PATCH /appconfig/{app}/platforms/{platform}`` (latest / minimum supported version),
``PUT|DELETE /appconfig/{app}/platforms/{platform}/halted/{version}`` (halt / un-halt a
version), ``PUT|DELETE /appconfig/{app}/kill-switches/{name}``. Every write is idempotent, so
a controller that retries after a lost answer changes nothing twice.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, Path, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from mobileplane.services.appconfig import store
from mobileplane.services.appconfig.document import (
    NAME,
    VERSION,
    client_status,
    document,
    etag_for,
    none_match,
    older,
)
from mobileplane.services.appconfig.settings import AppConfigSettings
from mobileplane.services.kit.db import DbSession
from mobileplane.services.kit.errors import BadRequest, NotFound, ValidationFailed
from mobileplane.services.kit.identity import Identity, require_scope

WRITE_SCOPE = "appconfig:write"
Writer = Annotated[Identity, require_scope(WRITE_SCOPE)]
AppName = Annotated[str, Path(pattern=NAME, description="The app (its MobilePlatform's name).")]
PlatformName = Annotated[Literal["ios", "android"], Path(description="ios or android.")]
VersionName = Annotated[str, Path(pattern=VERSION)]
SwitchName = Annotated[str, Path(pattern=NAME)]


@dataclass
class AppConfigState:
    settings: AppConfigSettings


def get_state(request: Request) -> AppConfigState:
    state = getattr(request.app.state, "appconfig", None)
    if not isinstance(state, AppConfigState):
        raise RuntimeError("the app-config service was not started (no app.state.appconfig)")
    return state


State = Annotated[AppConfigState, Depends(get_state)]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class VersionsIn(_In):
    latest_version: str | None = Field(default=None, pattern=VERSION)
    min_supported_version: str | None = Field(default=None, pattern=VERSION)


class HaltIn(_In):
    reason: str = Field(min_length=1, max_length=2000)


class KillSwitchIn(_In):
    enabled: bool
    message: str = Field(default="", max_length=2000)


def router() -> APIRouter:
    r = APIRouter(tags=["appconfig"])

    @r.get("/{app}", summary="What an app is told at start (public)")
    async def read(
        app: AppName,
        session: DbSession,
        state: State,
        platform: Annotated[Literal["ios", "android"] | None, Query()] = None,
        version: Annotated[str | None, Query(pattern=VERSION)] = None,
        if_none_match: Annotated[str | None, Header()] = None,
    ) -> Response:
        if (platform is None) != (version is None):
            raise BadRequest(
                "Pass both platform and version (or neither)", code="platform_and_version"
            )
        rows = await store.load(session, app)
        if not any(rows):
            raise NotFound(f"No configuration for app {app!r}", code="app_not_found")
        doc = document(app, *rows)
        if platform is not None and version is not None:
            doc["client"] = client_status(doc, platform, version)
        body = json.dumps(doc, separators=(",", ":")).encode()
        etag = etag_for(body)
        headers = {
            "etag": etag,
            "cache-control": f"public, max-age={state.settings.appconfig_max_age_seconds}",
            "vary": "accept-encoding",
        }
        if none_match(if_none_match, etag):
            return Response(status_code=304, headers=headers)
        return Response(body, media_type="application/json", headers=headers)

    @r.patch("/{app}/platforms/{platform}", summary="Set latest / minimum supported version")
    async def set_versions(
        app: AppName, platform: PlatformName, body: VersionsIn, session: DbSession, _: Writer
    ) -> dict[str, Any]:
        values = body.model_dump(exclude_unset=True)
        if not values:
            raise BadRequest(
                "Nothing to change: send latest_version and/or min_supported_version",
                code="empty_patch",
            )
        await store.set_versions(session, app, platform, values)
        rows, _h, _k = await store.load(session, app)
        row = next(r for r in rows if r.platform == platform)
        if (
            row.latest_version
            and row.min_supported_version
            and older(row.latest_version, row.min_supported_version)
        ):
            raise ValidationFailed(
                f"min_supported_version {row.min_supported_version} is newer than "
                f"latest_version {row.latest_version}",
                code="minimum_above_latest",
            )
        return {
            "app": app,
            "platform": platform,
            "latest_version": row.latest_version,
            "min_supported_version": row.min_supported_version,
        }

    @r.put("/{app}/platforms/{platform}/halted/{version}", summary="Halt a version")
    async def halt(
        app: AppName,
        platform: PlatformName,
        version: VersionName,
        body: HaltIn,
        session: DbSession,
        who: Writer,
    ) -> dict[str, Any]:
        changed = await store.halt(session, app, platform, version, body.reason, who.subject)
        return {
            "app": app,
            "platform": platform,
            "version": version,
            "halted": True,
            "changed": changed,
        }

    @r.delete("/{app}/platforms/{platform}/halted/{version}", summary="Un-halt a version")
    async def unhalt(
        app: AppName, platform: PlatformName, version: VersionName, session: DbSession, _: Writer
    ) -> dict[str, Any]:
        changed = await store.unhalt(session, app, platform, version)
        return {
            "app": app,
            "platform": platform,
            "version": version,
            "halted": False,
            "changed": changed,
        }

    @r.put("/{app}/kill-switches/{name}", summary="Set a kill switch")
    async def set_switch(
        app: AppName, name: SwitchName, body: KillSwitchIn, session: DbSession, _: Writer
    ) -> dict[str, Any]:
        await store.set_kill_switch(session, app, name, body.enabled, body.message)
        return {"app": app, "name": name, "enabled": body.enabled, "message": body.message}

    @r.delete("/{app}/kill-switches/{name}", summary="Remove a kill switch")
    async def delete_switch(
        app: AppName, name: SwitchName, session: DbSession, _: Writer
    ) -> dict[str, Any]:
        if not await store.delete_kill_switch(session, app, name):
            raise NotFound(f"No kill switch {name!r} for app {app!r}", code="kill_switch_not_found")
        return {"app": app, "name": name, "deleted": True}

    return r
