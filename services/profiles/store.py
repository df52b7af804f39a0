"""The profiles service's repository: profiles, avatar uploads and the outbox, in Postgres.

Every change to a profile writes its event to ``profile_outbox`` in the same transaction
(:func:`add_event`): the event exists if and only if the change committed. The relay
(:mod:`.outbox`) publishes pending rows later. Callers hold the transaction; nothing here
commits.

A profile is created at a user's first authenticated request (:func:`ensure_profile`):
``INSERT ... ON CONFLICT DO NOTHING RETURNING`` makes two concurrent first requests create one
row, and only the one whose insert returned a row writes ``profile.created``.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from mobileplane.services.profiles import models as m
from mobileplane.services.profiles.events import CREATED, UPDATED, ProfileEvent, new_event

AVATAR_COLUMNS = ("avatar_key", "avatar_content_type", "avatar_size", "avatar_sha256")


def _row(row: Any) -> dict[str, Any]:
    return dict(row._mapping)


async def add_event(session: AsyncSession, event: ProfileEvent) -> None:
    """Record ``event`` in the outbox, in the caller's transaction."""
    await session.execute(
        insert(m.outbox).values(
            id=event.id,
            type=event.type,
            subject=event.subject,
            occurred_at=event.occurred_at,
            data=dict(event.data),
        )
    )


async def get_profile(
    session: AsyncSession, subject: str, *, lock: bool = False
) -> dict[str, Any] | None:
    query = select(m.profiles).where(m.profiles.c.subject == subject)
    if lock:
        query = query.with_for_update()
    row = (await session.execute(query)).one_or_none()
    return None if row is None else _row(row)


async def ensure_profile(
    session: AsyncSession, subject: str, now: datetime, *, lock: bool = False
) -> tuple[dict[str, Any], bool]:
    """The subject's profile, created (with its ``profile.created`` event) if it has none."""
    existing = await get_profile(session, subject, lock=lock)
    if existing is not None:
        return existing, False
    inserted = (
        await session.execute(
            pg_insert(m.profiles)
            .values(subject=subject, settings={}, created_at=now, updated_at=now)
            .on_conflict_do_nothing(index_elements=[m.profiles.c.subject])
            .returning(*m.profiles.c)
        )
    ).one_or_none()
    if inserted is not None:
        await add_event(session, new_event(CREATED, subject, now, version=1))
        return _row(inserted), True
    # Another request created it between our read and our insert (it committed first).
    created = await get_profile(session, subject, lock=lock)
    if created is None:  # it was erased again in between: extremely unlikely, but say so
        raise RuntimeError(f"profile {subject!r} vanished while being created")
    return created, False


async def update_profile(
    session: AsyncSession,
    subject: str,
    values: Mapping[str, Any],
    changed: Sequence[str],
    now: datetime,
) -> dict[str, Any]:
    """Store ``values``, bump the version and record ``profile.updated`` naming ``changed``."""
    row = (
        await session.execute(
            update(m.profiles)
            .where(m.profiles.c.subject == subject)
            .values(**values, version=m.profiles.c.version + 1, updated_at=now)
            .returning(*m.profiles.c)
        )
    ).one()
    profile = _row(row)
    await add_event(
        session, new_event(UPDATED, subject, now, version=profile["version"], changed=changed)
    )
    return profile


# -- avatar uploads -------------------------------------------------------------------------


async def create_upload(session: AsyncSession, values: Mapping[str, Any]) -> None:
    await session.execute(insert(m.avatar_uploads).values(**values))


async def get_upload(
    session: AsyncSession, subject: str, upload_id: str, *, lock: bool = False
) -> dict[str, Any] | None:
    try:
        uuid.UUID(upload_id)
    except ValueError:
        return None
    query = select(m.avatar_uploads).where(
        m.avatar_uploads.c.id == upload_id, m.avatar_uploads.c.subject == subject
    )
    if lock:
        query = query.with_for_update()
    row = (await session.execute(query)).one_or_none()
    return None if row is None else _row(row)


