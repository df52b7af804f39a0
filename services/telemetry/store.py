"""The telemetry service's repository: projects and DSN keys, client reports,
transactions, OTLP rows, debug-file records and retention.

Events and issues are in :mod:`.issue_store`, sessions in :mod:`.session_store`. Every write
is idempotent by the tables' unique keys (see :mod:`.models`): inserts use ``ON CONFLICT DO
NOTHING`` and report whether they stored anything.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    delete,
    func,
    insert,
    literal,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from mobileplane.services.telemetry import models as m
from mobileplane.services.telemetry.settings import ProjectSeed


class AlreadyExists(Exception):
    """A project slug or key that is taken."""


def _row(row: Any) -> dict[str, Any]:
    return dict(row._mapping)


# -- projects and keys ----------------------------------------------------------------------


async def create_project(session: AsyncSession, values: Mapping[str, Any]) -> dict[str, Any]:
    try:
        async with session.begin_nested():
            row = (
                await session.execute(insert(m.projects).values(**values).returning(*m.projects.c))
            ).one()
    except IntegrityError:
        raise AlreadyExists(values.get("slug")) from None
    return _row(row)


async def get_project(session: AsyncSession, ref: str | int) -> dict[str, Any] | None:
    column = m.projects.c.id if isinstance(ref, int) else m.projects.c.slug
    row = (await session.execute(select(m.projects).where(column == ref))).one_or_none()
    return None if row is None else _row(row)


async def list_projects(session: AsyncSession) -> list[dict[str, Any]]:
    rows = await session.execute(select(m.projects).order_by(m.projects.c.id))
    return [_row(r) for r in rows]


async def update_project(
    session: AsyncSession, project_id: int, values: Mapping[str, Any]
) -> dict[str, Any]:
    row = (
        await session.execute(
            update(m.projects)
            .where(m.projects.c.id == project_id)
            .values(**values)
            .returning(*m.projects.c)
        )
    ).one()
    return _row(row)


async def create_key(session: AsyncSession, values: Mapping[str, Any]) -> dict[str, Any]:
    try:
        async with session.begin_nested():
            row = (
                await session.execute(insert(m.keys).values(**values).returning(*m.keys.c))
            ).one()
    except IntegrityError:
        raise AlreadyExists(values.get("public_key")) from None
    return _row(row)


async def list_keys(session: AsyncSession, project_id: int) -> list[dict[str, Any]]:
    rows = await session.execute(
        select(m.keys).where(m.keys.c.project_id == project_id).order_by(m.keys.c.created_at)
    )
    return [_row(r) for r in rows]


async def update_key(
    session: AsyncSession, project_id: int, public_key: str, values: Mapping[str, Any]
) -> dict[str, Any] | None:
    row = (
        await session.execute(
            update(m.keys)
            .where(m.keys.c.project_id == project_id, m.keys.c.public_key == public_key)
            .values(**values)
            .returning(*m.keys.c)
        )
    ).one_or_none()
    return None if row is None else _row(row)


@dataclass(frozen=True)
class KeyInfo:
    public_key: str
    enabled: bool
    rate_limit_per_minute: int | None
    project: dict[str, Any]


async def lookup_key(session: AsyncSession, public_key: str) -> KeyInfo | None:
    row = (
        await session.execute(
            select(m.keys.c.enabled, m.keys.c.rate_limit_per_minute, m.projects)
            .join(m.projects, m.projects.c.id == m.keys.c.project_id)
            .where(m.keys.c.public_key == public_key)
        )
    ).one_or_none()
    if row is None:
        return None
    data = _row(row)
    enabled, limit = data.pop("enabled"), data.pop("rate_limit_per_minute")
    return KeyInfo(public_key, enabled, limit, data)


async def seed_projects(session: AsyncSession, seeds: Sequence[ProjectSeed]) -> None:
    """Create or update the configured projects and keys (``TELEMETRY_PROJECTS``)."""
    for seed in seeds:
        values: dict[str, Any] = {
            "slug": seed.slug,
            "name": seed.name or seed.slug,
            "platform": seed.platform,
            "category_limits": dict(seed.category_limits),
        }
        if seed.id is not None:
            values["id"] = seed.id
        statement = pg_insert(m.projects).values(**values)
        statement = statement.on_conflict_do_update(
            index_elements=[m.projects.c.slug],
            set_={k: statement.excluded[k] for k in ("name", "platform", "category_limits")},
        )
        await session.execute(statement)
        project = await get_project(session, seed.slug)
        assert project is not None
        for key in seed.keys:
            key_stmt = pg_insert(m.keys).values(project_id=project["id"], **key.model_dump())
            key_stmt = key_stmt.on_conflict_do_update(
                index_elements=[m.keys.c.public_key],
                set_={
                    k: key_stmt.excluded[k]
                    for k in ("project_id", "label", "enabled", "rate_limit_per_minute")
                },
            )
            await session.execute(key_stmt)
    # Explicit ids leave the serial behind; move it past them so created projects never clash.
    await session.execute(
        text(
            "SELECT setval(pg_get_serial_sequence('telemetry_projects', 'id'), "
            "GREATEST((SELECT COALESCE(MAX(id), 0) FROM telemetry_projects), 1))"
        )
    )


# -- other items ----------------------------------------------------------------------------


async def store_client_report(
    session: AsyncSession, project_id: int, digest: str, timestamp: datetime, payload: Any
) -> bool:
    stored = await session.scalar(
        pg_insert(m.client_reports)
        .values(project_id=project_id, digest=digest, timestamp=timestamp, discarded=payload)
        .on_conflict_do_nothing()
        .returning(m.client_reports.c.digest)
    )
    return stored is not None


async def store_transaction(session: AsyncSession, values: Mapping[str, Any]) -> bool:
    stored = await session.scalar(
        pg_insert(m.transactions)
        .values(**values)
        .on_conflict_do_nothing()
        .returning(m.transactions.c.event_id)
    )
    return stored is not None


async def store_rows(session: AsyncSession, table: Any, rows: Sequence[Mapping[str, Any]]) -> int:
    """Insert ``rows`` into ``table`` (spans, metric points), skipping ones stored before."""
    stored = 0
    for start in range(0, len(rows), 500):
        chunk = [dict(r) for r in rows[start : start + 500]]
        result = await session.execute(
            pg_insert(table).values(chunk).on_conflict_do_nothing().returning(literal(1))
        )
        stored += len(result.all())
    return stored


async def count_rows(session: AsyncSession, table: Any, project_id: int) -> int:
    return int(
        await session.scalar(
            select(func.count()).select_from(table).where(table.c.project_id == project_id)
        )
        or 0
    )


# -- artifacts ------------------------------------------------------------------------------


async def put_artifact(session: AsyncSession, values: Mapping[str, Any]) -> dict[str, Any]:
    statement = pg_insert(m.artifacts).values(**values)
    row = (
        await session.execute(
            statement.on_conflict_do_update(
                constraint="uq_telemetry_artifacts_ident",
                set_={k: statement.excluded[k] for k in ("key", "sha256", "size", "created_at")},
            ).returning(*m.artifacts.c)
        )
    ).one()
    return _row(row)


async def get_artifact(
    session: AsyncSession, project_id: int, kind: str, ident: str
) -> dict[str, Any] | None:
    row = (
        await session.execute(
            select(m.artifacts).where(
                m.artifacts.c.project_id == project_id,
                m.artifacts.c.kind == kind,
                m.artifacts.c.ident == ident,
            )
        )
    ).one_or_none()
    return None if row is None else _row(row)


async def list_artifacts(session: AsyncSession, project_id: int) -> list[dict[str, Any]]:
    rows = await session.execute(
        select(m.artifacts)
        .where(m.artifacts.c.project_id == project_id)
        .order_by(m.artifacts.c.created_at.desc())
    )
    return [_row(r) for r in rows]


# -- retention ------------------------------------------------------------------------------


async def purge(session: AsyncSession, *, before: datetime) -> int:
    """Delete raw data older than ``before`` (issues keep their counts); rows deleted."""
    deleted = 0
    for table, column in (
        (m.events, m.events.c.received_at),
        (m.sessions, m.sessions.c.started),
        (m.session_buckets, m.session_buckets.c.started),
        (m.aggregate_items, m.aggregate_items.c.received_at),
        (m.client_reports, m.client_reports.c.timestamp),
        (m.transactions, m.transactions.c.start),
        (m.spans, m.spans.c.start),
        (m.metric_points, m.metric_points.c.time),
    ):
        result = await session.execute(delete(table).where(column < before))
        deleted += int(getattr(result, "rowcount", 0) or 0)
    return deleted
