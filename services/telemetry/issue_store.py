"""Events and issues in Postgres: an error event stored once, counted into its issue.

An event's issue is found (or created) and locked by one upsert; the event row and what it
adds to the issue — event count, first and last seen, last release, regression, affected user,
per-release counts — are written by one statement whose counters move only if the event row
is new, so a retried event changes nothing.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, DateTime, Text, bindparam, func, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from mobileplane.services.telemetry import models as m
from mobileplane.services.telemetry.fingerprint import Fingerprint
from mobileplane.services.telemetry.versions import is_regression


def _row(row: Any) -> dict[str, Any]:
    return dict(row._mapping)


@dataclass(frozen=True)
class EventRecord:
    project_id: int
    event_id: str
    fingerprint: Fingerprint
    title: str
    culprit: str | None
    level: str
    release: str | None
    environment: str | None
    user_key: str | None
    handled: bool | None
    timestamp: datetime
    payload: Mapping[str, Any]


async def store_event(session: AsyncSession, record: EventRecord) -> bool:
    """Store an error event and count it into its issue; ``False`` if it was stored before."""
    issues = m.issues
    fp = record.fingerprint
    # One statement inserts the issue or locks the existing one (a no-op DO UPDATE takes the
    # row lock), returning what the regression check needs.
    upsert = pg_insert(issues).values(
        project_id=record.project_id,
        fingerprint=fp.hash,
        fingerprint_version=fp.version,
        components=list(fp.components),
        title=record.title,
        culprit=record.culprit,
        level=record.level,
        first_seen=record.timestamp,
        last_seen=record.timestamp,
        first_release=record.release,
        last_release=record.release,
    )
    current = (
        await session.execute(
            upsert.on_conflict_do_update(
                constraint="uq_telemetry_issues_fingerprint",
                set_={"fingerprint": upsert.excluded.fingerprint},
            ).returning(
                issues.c.id,
                issues.c.status,
                issues.c.resolved_at,
                issues.c.resolved_in_release,
                issues.c.last_seen,
            )
        )
    ).one()
    issue_id = current.id
    regressed = current.status == "resolved" and is_regression(
        record.release,
        current.resolved_in_release,
        seen_after_resolution=current.resolved_at is None or record.timestamp > current.resolved_at,
    )
    # The event row and everything it adds to its issue in one statement (one round trip):
    # the counters move only if the event row is new, so a retried event changes nothing.
    stored = await session.scalar(
        _STORE_EVENT,
        {
            "project_id": record.project_id,
            "event_id": record.event_id,
            "issue_id": issue_id,
            "level": record.level,
            "release": record.release,
            "environment": record.environment,
            "user_key": record.user_key,
            "handled": record.handled,
            "ts": record.timestamp,
            "payload": json.dumps(record.payload, separators=(",", ":")),
            "regressed": regressed,
        },
    )
    return bool(stored)


_STORE_EVENT = text(
    """
    WITH event AS (
        INSERT INTO telemetry_events (project_id, event_id, issue_id, level, release,
                                      environment, user_key, handled, timestamp, payload)
        VALUES (:project_id, :event_id, :issue_id, :level, :release, :environment, :user_key,
                :handled, :ts, CAST(:payload AS jsonb))
        ON CONFLICT DO NOTHING
        RETURNING issue_id
    ), issue AS (
        UPDATE telemetry_issues SET
            event_count = event_count + 1,
            first_seen = LEAST(first_seen, :ts),
            last_seen = GREATEST(last_seen, :ts),
            last_release = CASE WHEN :ts >= last_seen AND :release IS NOT NULL
                                THEN :release ELSE last_release END,
            status = CASE WHEN :regressed THEN 'unresolved' ELSE status END,
            regressed_at = CASE WHEN :regressed THEN :ts ELSE regressed_at END,
            regressed_in_release = CASE WHEN :regressed THEN :release
                                        ELSE regressed_in_release END
        WHERE id IN (SELECT issue_id FROM event)
    ), users AS (
        INSERT INTO telemetry_issue_users (issue_id, user_key)
        SELECT issue_id, :user_key FROM event WHERE :user_key IS NOT NULL
        ON CONFLICT DO NOTHING
    ), releases AS (
        INSERT INTO telemetry_issue_releases (issue_id, release, first_seen, last_seen,
                                              event_count)
        SELECT issue_id, :release, :ts, :ts, 1 FROM event WHERE :release IS NOT NULL
        ON CONFLICT (issue_id, release) DO UPDATE SET
            event_count = telemetry_issue_releases.event_count + 1,
            first_seen = LEAST(telemetry_issue_releases.first_seen, EXCLUDED.first_seen),
            last_seen = GREATEST(telemetry_issue_releases.last_seen, EXCLUDED.last_seen)
    )
    SELECT count(*) FROM event
    """
).bindparams(
    bindparam("ts", type_=DateTime(timezone=True)),
    bindparam("release", type_=Text),
    bindparam("user_key", type_=Text),
    bindparam("environment", type_=Text),
    bindparam("handled", type_=Boolean),
    bindparam("regressed", type_=Boolean),
)


def _issue_columns() -> list[Any]:
    users = (
        select(func.count())
        .select_from(m.issue_users)
        .where(m.issue_users.c.issue_id == m.issues.c.id)
        .scalar_subquery()
    )
    return [*m.issues.c, users.label("user_count")]


async def list_issues(
    session: AsyncSession,
    project_id: int,
    *,
    status: str | None,
    limit: int,
    release: str | None = None,
) -> list[dict[str, Any]]:
    """The project's issues, most recently seen first; ``release``: only those with an event
    of that release (its per-release counts)."""
    query = select(*_issue_columns()).where(m.issues.c.project_id == project_id)
    if status is not None:
        query = query.where(m.issues.c.status == status)
    if release is not None:
        seen = m.issue_releases.c
        query = query.where(
            select(seen.issue_id)
            .where(seen.issue_id == m.issues.c.id, seen.release == release)
            .exists()
        )
    rows = await session.execute(query.order_by(m.issues.c.last_seen.desc()).limit(limit))
    return [_row(r) for r in rows]


async def get_issue(session: AsyncSession, project_id: int, issue_id: int) -> dict[str, Any] | None:
    row = (
        await session.execute(
            select(*_issue_columns()).where(
                m.issues.c.project_id == project_id, m.issues.c.id == issue_id
            )
        )
    ).one_or_none()
    if row is None:
        return None
    issue = _row(row)
    releases = await session.execute(
        select(m.issue_releases)
        .where(m.issue_releases.c.issue_id == issue_id)
        .order_by(m.issue_releases.c.first_seen)
    )
    issue["releases"] = [{k: v for k, v in _row(r).items() if k != "issue_id"} for r in releases]
    return issue


async def set_issue_status(
    session: AsyncSession,
    project_id: int,
    issue_id: int,
    *,
    status: str,
    release: str | None,
    now: datetime,
) -> bool:
    values: dict[str, Any] = {"status": status}
    if status == "resolved":
        values.update(resolved_at=now, resolved_in_release=release)
    else:
        values.update(resolved_at=None, resolved_in_release=None)
    result = await session.execute(
        update(m.issues)
        .where(m.issues.c.project_id == project_id, m.issues.c.id == issue_id)
        .values(**values)
        .returning(m.issues.c.id)
    )
    return result.one_or_none() is not None


async def list_events(
    session: AsyncSession, project_id: int, issue_id: int, limit: int
) -> list[dict[str, Any]]:
    rows = await session.execute(
        select(m.events)
        .where(m.events.c.project_id == project_id, m.events.c.issue_id == issue_id)
        .order_by(m.events.c.timestamp.desc())
        .limit(limit)
    )
    return [_row(r) for r in rows]
