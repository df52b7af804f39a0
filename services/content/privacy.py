"""What the content service holds about a user, for GDPR access and erasure requests.

Two things in content are keyed by a user id (a token's ``sub``):

- ``content_audience`` — the audience segments editors put the user in (they rank the user's
  feed). Exported, and deleted on erasure.
- ``content_media.created_by`` — who started a media upload (an editor). The file itself is
  the platform's published content, used by items that every reader sees, so erasing the
  editor must not delete it: the record is exported, and on erasure its ``created_by`` is
  replaced by a fixed marker that says nothing about anyone (irreversible; nothing else in the
  service needs to know who uploaded a file).

Items carry no user data (their ``segments`` name segments, not users). The feed cache holds
published items only (segments are read per request), so an erasure needs no invalidation.
Both calls run in the caller's transaction (:mod:`kit.privacy`).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from mobileplane.services.content import models as m

#: What an erased uploader's ``created_by`` becomes.
ERASED_UPLOADER = "[erased]"


class ContentSubjectData:
    """The content service's :class:`kit.privacy.SubjectData`."""

    service = "content"

    async def export(self, session: AsyncSession, subject: str) -> dict[str, Any]:
        segments = await session.scalars(
            select(m.audience.c.segment)
            .where(m.audience.c.subject == subject)
            .order_by(m.audience.c.segment)
        )
        uploads = await session.execute(
            select(
                m.media.c.id,
                m.media.c.content_type,
                m.media.c.size,
                m.media.c.sha256,
                m.media.c.status,
                m.media.c.created_at,
            )
            .where(m.media.c.created_by == subject)
            .order_by(m.media.c.created_at, m.media.c.id)
        )
        return {
            "audience_segments": list(segments),
            "media_uploaded": [
                {
                    "id": str(r.id),
                    "content_type": r.content_type,
                    "size": int(r.size),
                    "sha256": r.sha256,
                    "status": r.status,
                    "created_at": r.created_at.isoformat(),
                }
                for r in uploads
            ],
        }

    async def erase(self, session: AsyncSession, subject: str) -> int:
        """Delete the user's audience segments; unlink the user from media they uploaded."""
        segments = await session.execute(
            delete(m.audience)
            .where(m.audience.c.subject == subject)
            .returning(m.audience.c.segment)
        )
        media = await session.execute(
            update(m.media)
            .where(m.media.c.created_by == subject)
            .values(created_by=ERASED_UPLOADER)
            .returning(m.media.c.id)
        )
        return len(segments.all()) + len(media.all())
