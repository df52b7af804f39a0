"""Segment Spec messages (pure): validating what the SDKs send, one message at a time.

A message is a JSON object with a ``type`` (``track``, ``identify``, ``page``, ``screen``,
``group``, ``alias``) and the Spec's common fields. The rules enforced here:

- ``userId`` or ``anonymousId`` (strings; numbers are taken as their decimal text); ``alias``
  needs ``previousId`` and ``userId``; ``group`` needs ``groupId``; ``track`` a non-empty
  ``event``; ``page``/``screen`` may have a ``name``;
- ``properties``, ``traits``, ``context`` and ``integrations`` are objects when present;
- ``timestamp``, ``originalTimestamp`` and ``sentAt`` are ISO 8601 (see :mod:`.timestamps`);
- one message is at most ``max_bytes`` of JSON (Segment: 32KB), nested at most 64 levels,
  and holds no NUL character and only valid Unicode (PostgreSQL could not store it otherwise);
- ``messageId`` (at most 256 characters) is the deduplication key. A message without one gets
  a deterministic id, ``auto-<sha256 of the message>``: a retried batch then still dedupes
  (two byte-identical messages without ids are one event, which is what a retry looks like).

A batch's top-level ``context`` and ``integrations`` are defaults each message's own fields
override (merged key by key), and its ``sentAt`` stands for messages without one.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from mobileplane.services.analytics.timestamps import TimestampError, parse_timestamp

TYPES = ("track", "identify", "page", "screen", "group", "alias")
MAX_ID_LENGTH = 256
MAX_NAME_LENGTH = 512
OBJECT_FIELDS = ("properties", "traits", "context", "integrations")
#: Deepest nesting of objects and lists in a message (properties of properties...).
MAX_DEPTH = 64


class MessageError(ValueError):
    """A message the Spec does not allow; the text is the reason given to the client."""


class MessageTooLarge(MessageError):
    """A message over the size limit (a single call answers 413 for it)."""


@dataclass(frozen=True)
class Message:
    """One valid message, normalised; ``payload`` is the JSON to store (``context.ip`` is set
    by the caller, see :mod:`.ipanon`)."""

    type: str
    message_id: str
    user_id: str | None
    anonymous_id: str | None
    event: str | None  # track: the event; page/screen: the name
    group_id: str | None
    previous_id: str | None
    timestamp: datetime | None
    sent_at: datetime | None
    properties: dict[str, Any]
    traits: dict[str, Any]
    context: dict[str, Any]
    payload: dict[str, Any] = field(repr=False)


@dataclass(frozen=True)
class Rejected:
    index: int
    message_id: str | None
    reason: str

    def as_json(self) -> dict[str, Any]:
        return {"index": self.index, "messageId": self.message_id, "reason": self.reason}


@dataclass(frozen=True)
class Batch:
    messages: list[Message]
    rejected: list[Rejected]


def _compact(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=True)


def _problem(value: Any) -> str | None:
    """Why ``value`` cannot be stored (a NUL character, nesting too deep), or ``None``."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_DEPTH:
            return f"the message is nested deeper than {MAX_DEPTH} levels"
        if isinstance(item, str):
            if "\x00" in item:
                return "the message holds a NUL character"
        elif isinstance(item, dict):
            for k, v in item.items():
                if "\x00" in k:
                    return "the message holds a NUL character"
                stack.append((v, depth + 1))
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)
    return None


def _id(raw: Mapping[str, Any], name: str) -> str | None:
    value = raw.get(name)
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise MessageError(f"{name} must be a string")
    text = value if isinstance(value, str) else str(value)
    if len(text) > MAX_ID_LENGTH:
        raise MessageError(f"{name} is longer than {MAX_ID_LENGTH} characters")
    return text


def _object(raw: Mapping[str, Any], name: str) -> dict[str, Any]:
    value = raw.get(name)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise MessageError(f"{name} must be an object")
    return value


def _text(raw: Mapping[str, Any], name: str) -> str | None:
    value = raw.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise MessageError(f"{name} must be a string")
    if len(value) > MAX_NAME_LENGTH:
        raise MessageError(f"{name} is longer than {MAX_NAME_LENGTH} characters")
    return value


def message_size(raw: Any) -> int:
    """Bytes of ``raw`` as compact JSON; :class:`MessageError` for text no UTF-8 can hold."""
    try:
        return len(_compact(raw).encode("utf-8"))
    except UnicodeEncodeError:
        raise MessageError("the message holds text that is not valid Unicode") from None


