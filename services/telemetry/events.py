"""What an ingested item says about itself (pure): ids, times, release, user, outcome.

Sentry payloads are loosely typed (timestamps as RFC 3339 strings or Unix floats, users by id,
e-mail, username or IP, ids with or without dashes); this module reads them into plain values
and refuses what cannot be stored, with a reason. It also cleans JSON for PostgreSQL, whose
``jsonb`` cannot hold ``\\u0000`` or unpaired surrogates (both valid JSON, both sent by real
SDKs when a message embeds binary data).
"""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from mobileplane.services.telemetry.sessions import SessionError, parse_time

LEVELS = frozenset({"fatal", "error", "warning", "info", "debug"})
_SURROGATE = re.compile(r"[\ud800-\udfff]")


class ItemError(ValueError):
    """An item's payload cannot be stored; the message says why."""


def clean_json(value: Any) -> Any:
    """``value`` with NUL characters and lone surrogates replaced (U+FFFD) in every string."""
    if isinstance(value, str):
        if "\x00" in value or _SURROGATE.search(value):
            return _SURROGATE.sub("\ufffd", value.replace("\x00", "\ufffd"))
        return value
    if isinstance(value, dict):
        return {clean_json(k): clean_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [clean_json(v) for v in value]
    return value


def digest(*parts: bytes) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(len(part).to_bytes(8, "big"))
        h.update(part)
    return h.hexdigest()


def event_id(payload: Mapping[str, Any], envelope: Mapping[str, Any], raw: bytes) -> str:
    """The event's id as 32 lowercase hex digits.

    From the payload, else the envelope header; an event without one (not a real SDK) gets
    one derived from its bytes, so that its retries still deduplicate.
    """
    for candidate in (payload.get("event_id"), envelope.get("event_id")):
        if candidate is None:
            continue
        try:
            return uuid.UUID(str(candidate)).hex
        except ValueError:
            raise ItemError("event_id must be a UUID (32 hex digits)") from None
    return hashlib.sha256(raw).hexdigest()[:32]


def timestamp(value: Any, default: datetime, field: str = "timestamp") -> datetime:
    if value is None:
        return default
    try:
        return parse_time(value, field)
    except SessionError as e:
        raise ItemError(str(e)) from None


def _text(payload: Mapping[str, Any], name: str, limit: int) -> str | None:
    value = payload.get(name)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ItemError(f"{name} must be a string")
    if len(value) > limit:
        raise ItemError(f"{name} is longer than {limit} characters")
    return value


def user_key(payload: Mapping[str, Any]) -> str | None:
    """Who was affected, as Sentry counts users: id, then username, e-mail, IP address."""
    user = payload.get("user")
    if not isinstance(user, Mapping):
        return None
    for name in ("id", "username", "email", "ip_address"):
        value = user.get(name)
        if isinstance(value, str | int) and not isinstance(value, bool) and str(value):
            return f"{name}:{value}"[:200]
    return None


def handled(payload: Mapping[str, Any]) -> bool | None:
    """``False`` for a crash (an exception no handler caught), per the primary exception's
    ``mechanism.handled``; ``None`` when the SDK did not say."""
    raw = payload.get("exception")
    values = raw.get("values") if isinstance(raw, Mapping) else raw
    if not isinstance(values, list) or not values or not isinstance(values[-1], Mapping):
        return None
    mechanism = values[-1].get("mechanism")
    if isinstance(mechanism, Mapping) and isinstance(mechanism.get("handled"), bool):
        return bool(mechanism["handled"])
    return None


@dataclass(frozen=True)
class EventFacts:
    event_id: str
    timestamp: datetime
    level: str
    release: str | None
    environment: str | None
    user_key: str | None
    handled: bool | None
    platform: str | None


def event_facts(
    payload: Mapping[str, Any], envelope: Mapping[str, Any], raw: bytes, now: datetime
) -> EventFacts:
    level = payload.get("level") or "error"
    if level not in LEVELS:
        raise ItemError(f"level must be one of {', '.join(sorted(LEVELS))}")
    return EventFacts(
        event_id=event_id(payload, envelope, raw),
        timestamp=timestamp(payload.get("timestamp"), now),
        level=str(level),
        release=_text(payload, "release", 250),
        environment=_text(payload, "environment", 64),
        user_key=user_key(payload),
        handled=handled(payload),
        platform=_text(payload, "platform", 64),
    )


def transaction_values(
    payload: Mapping[str, Any], envelope: Mapping[str, Any], raw: bytes, now: datetime
) -> dict[str, Any]:
    """A ``transaction`` item as a row of ``telemetry_transactions`` (without project_id)."""
    end = timestamp(payload.get("timestamp"), now)
    start = timestamp(payload.get("start_timestamp"), end, "start_timestamp")
    if end < start:
        raise ItemError("transaction ends before it starts")
    contexts = payload.get("contexts")
    trace = contexts.get("trace") if isinstance(contexts, Mapping) else None
    trace = trace if isinstance(trace, Mapping) else {}
    spans = payload.get("spans")
    name = _text(payload, "transaction", 500) or "<unlabeled transaction>"
    trace_id = trace.get("trace_id")
    return {
        "event_id": event_id(payload, envelope, raw),
        "trace_id": str(trace_id).lower()[:64] if trace_id else None,
        "name": name,
        "op": str(trace.get("op"))[:200] if trace.get("op") else None,
        "status": str(trace.get("status"))[:64] if trace.get("status") else None,
        "release": _text(payload, "release", 250),
        "environment": _text(payload, "environment", 64),
        "start": start,
        "duration_ms": (end - start).total_seconds() * 1000,
        "span_count": len(spans) if isinstance(spans, list) else 0,
    }


def utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)
