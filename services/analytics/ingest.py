"""One request's messages into the database, in the request's transaction.

Each valid message becomes an ``analytics_events`` row (its corrected time, see
:mod:`.timestamps`; its IP address, see :mod:`.ipanon`); the messages actually stored — not
duplicates of ones stored before — then move profiles, groups and identity links
(:mod:`.fold`), so a retried batch changes nothing at all.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from mobileplane.services.analytics import fold, store
from mobileplane.services.analytics.ipanon import client_ip
from mobileplane.services.analytics.spec import Message
from mobileplane.services.analytics.timestamps import corrected_time


@dataclass(frozen=True)
class Stored:
    accepted: int  # valid messages in the request
    stored: int  # newly stored (the rest were stored before: retries)


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def event_row(
    message: Message,
    *,
    source_id: int,
    received_at: datetime,
    request_ip: str | None,
    anonymize_ip: bool,
) -> dict[str, Any]:
    """The ``analytics_events`` row of ``message`` (pure)."""
    payload = dict(message.payload)
    context = dict(message.context)
    ip = client_ip(context.get("ip") or request_ip, anonymize=anonymize_ip)
    if ip is None:
        context.pop("ip", None)
    else:
        context["ip"] = ip
    payload["context"] = context
    payload["receivedAt"] = received_at.isoformat()
    return {
        "source_id": source_id,
        "message_id": message.message_id,
        "type": message.type,
        "event": message.event,
        "user_id": message.user_id,
        "anonymous_id": message.anonymous_id,
        "group_id": message.group_id,
        "previous_id": message.previous_id,
        "timestamp": corrected_time(message.timestamp, message.sent_at, received_at),
        "original_timestamp": message.timestamp,
        "sent_at": message.sent_at,
        "received_at": received_at,
        "ip": ip,
        "payload": payload,
    }


async def store_messages(
    session: AsyncSession,
    messages: Sequence[Message],
    *,
    source_id: int,
    received_at: datetime,
    request_ip: str | None,
    anonymize_ip: bool,
) -> Stored:
    rows = sorted(
        (
            event_row(
                message,
                source_id=source_id,
                received_at=received_at,
                request_ip=request_ip,
                anonymize_ip=anonymize_ip,
            )
            for message in messages
        ),
        key=lambda r: str(r["message_id"]),
    )
    if not rows:
        return Stored(0, 0)
    new_ids = await store.insert_events(session, rows)
    times = {r["message_id"]: r["timestamp"] for r in rows}
    new = [(m, times[m.message_id]) for m in messages if m.message_id in new_ids]
    await store.merge_profiles(session, fold.profile_updates(new))
    await store.merge_groups(session, fold.group_updates(new))
    await store.merge_links(session, source_id, fold.links(new))
    return Stored(len(rows), len(new_ids))
