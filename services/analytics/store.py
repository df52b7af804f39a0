"""The analytics service's repository (PostgreSQL): sources and write keys, events,
profiles, groups, identity links, counts and retention.

Writes are idempotent by the tables' keys (see :mod:`.models`). Rows are written in key
order so two replicas storing the same batch at once lock them in the same order (the second
waits for the first and then finds everything there) instead of deadlocking.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Table,
    Text,
    and_,
    case,
    cast,
    delete,
    func,
    insert,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from mobileplane.services.analytics import models as m
from mobileplane.services.analytics.fold import Link, TraitsUpdate
from mobileplane.services.analytics.settings import SourceSeed


class AlreadyExists(Exception):
    """A source slug or write key that is taken."""


@dataclass(frozen=True)
class KeyInfo:
    source_id: int
    source: str
    enabled: bool


def _row(row: Any) -> dict[str, Any]:
    return dict(row._mapping)


# -- sources and write keys -----------------------------------------------------------------


async def seed_sources(session: AsyncSession, seeds: Sequence[SourceSeed]) -> None:
    """Create or update the configured sources and their keys (``ANALYTICS_SOURCES``); a
    seeded key is (re-)enabled and moved to its seeded source."""
    for seed in seeds:
        statement = pg_insert(m.sources).values(slug=seed.slug, name=seed.name or seed.slug)
        statement = statement.on_conflict_do_update(
            index_elements=[m.sources.c.slug], set_={"name": statement.excluded.name}
        )
        await session.execute(statement)
        source = await get_source(session, seed.slug)
        assert source is not None
        for key in seed.write_keys:
            key_stmt = pg_insert(m.write_keys).values(
                write_key=key, source_id=source["id"], label="seeded"
            )
            key_stmt = key_stmt.on_conflict_do_update(
                index_elements=[m.write_keys.c.write_key],
                set_={"source_id": source["id"], "enabled": True, "revoked_at": None},
            )
            await session.execute(key_stmt)


async def create_source(session: AsyncSession, slug: str, name: str) -> dict[str, Any]:
    try:
        async with session.begin_nested():
            row = (
                await session.execute(
                    insert(m.sources).values(slug=slug, name=name).returning(*m.sources.c)
                )
            ).one()
    except IntegrityError:
        raise AlreadyExists(slug) from None
    return _row(row)


async def get_source(session: AsyncSession, ref: str | int) -> dict[str, Any] | None:
    column = m.sources.c.id if isinstance(ref, int) else m.sources.c.slug
    row = (await session.execute(select(m.sources).where(column == ref))).one_or_none()
    return None if row is None else _row(row)


async def list_sources(session: AsyncSession) -> list[dict[str, Any]]:
    rows = await session.execute(select(m.sources).order_by(m.sources.c.slug))
    return [_row(r) for r in rows]


async def create_key(
    session: AsyncSession, source_id: int, write_key: str, label: str
) -> dict[str, Any]:
    row = (
        await session.execute(
            insert(m.write_keys)
            .values(source_id=source_id, write_key=write_key, label=label)
            .returning(*m.write_keys.c)
        )
    ).one()
    return _row(row)


async def list_keys(session: AsyncSession, source_id: int) -> list[dict[str, Any]]:
    rows = await session.execute(
        select(m.write_keys)
        .where(m.write_keys.c.source_id == source_id)
        .order_by(m.write_keys.c.created_at, m.write_keys.c.write_key)
    )
    return [_row(r) for r in rows]


async def revoke_key(
    session: AsyncSession, source_id: int, write_key: str, now: datetime
) -> dict[str, Any] | None:
    row = (
        await session.execute(
            update(m.write_keys)
            .where(m.write_keys.c.source_id == source_id, m.write_keys.c.write_key == write_key)
            .values(
                enabled=False,
                revoked_at=func.coalesce(m.write_keys.c.revoked_at, now),
            )
            .returning(*m.write_keys.c)
        )
    ).one_or_none()
    return None if row is None else _row(row)


async def lookup_key(session: AsyncSession, write_key: str) -> KeyInfo | None:
    row = (
        await session.execute(
            select(m.write_keys.c.enabled, m.sources.c.id, m.sources.c.slug)
            .join(m.sources, m.sources.c.id == m.write_keys.c.source_id)
            .where(m.write_keys.c.write_key == write_key)
        )
    ).one_or_none()
    return None if row is None else KeyInfo(int(row.id), str(row.slug), bool(row.enabled))


# -- ingestion ------------------------------------------------------------------------------


#: One statement whatever the batch's size: the rows travel as one JSON parameter, so the
#: query text stays small and PostgreSQL (and psycopg) parse it once, not per batch.
_INSERT_EVENTS = text(
    """
    INSERT INTO analytics_events (source_id, message_id, type, event, user_id, anonymous_id,
        group_id, previous_id, timestamp, original_timestamp, sent_at, received_at, ip, payload)
    SELECT r.source_id, r.message_id, r.type, r.event, r.user_id, r.anonymous_id, r.group_id,
        r.previous_id, r.timestamp, r.original_timestamp, r.sent_at, r.received_at, r.ip,
        r.payload
    FROM jsonb_array_elements(CAST(:rows AS jsonb)) WITH ORDINALITY AS e(doc, n),
        jsonb_to_record(e.doc) AS r(source_id integer, message_id text, type text,
            event text, user_id text, anonymous_id text, group_id text, previous_id text,
            timestamp timestamptz, original_timestamp timestamptz, sent_at timestamptz,
            received_at timestamptz, ip text, payload jsonb)
    ORDER BY e.n
    ON CONFLICT (source_id, message_id) DO NOTHING
    RETURNING message_id
    """
)


def _jsonable(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


async def insert_events(session: AsyncSession, rows: Sequence[Mapping[str, Any]]) -> set[str]:
    """Store ``rows`` (one source's, sorted by message id); the message ids newly stored."""
    if not rows:
        return set()
    document = json.dumps([{k: _jsonable(v) for k, v in row.items()} for row in rows])
    result = await session.execute(_INSERT_EVENTS, {"rows": document})
    return {str(message_id) for message_id in result.scalars()}


async def _merge_traits(
    session: AsyncSession, table: Table, key: str, updates: Sequence[TraitsUpdate]
) -> None:
    if not updates:
        return
    statement = pg_insert(table).values(
        [
            {
                key: u.key,
                "traits": u.traits,
                "traits_at": u.traits_at,
                "first_seen": u.first_seen,
                "last_seen": u.last_seen,
            }
            for u in updates
        ]
    )
    new = statement.excluded
    old = table.c
    statement = statement.on_conflict_do_update(
        index_elements=[old[key]],
        set_={
            "first_seen": func.least(old.first_seen, new.first_seen),
            "last_seen": func.greatest(old.last_seen, new.last_seen),
            # Newer calls override key by key; an older one only fills missing keys.
            "traits": case(
                (new.traits_at.is_(None), old.traits),
                (
                    or_(old.traits_at.is_(None), new.traits_at >= old.traits_at),
                    old.traits.op("||")(new.traits),
                ),
                else_=new.traits.op("||")(old.traits),
            ),
            "traits_at": func.greatest(old.traits_at, new.traits_at),
        },
    )
    await session.execute(statement)


async def merge_profiles(session: AsyncSession, updates: Sequence[TraitsUpdate]) -> None:
    await _merge_traits(session, m.profiles, "user_id", updates)


async def merge_groups(session: AsyncSession, updates: Sequence[TraitsUpdate]) -> None:
    await _merge_traits(session, m.groups, "group_id", updates)


async def merge_links(session: AsyncSession, source_id: int, found: Sequence[Link]) -> None:
    if not found:
        return
    statement = pg_insert(m.links).values(
        [
            {
                "source_id": source_id,
                "anonymous_id": link.anonymous_id,
                "user_id": link.user_id,
                "kind": link.kind,
                "first_seen": link.first_seen,
                "last_seen": link.last_seen,
            }
            for link in found
        ]
    )
    statement = statement.on_conflict_do_update(
        index_elements=[
            m.links.c.source_id,
            m.links.c.anonymous_id,
            m.links.c.user_id,
            m.links.c.kind,
        ],
        set_={
            "first_seen": func.least(m.links.c.first_seen, statement.excluded.first_seen),
            "last_seen": func.greatest(m.links.c.last_seen, statement.excluded.last_seen),
        },
    )
    await session.execute(statement)


# -- queries --------------------------------------------------------------------------------


@dataclass(frozen=True)
class CountQuery:
    start: datetime
    end: datetime
    interval: str  # hour | day
    source_id: int | None = None
    type: str | None = None
    event: str | None = None


def _count_filter(q: CountQuery) -> Any:
    e = m.events.c
    conditions = [e.timestamp >= q.start, e.timestamp < q.end]
    if q.source_id is not None:
        conditions.append(e.source_id == q.source_id)
    if q.type is not None:
        conditions.append(e.type == q.type)
    if q.event is not None:
        conditions.append(e.event == q.event)
    return and_(*conditions)


def _user() -> Any:
    """Who did it: the user id, else the (source's) anonymous id."""
    e = m.events.c
    return func.coalesce("u:" + e.user_id, "a:" + cast(e.source_id, Text) + ":" + e.anonymous_id)


async def counts(
    session: AsyncSession, q: CountQuery
) -> tuple[dict[datetime, tuple[int, int]], tuple[int, int]]:
    """Events and distinct users per bucket, and over the whole range."""
    bucket = func.date_trunc(q.interval, m.events.c.timestamp, "UTC").label("bucket")
    rows = await session.execute(
        select(bucket, func.count(), func.count(func.distinct(_user())))
        .where(_count_filter(q))
        .group_by(bucket)
    )
    per_bucket = {r[0]: (int(r[1]), int(r[2])) for r in rows}
    total = (
        await session.execute(
            select(func.count(), func.count(func.distinct(_user()))).where(_count_filter(q))
        )
    ).one()
    return per_bucket, (int(total[0]), int(total[1]))


async def top_events(session: AsyncSession, q: CountQuery, limit: int) -> list[dict[str, Any]]:
    e = m.events.c
    rows = await session.execute(
        select(e.type, e.event, func.count().label("events"), func.count(func.distinct(_user())))
        .where(_count_filter(q))
        .group_by(e.type, e.event)
        .order_by(func.count().desc(), e.type, e.event)
        .limit(limit)
    )
    return [{"type": r[0], "event": r[1], "events": int(r[2]), "users": int(r[3])} for r in rows]


async def get_profile(session: AsyncSession, user_id: str) -> dict[str, Any] | None:
    row = (
        await session.execute(select(m.profiles).where(m.profiles.c.user_id == user_id))
    ).one_or_none()
    return None if row is None else _row(row)


# -- retention ------------------------------------------------------------------------------


async def purge(session: AsyncSession, *, before: datetime) -> int:
    """Delete events whose (corrected) time is before ``before``; how many."""
    result = await session.execute(delete(m.events).where(m.events.c.timestamp < before))
    return int(getattr(result, "rowcount", 0) or 0)
