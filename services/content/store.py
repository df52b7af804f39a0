"""The content service's repository: items, audience segments and media records in Postgres."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from mobileplane.services.content import models as m
from mobileplane.services.content.ranking import Item


class SlugTaken(Exception):
    pass


def _row(row: Any) -> dict[str, Any]:
    data = dict(row._mapping)
    for field in ("published_at", "expires_at", "updated_at"):
        if data.get(field) is not None:
            data[field] = data[field].isoformat()
    return data


async def create_item(session: AsyncSession, values: Mapping[str, Any]) -> dict[str, Any]:
    item_id = str(uuid.uuid4())
    try:
        async with session.begin_nested():
            row = (
                await session.execute(
                    insert(m.items).values(id=item_id, **values).returning(*m.items.c)
                )
            ).one()
    except IntegrityError:
        raise SlugTaken(values["slug"]) from None
    return _row(row)


async def get_item(
    session: AsyncSession, slug: str, *, lock: bool = False
) -> dict[str, Any] | None:
    query = select(m.items).where(m.items.c.slug == slug)
    if lock:
        query = query.with_for_update()
    row = (await session.execute(query)).one_or_none()
    return None if row is None else _row(row)


async def update_item(
    session: AsyncSession, slug: str, values: Mapping[str, Any]
) -> dict[str, Any]:
    row = (
        await session.execute(
            update(m.items)
            .where(m.items.c.slug == slug)
            .values(**values, version=m.items.c.version + 1, updated_at=datetime.now().astimezone())
            .returning(*m.items.c)
        )
    ).one()
    return _row(row)


async def delete_item(session: AsyncSession, slug: str) -> bool:
    result = await session.execute(
        delete(m.items).where(m.items.c.slug == slug).returning(m.items.c.id)
    )
    return result.first() is not None


async def published_items(session: AsyncSession, now: datetime) -> list[dict[str, Any]]:
    rows = await session.execute(
        select(m.items).where(
            m.items.c.published_at.is_not(None),
            m.items.c.published_at <= now,
            (m.items.c.expires_at.is_(None)) | (m.items.c.expires_at > now),
        )
    )
    return [_row(r) for r in rows]


def as_rankable(item: Mapping[str, Any]) -> Item:
    def when(value: Any) -> datetime | None:
        return datetime.fromisoformat(value) if isinstance(value, str) else value

    return Item(
        id=str(item["id"]),
        published_at=when(item["published_at"]),
        expires_at=when(item["expires_at"]),
        locale=item["locale"],
        tags=frozenset(item["tags"] or ()),
        segments=frozenset(item["segments"] or ()),
        priority=int(item["priority"]),
    )


async def segments_of(session: AsyncSession, subject: str) -> frozenset[str]:
    rows = await session.execute(
        select(m.audience.c.segment).where(m.audience.c.subject == subject)
    )
    return frozenset(r[0] for r in rows)


async def set_segments(session: AsyncSession, subject: str, segments: Sequence[str]) -> None:
    await session.execute(delete(m.audience).where(m.audience.c.subject == subject))
    if segments:
        await session.execute(
            pg_insert(m.audience).on_conflict_do_nothing(),
            [{"subject": subject, "segment": s} for s in sorted(set(segments))],
        )


async def create_media(session: AsyncSession, values: Mapping[str, Any]) -> dict[str, Any]:
    row = (await session.execute(insert(m.media).values(**values).returning(*m.media.c))).one()
    return dict(row._mapping)


async def get_media(session: AsyncSession, media_id: str) -> dict[str, Any] | None:
    try:
        uuid.UUID(media_id)
    except ValueError:
        return None
    row = (await session.execute(select(m.media).where(m.media.c.id == media_id))).one_or_none()
    return None if row is None else dict(row._mapping)


async def mark_ready(session: AsyncSession, media_id: str) -> None:
    await session.execute(update(m.media).where(m.media.c.id == media_id).values(status="ready"))