def validate_message(
    raw: Any,
    *,
    max_bytes: int,
    implied_type: str | None = None,
    defaults: Mapping[str, Any] | None = None,
) -> Message:
    """``raw`` as a :class:`Message`, or :class:`MessageError` with the reason.

    ``implied_type`` is the type of a single-call endpoint (``/v1/track``: ``track``);
    ``defaults`` holds a batch's ``context``, ``integrations`` and ``sentAt``.
    """
    if not isinstance(raw, dict):
        raise MessageError("a message must be a JSON object")
    problem = _problem(raw)  # first: nesting bounds what serialising may recurse into
    if problem is not None:
        raise MessageError(problem)
    if message_size(raw) > max_bytes:
        raise MessageTooLarge(f"the message is larger than {max_bytes} bytes")
    kind = raw.get("type")
    if implied_type is not None:
        if kind is not None and kind != implied_type:
            raise MessageError(f"type {str(kind)[:20]!r} sent to the {implied_type} endpoint")
        kind = implied_type
    if not isinstance(kind, str) or kind.lower() not in TYPES:
        raise MessageError(f"type must be one of {', '.join(TYPES)}")
    kind = kind.lower()
    payload: dict[str, Any] = {k: v for k, v in raw.items() if k != "writeKey"}
    payload["type"] = kind
    defaults = defaults or {}
    for name in ("context", "integrations"):
        own = _object(raw, name)
        base = defaults.get(name)
        merged = {**base, **own} if isinstance(base, dict) else own
        if merged or name in raw:
            payload[name] = merged
    for name in OBJECT_FIELDS:
        _object(payload, name)

    user_id = _id(raw, "userId")
    anonymous_id = _id(raw, "anonymousId")
    group_id = _id(raw, "groupId")
    previous_id = _id(raw, "previousId")
    if kind == "alias":
        if previous_id is None or user_id is None:
            raise MessageError("an alias needs previousId and userId")
    elif user_id is None and anonymous_id is None:
        raise MessageError("a message needs a userId or an anonymousId")
    if kind == "group" and group_id is None:
        raise MessageError("a group call needs a groupId")
    event: str | None = None
    if kind == "track":
        event = _text(raw, "event")
        if not event or not event.strip():
            raise MessageError("a track call needs a non-empty event")
    elif kind in ("page", "screen"):
        event = _text(raw, "name")
        _text(raw, "category")
    try:
        timestamp = parse_timestamp(raw.get("timestamp"), "timestamp")
        original = parse_timestamp(raw.get("originalTimestamp"), "originalTimestamp")
        sent_at = parse_timestamp(raw.get("sentAt"), "sentAt")
        if sent_at is None and "sentAt" not in raw:
            sent_at = parse_timestamp(defaults.get("sentAt"), "the batch's sentAt")
    except TimestampError as e:
        raise MessageError(str(e)) from None
    if timestamp is None:
        timestamp = original

    message_id = _id(raw, "messageId")
    if message_id is None:
        identity = {k: v for k, v in payload.items() if k not in ("sentAt", "receivedAt")}
        message_id = "auto-" + hashlib.sha256(_compact(identity).encode("utf-8")).hexdigest()
    payload["messageId"] = message_id

    return Message(
        type=kind,
        message_id=message_id,
        user_id=user_id,
        anonymous_id=anonymous_id,
        event=event,
        group_id=group_id,
        previous_id=previous_id,
        timestamp=timestamp,
        sent_at=sent_at,
        properties=_object(raw, "properties"),
        traits=_object(raw, "traits"),
        context=_object(payload, "context"),
        payload=payload,
    )


def _rejected_id(raw: Any) -> str | None:
    if isinstance(raw, dict):
        value = raw.get("messageId")
        if isinstance(value, str) and len(value) <= MAX_ID_LENGTH:
            return value
    return None


def validate_batch(body: Mapping[str, Any], *, max_bytes: int, max_messages: int) -> Batch:
    """The valid messages of a ``/v1/batch`` body and the rejected ones with their reasons.

    Raises :class:`MessageError` when the body itself is wrong (no ``batch`` list, too many
    messages); a message that breaks a rule is rejected alone, as Segment does.
    """
    items = body.get("batch")
    if not isinstance(items, list):
        raise MessageError("the body needs a batch: a list of messages")
    if len(items) > max_messages:
        raise MessageError(f"a batch holds at most {max_messages} messages, not {len(items)}")
    defaults = {k: body[k] for k in ("context", "integrations", "sentAt") if k in body}
    if "context" in defaults and not isinstance(defaults["context"], dict):
        raise MessageError("the batch's context must be an object")
    if "integrations" in defaults and not isinstance(defaults["integrations"], dict):
        raise MessageError("the batch's integrations must be an object")
    problem = _problem(defaults)
    if problem is not None:
        raise MessageError(problem.replace("the message", "the batch's context", 1))
    messages: list[Message] = []
    rejected: list[Rejected] = []
    seen: set[str] = set()
    for index, raw in enumerate(items):
        try:
            message = validate_message(raw, max_bytes=max_bytes, defaults=defaults)
        except MessageError as e:
            rejected.append(Rejected(index, _rejected_id(raw), str(e)))
            continue
        if message.message_id in seen:
            continue  # the same message twice in one batch: one event
        seen.add(message.message_id)
        messages.append(message)
    return Batch(messages, rejected)
