"""Profile events and their encoding on the Redis Stream, pure.

Other services learn that a profile was created, updated or deleted from the stream
``<REDIS_PREFIX>:profiles:events``. Each event has a stable ``id`` (a UUID chosen when the
change is committed): delivery is at least once — the relay may publish an event again after
a crash — so consumers deduplicate on it.

Events are notifications, not copies: they carry the subject, what changed (member names) and
the new version, never profile content. A stream entry cannot be reached by an erasure, so no
display name or setting is ever written there; a consumer that needs a value reads it from
``GET /profiles/users/{subject}``. ``profile.deleted`` tells consumers to forget the subject.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

EventType = Literal["profile.created", "profile.updated", "profile.deleted"]
CREATED: EventType = "profile.created"
UPDATED: EventType = "profile.updated"
DELETED: EventType = "profile.deleted"

#: The stream's fields, in order; every value is a string.
STREAM_FIELDS = ("id", "type", "subject", "occurred_at", "data")


@dataclass(frozen=True)
class ProfileEvent:
    id: str
    type: EventType
    subject: str
    occurred_at: datetime
    data: Mapping[str, Any] = field(default_factory=dict)

    def stream_fields(self) -> dict[str, str]:
        """The entry to ``XADD``: flat string fields, ``data`` as compact JSON."""
        return {
            "id": self.id,
            "type": self.type,
            "subject": self.subject,
            "occurred_at": self.occurred_at.isoformat(),
            "data": json.dumps(dict(self.data), sort_keys=True, separators=(",", ":")),
        }

    @classmethod
    def from_stream_fields(cls, fields: Mapping[str | bytes, str | bytes]) -> ProfileEvent:
        """The event in a stream entry (what a consumer does; keys/values may be bytes)."""
        text = {
            (k.decode() if isinstance(k, bytes) else k): (v.decode() if isinstance(v, bytes) else v)
            for k, v in fields.items()
        }
        kind = text["type"]
        if kind not in (CREATED, UPDATED, DELETED):
            raise ValueError(f"unknown profile event type {kind!r}")
        return cls(
            id=text["id"],
            type=kind,
            subject=text["subject"],
            occurred_at=datetime.fromisoformat(text["occurred_at"]),
            data=json.loads(text["data"]),
        )


def new_event(
    kind: EventType,
    subject: str,
    now: datetime,
    *,
    version: int | None = None,
    changed: Sequence[str] = (),
    event_id: str | None = None,
) -> ProfileEvent:
    """An event about ``subject`` at ``now`` (the clock is the caller's)."""
    data: dict[str, Any] = {}
    if version is not None:
        data["version"] = version
    if changed:
        data["changed"] = list(changed)
    return ProfileEvent(
        id=event_id or str(uuid.uuid4()), type=kind, subject=subject, occurred_at=now, data=data
    )
