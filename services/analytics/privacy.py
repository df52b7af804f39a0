"""What the analytics service holds about a user, for GDPR access and erasure requests.

Apps send the signed-in user's id (the tokens' ``sub``) as Segment's ``userId``. The service
keeps, about that user:

- ``analytics_events`` whose ``userId`` is the subject, whose ``previousId`` is the subject
  (an alias from that id), and the events of every anonymous id linked to the subject
  (``analytics_identity_links``: a message carried both ids, or an alias joined them) — the
  device's activity before sign-in is the same person's;
- ``analytics_profiles``: the merged traits, first and last seen;
- ``analytics_identity_links``: the anonymous ids (per source) linked to the subject.

**Export**: the profile, the links and every such event (its stored JSON: properties, traits,
context with the anonymised IP, times).

**Erasure** deletes all of it, in the caller's transaction. Group traits (``group`` calls
describe an account or company, not a person) are kept; the subject's group calls are events
and go with them. An anonymous id linked to two users (a shared device) is erased with
either: erasure errs on the side of deleting.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, delete, or_, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from mobileplane.services.analytics import models as m


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _events_of(subject: str) -> ColumnElement[bool]:
    e, link = m.events.c, m.links.c
    linked = select(link.source_id, link.anonymous_id).where(link.user_id == subject)
    condition: ColumnElement[bool] = or_(
        e.user_id == subject,
        e.previous_id == subject,
        tuple_(e.source_id, e.anonymous_id).in_(linked),
    )
    return condition


class AnalyticsSubjectData:
    """The analytics service's :class:`kit.privacy.SubjectData`."""

    service = "analytics"

    async def export(self, session: AsyncSession, subject: str) -> dict[str, Any]:
        sources = {
            r.id: r.slug for r in await session.execute(select(m.sources.c.id, m.sources.c.slug))
        }
        profile = (
            await session.execute(select(m.profiles).where(m.profiles.c.user_id == subject))
        ).one_or_none()
        links = await session.execute(
            select(m.links)
            .where(m.links.c.user_id == subject)
            .order_by(m.links.c.source_id, m.links.c.anonymous_id, m.links.c.kind)
        )
        e = m.events.c
        events = await session.execute(
            select(m.events).where(_events_of(subject)).order_by(e.timestamp, e.message_id)
        )
        return {
            "profile": None
            if profile is None
            else {
                "traits": profile.traits,
                "first_seen": _iso(profile.first_seen),
                "last_seen": _iso(profile.last_seen),
            },
            "identity_links": [
                {
                    "source": sources.get(r.source_id, r.source_id),
                    "anonymous_id": r.anonymous_id,
                    "kind": r.kind,
                    "first_seen": _iso(r.first_seen),
                    "last_seen": _iso(r.last_seen),
                }
                for r in links
            ],
            "events": [
                {
                    "source": sources.get(r.source_id, r.source_id),
                    "message_id": r.message_id,
                    "type": r.type,
                    "event": r.event,
                    "user_id": r.user_id,
                    "anonymous_id": r.anonymous_id,
                    "timestamp": _iso(r.timestamp),
                    "received_at": _iso(r.received_at),
                    "ip": r.ip,
                    "payload": r.payload,
                }
                for r in events
            ],
        }

    async def erase(self, session: AsyncSession, subject: str) -> int:
        """Delete the subject's events (with the linked anonymous ids'), profile and links."""
        statements: list[Any] = [
            delete(m.events).where(_events_of(subject)),  # before the links it reads
            delete(m.links).where(m.links.c.user_id == subject),
            delete(m.profiles).where(m.profiles.c.user_id == subject),
        ]
        affected = 0
        for statement in statements:
            result = await session.execute(statement)
            affected += int(getattr(result, "rowcount", 0) or 0)
        return affected
