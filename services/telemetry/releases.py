"""Per-release routes: release health (the release controller's input) and debug files.

- ``GET /telemetry/projects/{project}/releases/{release}/health?window=&baseline=`` — sessions,
  crash-free sessions and users with Wilson intervals and sample sizes, adoption and the
  stability targets, for a release and a baseline release (scope ``telemetry:read``);
- ``GET /telemetry/projects/{project}/releases`` — the same for the releases seen recently;
- ``PUT …/releases/{release}/proguard`` and ``PUT …/dsyms/{debug_id}`` — debug files to S3
  (scope ``telemetry:admin``; 503 without ``TELEMETRY_ARTIFACTS_BUCKET``).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from sqlalchemy.ext.asyncio import AsyncSession

from mobileplane.services.kit.db import DbSession
from mobileplane.services.kit.errors import Unavailable, ValidationFailed
from mobileplane.services.telemetry import session_store, store
from mobileplane.services.telemetry.admin import (
    DEBUG_ID,
    Admin,
    Reader,
    find_project,
    jsonable,
    targets_of,
)
from mobileplane.services.telemetry.api import State, TelemetryState, read_body
from mobileplane.services.telemetry.artifacts import Artifacts
from mobileplane.services.telemetry.health import health_json, parse_window, release_health
from mobileplane.services.telemetry.proguard import MappingError, parse_mapping


def router() -> APIRouter:
    api = APIRouter(tags=["telemetry releases"])

    # -- release health -----------------------------------------------------------------

    def _window(window: str, end: datetime | None, environment: str | None) -> session_store.Window:
        try:
            seconds = parse_window(window)
        except ValueError as e:
            raise ValidationFailed(str(e)) from None
        stop = end or datetime.now(UTC)
        if stop.tzinfo is None:
            stop = stop.replace(tzinfo=UTC)
        return session_store.Window(stop - timedelta(seconds=seconds), stop, environment)

    async def _health(
        session: AsyncSession,
        project: dict[str, Any],
        state: TelemetryState,
        window: session_store.Window,
        release: str,
    ) -> dict[str, Any]:
        sessions_target, users_target = targets_of(project, state)
        counts = await session_store.session_counts(session, project["id"], window, release)
        everyone = await session_store.session_counts(session, project["id"], window, None)
        health = release_health(
            counts,
            project_sessions=everyone.total,
            project_users=everyone.users,
            sessions_target=sessions_target,
            users_target=users_target,
        )
        return health_json(release, health)

    def _envelope(
        project: dict[str, Any], state: TelemetryState, window: session_store.Window, duration: str
    ) -> dict[str, Any]:
        sessions, users = targets_of(project, state)
        return {
            "project": {"id": project["id"], "slug": project["slug"]},
            "environment": window.environment,
            "window": {
                "start": window.start.isoformat(),
                "end": window.end.isoformat(),
                "duration": duration,
            },
            "targets": {
                "crash_free_sessions": {"target": sessions.target, "critical": sessions.critical},
                "crash_free_users": {"target": users.target, "critical": users.critical},
            },
        }

    @api.get(
        "/projects/{project_ref}/releases/{release:path}/health",
        summary="Release health over a window, with a baseline release (release controller)",
    )
    async def release_health_endpoint(
        project_ref: str,
        release: str,
        session: DbSession,
        state: State,
        _: Reader,
        window: str = "24h",
        baseline: Annotated[str | None, Query(max_length=250)] = None,
        environment: Annotated[str | None, Query(max_length=64)] = None,
        end: datetime | None = None,
    ) -> dict[str, Any]:
        project = await find_project(session, project_ref)
        span = _window(window, end, environment)
        out = _envelope(project, state, span, window)
        out["release"] = await _health(session, project, state, span, release)
        out["baseline"] = (
            await _health(session, project, state, span, baseline) if baseline else None
        )
        return out

    @api.get("/projects/{project_ref}/releases", summary="Health of the releases seen recently")
    async def releases(
        project_ref: str,
        session: DbSession,
        state: State,
        _: Reader,
        window: str = "24h",
        environment: Annotated[str | None, Query(max_length=64)] = None,
        limit: Annotated[int, Query(ge=1, le=100)] = 20,
    ) -> dict[str, Any]:
        project = await find_project(session, project_ref)
        span = _window(window, None, environment)
        out = _envelope(project, state, span, window)
        names = await session_store.releases_seen(session, project["id"], span, limit)
        out["releases"] = [await _health(session, project, state, span, n) for n in names]
        return out

    # -- debug files --------------------------------------------------------------------

    def _artifacts(state: TelemetryState) -> Artifacts:
        if state.artifacts is None:
            raise Unavailable(
                "debug file uploads are not configured: set TELEMETRY_ARTIFACTS_BUCKET",
                code="artifacts_not_configured",
            )
        return state.artifacts

    @api.put(
        "/projects/{project_ref}/releases/{release:path}/proguard",
        status_code=201,
        summary="Upload the release's ProGuard/R8 mapping file",
    )
    async def upload_mapping(
        project_ref: str,
        release: str,
        request: Request,
        session: DbSession,
        state: State,
        _: Admin,
    ) -> dict[str, Any]:
        artifacts = _artifacts(state)
        project = await find_project(session, project_ref)
        if project["platform"] != "android":
            raise ValidationFailed("ProGuard mappings are for android projects")
        if len(release) > 250 or not release.strip():
            raise ValidationFailed("release must be 1-250 characters")
        body = await read_body(request, state.settings.telemetry_max_artifact_bytes)
        try:
            mapping = parse_mapping(body.decode("utf-8"))
        except (UnicodeDecodeError, MappingError) as e:
            raise ValidationFailed(f"not a ProGuard/R8 mapping file: {e}") from None
        row = await artifacts.put(session, project["id"], "proguard", release, body, "text/plain")
        return {**jsonable(row), "classes": len(mapping.classes)}

    @api.put(
        "/projects/{project_ref}/dsyms/{debug_id}",
        status_code=201,
        summary="Upload a dSYM (zip or Mach-O) by debug id; stored, not yet symbolicated",
    )
    async def upload_dsym(
        project_ref: str,
        debug_id: str,
        request: Request,
        session: DbSession,
        state: State,
        _: Admin,
    ) -> dict[str, Any]:
        artifacts = _artifacts(state)
        project = await find_project(session, project_ref)
        if project["platform"] not in ("ios", "cocoa"):
            raise ValidationFailed("dSYMs are for ios projects")
        if not re.fullmatch(DEBUG_ID, debug_id):
            raise ValidationFailed("debug_id must be a UUID (the image's LC_UUID)")
        ident = debug_id.replace("-", "").lower()
        body = await read_body(request, state.settings.telemetry_max_artifact_bytes)
        if not body:
            raise ValidationFailed("the dSYM is empty")
        row = await artifacts.put(
            session, project["id"], "dsym", ident, body, "application/octet-stream"
        )
        return jsonable(row)

    @api.get("/projects/{project_ref}/artifacts", summary="Uploaded debug files")
    async def list_artifacts(project_ref: str, session: DbSession, _: Admin) -> dict[str, Any]:
        project = await find_project(session, project_ref)
        return {
            "artifacts": [jsonable(a) for a in await store.list_artifacts(session, project["id"])]
        }

    return api
