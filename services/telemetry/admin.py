"""The telemetry service's management and query surface (behind the gateway).

Scopes: ``telemetry:admin`` manages projects, DSN keys, issues and debug files; reading
projects (without their keys), issues and release health needs ``telemetry:read`` (or
``telemetry:admin``) — the release controller's identity carries ``telemetry:read``, and so do
the tokens of accounts that hold it (``mobileplane telemetry issues``). The gateway requires a
token on ``/telemetry/projects/`` and forwards the identity; the scopes are checked here.

- ``/telemetry/projects`` — projects (one per app and platform), their DSN keys, rate limits
  and stability targets;
- ``/telemetry/projects/{project}/issues`` — grouped errors (``?status=``, ``?release=``);
  resolve, reopen;

Release health and debug files are in :mod:`.releases`.

``{project}`` is the project's slug or numeric id.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy.ext.asyncio import AsyncSession

from mobileplane.services.kit.db import DbSession
from mobileplane.services.kit.errors import (
    Conflict,
    NotFound,
    ValidationFailed,
)
from mobileplane.services.kit.identity import Identity, require_scope
from mobileplane.services.telemetry import issue_store, store
from mobileplane.services.telemetry.api import State, TelemetryState, dsn
from mobileplane.services.telemetry.health import (
    Target,
)
from mobileplane.services.telemetry.ratelimit import CATEGORIES
from mobileplane.services.telemetry.settings import Platform

ADMIN_SCOPE = "telemetry:admin"
READ_SCOPE = "telemetry:read"
Admin = Annotated[Identity, require_scope(ADMIN_SCOPE)]
#: Reading (issues, release health, the project list without DSN keys): either scope.
Reader = Annotated[Identity, require_scope(READ_SCOPE, ADMIN_SCOPE)]
RELEASE = r"^[^\s/\\]{1,250}$"
DEBUG_ID = r"^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$"


class TargetsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    crash_free_sessions_target: float | None = Field(default=None, ge=0, le=100)
    crash_free_sessions_critical: float | None = Field(default=None, ge=0, le=100)
    crash_free_users_target: float | None = Field(default=None, ge=0, le=100)
    crash_free_users_critical: float | None = Field(default=None, ge=0, le=100)


def _check_limits(limits: dict[str, int] | None) -> None:
    for category, value in (limits or {}).items():
        if category not in CATEGORIES:
            raise ValueError(f"category_limits: unknown category {category!r}")
        if value < 1:
            raise ValueError("category_limits: limits are items per minute, at least 1")


class ProjectIn(TargetsIn):
    slug: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")
    name: str | None = Field(default=None, max_length=200)
    platform: Platform
    category_limits: dict[str, int] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _limits(self) -> ProjectIn:
        _check_limits(self.category_limits)
        return self


class ProjectPatch(TargetsIn):
    name: str | None = Field(default=None, max_length=200)
    category_limits: dict[str, int] | None = None

    @model_validator(mode="after")
    def _limits(self) -> ProjectPatch:
        _check_limits(self.category_limits)
        return self


class KeyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    label: str = Field(default="", max_length=200)
    rate_limit_per_minute: int | None = Field(default=None, ge=1)


class KeyPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool | None = None
    label: str | None = Field(default=None, max_length=200)
    rate_limit_per_minute: int | None = Field(default=None, ge=1)


class IssuePatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: Literal["resolved", "unresolved"]
    release: str | None = Field(
        default=None, pattern=RELEASE, description="Resolved in this release (resolved only)."
    )


def targets_of(project: dict[str, Any], state: TelemetryState) -> tuple[Target, Target]:
    s = state.settings

    def pick(name: str, default: float) -> float:
        value = project.get(name)
        return default if value is None else float(value)

    sessions = Target(
        pick("crash_free_sessions_target", s.telemetry_crash_free_sessions_target),
        pick("crash_free_sessions_critical", s.telemetry_crash_free_sessions_critical),
    )
    users = Target(
        pick("crash_free_users_target", s.telemetry_crash_free_users_target),
        pick("crash_free_users_critical", s.telemetry_crash_free_users_critical),
    )
    return sessions, users


def _check_targets(project: dict[str, Any], state: TelemetryState) -> None:
    try:
        targets_of(project, state)
    except ValueError as e:
        raise ValidationFailed(f"stability targets: {e}") from None


async def find_project(session: AsyncSession, ref: str) -> dict[str, Any]:
    project = await store.get_project(session, int(ref) if ref.isascii() and ref.isdigit() else ref)
    if project is None:
        raise NotFound(f"no telemetry project {ref!r}", code="project_not_found")
    return project


def _public_url(request: Request, state: TelemetryState) -> str:
    if state.settings.telemetry_public_url:
        return state.settings.telemetry_public_url
    root = str(request.base_url).rstrip("/")
    return root


def _project_json(
    project: dict[str, Any],
    keys: list[dict[str, Any]] | None,
    request: Request,
    state: TelemetryState,
) -> dict[str, Any]:
    """A project as the API shows it; ``keys`` ``None`` leaves the DSN keys out (readers)."""
    sessions, users = targets_of(project, state)
    base = _public_url(request, state)
    out = {
        "id": project["id"],
        "slug": project["slug"],
        "name": project["name"],
        "platform": project["platform"],
        "category_limits": project["category_limits"],
        "targets": {
            "crash_free_sessions": {"target": sessions.target, "critical": sessions.critical},
            "crash_free_users": {"target": users.target, "critical": users.critical},
        },
        "created_at": project["created_at"].isoformat(),
    }
    if keys is not None:
        out["keys"] = [_key_json(k, project, base) for k in keys]
    return out


def _key_json(key: dict[str, Any], project: dict[str, Any], base: str) -> dict[str, Any]:
    return {
        "public_key": key["public_key"],
        "label": key["label"],
        "enabled": key["enabled"],
        "rate_limit_per_minute": key["rate_limit_per_minute"],
        "dsn": dsn(base, key["public_key"], int(project["id"])),
    }


def jsonable(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in row.items()}


def router() -> APIRouter:
    api = APIRouter(tags=["telemetry"])

    # -- projects and keys --------------------------------------------------------------

    @api.post("/projects", status_code=201, summary="Create a project (and its first DSN key)")
    async def create_project(
        body: ProjectIn, request: Request, session: DbSession, state: State, _: Admin
    ) -> dict[str, Any]:
        values = body.model_dump()
        values["name"] = values["name"] or body.slug
        _check_targets(values, state)
        try:
            project = await store.create_project(session, values)
        except store.AlreadyExists:
            raise Conflict(f"project {body.slug!r} exists", code="project_exists") from None
        key = await store.create_key(
            session,
            {"project_id": project["id"], "public_key": secrets.token_hex(16), "label": "default"},
        )
        return _project_json(project, [key], request, state)

    async def _keys(session: AsyncSession, project_id: int, who: Identity) -> Any:
        # DSN keys manage ingestion: shown to admins; a reader sees what to read.
        return await store.list_keys(session, project_id) if who.has_scope(ADMIN_SCOPE) else None

    @api.get("/projects", summary="Every project (with DSN keys for telemetry:admin)")
    async def list_projects(
        request: Request, session: DbSession, state: State, who: Reader
    ) -> dict[str, Any]:
        projects = await store.list_projects(session)
        return {
            "projects": [
                _project_json(p, await _keys(session, p["id"], who), request, state)
                for p in projects
            ]
        }

    @api.get("/projects/{project_ref}", summary="One project (with DSN keys for telemetry:admin)")
    async def get_project(
        project_ref: str, request: Request, session: DbSession, state: State, who: Reader
    ) -> dict[str, Any]:
        project = await find_project(session, project_ref)
        return _project_json(project, await _keys(session, project["id"], who), request, state)

    @api.patch("/projects/{project_ref}", summary="Rename, set rate limits or targets")
    async def patch_project(
        project_ref: str,
        body: ProjectPatch,
        request: Request,
        session: DbSession,
        state: State,
        _: Admin,
    ) -> dict[str, Any]:
        project = await find_project(session, project_ref)
        values = body.model_dump(exclude_unset=True)
        if values.get("name") is None:
            values.pop("name", None)
        if "category_limits" in values and values["category_limits"] is None:
            values["category_limits"] = {}
        _check_targets({**project, **values}, state)
        if values:
            project = await store.update_project(session, project["id"], values)
        return _project_json(project, await store.list_keys(session, project["id"]), request, state)

    @api.post("/projects/{project_ref}/keys", status_code=201, summary="Add a DSN key")
    async def create_key(
        project_ref: str,
        body: KeyIn,
        request: Request,
        session: DbSession,
        state: State,
        _: Admin,
    ) -> dict[str, Any]:
        project = await find_project(session, project_ref)
        key = await store.create_key(
            session,
            {"project_id": project["id"], "public_key": secrets.token_hex(16), **body.model_dump()},
        )
        return _key_json(key, project, _public_url(request, state))

    @api.patch("/projects/{project_ref}/keys/{public_key}", summary="Enable, disable, limit")
    async def patch_key(
        project_ref: str,
        public_key: str,
        body: KeyPatch,
        request: Request,
        session: DbSession,
        state: State,
        _: Admin,
    ) -> dict[str, Any]:
        project = await find_project(session, project_ref)
        values = {k: v for k, v in body.model_dump(exclude_unset=True).items()}
        if values.get("enabled") is None:
            values.pop("enabled", None)
        if values.get("label") is None:
            values.pop("label", None)
        key = (
            await store.update_key(session, project["id"], public_key, values)
            if values
            else next(
                (
                    k
                    for k in await store.list_keys(session, project["id"])
                    if k["public_key"] == public_key
                ),
                None,
            )
        )
        if key is None:
            raise NotFound("no such DSN key in this project", code="key_not_found")
        return _key_json(key, project, _public_url(request, state))

    # -- issues -------------------------------------------------------------------------

    @api.get("/projects/{project_ref}/issues", summary="Issues, most recently seen first")
    async def list_issues(
        project_ref: str,
        session: DbSession,
        _: Reader,
        status: Annotated[Literal["resolved", "unresolved"] | None, Query()] = None,
        release: Annotated[
            str | None, Query(pattern=RELEASE, description="Only issues seen in this release.")
        ] = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 100,
    ) -> dict[str, Any]:
        project = await find_project(session, project_ref)
        issues = await issue_store.list_issues(
            session, project["id"], status=status, release=release, limit=limit
        )
        return {"issues": [jsonable(i) for i in issues]}

    @api.get("/projects/{project_ref}/issues/{issue_id}", summary="One issue, with its releases")
    async def get_issue(
        project_ref: str, issue_id: int, session: DbSession, _: Reader
    ) -> dict[str, Any]:
        project = await find_project(session, project_ref)
        issue = await issue_store.get_issue(session, project["id"], issue_id)
        if issue is None:
            raise NotFound(f"no issue {issue_id}", code="issue_not_found")
        issue["releases"] = [jsonable(r) for r in issue["releases"]]
        return jsonable(issue)

    @api.get("/projects/{project_ref}/issues/{issue_id}/events", summary="An issue's events")
    async def issue_events(
        project_ref: str,
        issue_id: int,
        session: DbSession,
        _: Reader,
        limit: Annotated[int, Query(ge=1, le=100)] = 20,
    ) -> dict[str, Any]:
        project = await find_project(session, project_ref)
        events = await issue_store.list_events(session, project["id"], issue_id, limit)
        return {"events": [jsonable(e) for e in events]}

    @api.patch("/projects/{project_ref}/issues/{issue_id}", summary="Resolve or reopen")
    async def patch_issue(
        project_ref: str, issue_id: int, body: IssuePatch, session: DbSession, _: Admin
    ) -> dict[str, Any]:
        if body.status == "unresolved" and body.release is not None:
            raise ValidationFailed("release is only meaningful when resolving")
        project = await find_project(session, project_ref)
        found = await issue_store.set_issue_status(
            session,
            project["id"],
            issue_id,
            status=body.status,
            release=body.release,
            now=datetime.now(UTC),
        )
        if not found:
            raise NotFound(f"no issue {issue_id}", code="issue_not_found")
        issue = await issue_store.get_issue(session, project["id"], issue_id)
        assert issue is not None
        issue["releases"] = [jsonable(r) for r in issue["releases"]]
        return jsonable(issue)

    return api
