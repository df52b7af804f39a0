"""What a batch changes in profiles, groups and identity links (pure).

Profiles are platform-wide, keyed by ``userId``: a user signed in on iOS and Android is one
user (user ids are the platform's, the tokens' ``sub``). Every message with a ``userId``
moves the profile's ``first_seen``/``last_seen``; ``identify`` calls merge their ``traits``
into it. Groups (``group`` calls) keep their traits the same way, keyed by ``groupId``.

Traits merge in event-time order: a newer call's traits override older values key by key,
and a late-arriving older call only fills keys the profile does not have yet (the store does
the same against what is already stored, with the time of the newest merged call).

Identity links record that an ``anonymousId`` (per source: it is per device) belongs to a
user: any message carrying both, and ``alias`` calls (``previousId`` -> ``userId``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from mobileplane.services.analytics.spec import Message


@dataclass
class TraitsUpdate:
    """The folded change to one profile or group."""

    key: str
    first_seen: datetime
    last_seen: datetime
    traits: dict[str, Any] = field(default_factory=dict)
    traits_at: datetime | None = None  # time of the newest call that set traits


@dataclass(frozen=True)
class Link:
    anonymous_id: str
    user_id: str
    kind: str  # "identify" (seen together) | "alias"
    first_seen: datetime
    last_seen: datetime


def fold_traits(items: Iterable[tuple[str, dict[str, Any] | None, datetime]]) -> list[TraitsUpdate]:
    """``(key, traits or None, time)`` -> one update per key, sorted by key (the order rows
    are locked in, so concurrent batches cannot deadlock)."""
    by_key: dict[str, TraitsUpdate] = {}
    for key, traits, at in sorted(items, key=lambda i: i[2]):
        update = by_key.get(key)
        if update is None:
            update = by_key[key] = TraitsUpdate(key, first_seen=at, last_seen=at)
        update.first_seen = min(update.first_seen, at)
        update.last_seen = max(update.last_seen, at)
        if traits is not None:
            update.traits.update(traits)
            update.traits_at = at
    return [by_key[k] for k in sorted(by_key)]


def profile_updates(messages: Sequence[tuple[Message, datetime]]) -> list[TraitsUpdate]:
    return fold_traits(
        (m.user_id, m.traits if m.type == "identify" else None, at)
        for m, at in messages
        if m.user_id is not None
    )


def group_updates(messages: Sequence[tuple[Message, datetime]]) -> list[TraitsUpdate]:
    return fold_traits(
        (m.group_id, m.traits, at)
        for m, at in messages
        if m.type == "group" and m.group_id is not None
    )


def links(messages: Sequence[tuple[Message, datetime]]) -> list[Link]:
    found: dict[tuple[str, str, str], Link] = {}
    for m, at in messages:
        pairs: list[tuple[str, str]] = []
        if m.user_id is not None and m.anonymous_id is not None:
            pairs.append((m.anonymous_id, "identify"))
        if m.type == "alias" and m.previous_id is not None and m.user_id is not None:
            pairs.append((m.previous_id, "alias"))
        for anonymous_id, kind in pairs:
            assert m.user_id is not None
            key = (anonymous_id, m.user_id, kind)
            old = found.get(key)
            first = at if old is None else min(old.first_seen, at)
            last = at if old is None else max(old.last_seen, at)
            found[key] = Link(anonymous_id, m.user_id, kind, first, last)
    return [found[k] for k in sorted(found)]