async def delete_upload(session: AsyncSession, upload_id: str) -> None:
    await session.execute(delete(m.avatar_uploads).where(m.avatar_uploads.c.id == upload_id))


async def abandon_uploads(session: AsyncSession, subject: str) -> list[str]:
    """Delete the subject's unfinished uploads; the S3 keys they reserved."""
    result = await session.execute(
        delete(m.avatar_uploads)
        .where(m.avatar_uploads.c.subject == subject)
        .returning(m.avatar_uploads.c.key)
    )
    return list(result.scalars())


async def object_keys(session: AsyncSession, subject: str) -> list[str]:
    """Every S3 key the subject's profile and pending uploads point at."""
    keys = list(
        (
            await session.execute(
                select(m.avatar_uploads.c.key).where(m.avatar_uploads.c.subject == subject)
            )
        ).scalars()
    )
    current = await session.scalar(
        select(m.profiles.c.avatar_key).where(m.profiles.c.subject == subject)
    )
    if current:
        keys.append(current)
    return keys


# -- outbox ---------------------------------------------------------------------------------


async def claim_pending(session: AsyncSession, limit: int) -> list[tuple[int, ProfileEvent]]:
    """Up to ``limit`` unpublished events in commit order, locked (others skip them)."""
    rows = await session.execute(
        select(m.outbox)
        .where(m.outbox.c.published_at.is_(None))
        .order_by(m.outbox.c.seq)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return [
        (
            int(r.seq),
            ProfileEvent(
                id=str(r.id),
                type=r.type,
                subject=r.subject,
                occurred_at=r.occurred_at,
                data=r.data,
            ),
        )
        for r in rows
    ]


async def mark_published(
    session: AsyncSession, published: Iterable[tuple[int, str]], now: datetime
) -> None:
    for seq, stream_id in published:
        await session.execute(
            update(m.outbox)
            .where(m.outbox.c.seq == seq)
            .values(published_at=now, stream_id=stream_id)
        )


async def purge_published(session: AsyncSession, before: datetime) -> int:
    result = await session.execute(
        delete(m.outbox).where(m.outbox.c.published_at < before).returning(m.outbox.c.seq)
    )
    return len(result.all())


# -- data subjects (GDPR) -------------------------------------------------------------------


def _jsonable(row: Mapping[str, Any]) -> dict[str, Any]:
    return {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in row.items()}


class ProfilesSubjectData:
    """What the profiles service holds about a subject (:class:`kit.privacy.SubjectData`)."""

    service = "profiles"

    async def export(self, session: AsyncSession, subject: str) -> dict[str, Any]:
        profile = await get_profile(session, subject)
        uploads = (
            await session.execute(
                select(m.avatar_uploads)
                .where(m.avatar_uploads.c.subject == subject)
                .order_by(m.avatar_uploads.c.created_at)
            )
        ).all()
        events = (
            await session.execute(
                select(m.outbox).where(m.outbox.c.subject == subject).order_by(m.outbox.c.seq)
            )
        ).all()
        return {
            "profile": None if profile is None else _jsonable(profile),
            "avatar_uploads": [_jsonable(_row(u)) for u in uploads],
            "events": [_jsonable({k: v for k, v in _row(e).items() if k != "seq"}) for e in events],
        }

    async def erase(self, session: AsyncSession, subject: str) -> int:
        """Delete the profile, its uploads and its *published* events. Events not yet
        published are left to the relay: they carry no profile content, and dropping them
        would break the promise that every committed change reaches consumers, in order
        (the retention purge removes them once published)."""
        erased = 0
        for table, condition in (
            (m.profiles, None),
            (m.avatar_uploads, None),
            (m.outbox, m.outbox.c.published_at.is_not(None)),
        ):
            query = delete(table).where(table.c.subject == subject)
            if condition is not None:
                query = query.where(condition)
            result = await session.execute(query.returning(table.c.subject))
            erased += len(result.all())
        return erased
