"""Which content a user sees, in which order: a documented, pure ranking function.

Filter, then score. An item is **eligible** for a user when it is published (``published_at``
at or before now, not yet ``expires_at``), its locale fits the user's (no locale: any user;
otherwise the same primary language, ``pt-BR`` fits ``pt``), and, if it targets segments, the
user is in at least one of them.

The **score** of an eligible item adds:

- ``10 × priority`` — editors pin what matters (priority 0–10);
- ``3 × |interests ∩ tags|`` — what the user said they like;
- ``5 × 0.5^(age / 3 days)`` — freshness, halving every three days;
- ``1`` when the locale matches exactly (``pt-BR`` for a ``pt-BR`` user).

Ties go to the newer item, then to the smaller id, so the order is total and stable.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

HALF_LIFE = timedelta(days=3)


@dataclass(frozen=True)
class Item:
    id: str
    published_at: datetime | None
    expires_at: datetime | None = None
    locale: str | None = None
    tags: frozenset[str] = frozenset()
    segments: frozenset[str] = frozenset()
    priority: int = 0


@dataclass(frozen=True)
class UserContext:
    locale: str | None = None
    interests: frozenset[str] = frozenset()
    segments: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Ranked:
    item: Item
    score: float
    reasons: tuple[str, ...] = field(default=())


def _language(locale: str) -> str:
    return locale.replace("_", "-").split("-", 1)[0].lower()


def eligible(item: Item, user: UserContext, now: datetime) -> bool:
    if item.published_at is None or item.published_at > now:
        return False
    if item.expires_at is not None and item.expires_at <= now:
        return False
    if item.locale and (not user.locale or _language(item.locale) != _language(user.locale)):
        return False
    return not item.segments or bool(item.segments & user.segments)


def score(item: Item, user: UserContext, now: datetime) -> Ranked:
    reasons = []
    total = 10.0 * item.priority
    if item.priority:
        reasons.append(f"priority {item.priority}")
    matched = item.tags & user.interests
    if matched:
        total += 3.0 * len(matched)
        reasons.append("interests: " + ", ".join(sorted(matched)))
    assert item.published_at is not None  # eligible items are published
    age = max(now - item.published_at, timedelta(0))
    total += 5.0 * 0.5 ** (age / HALF_LIFE)
    if item.locale and user.locale and item.locale.lower() == user.locale.lower():
        total += 1.0
        reasons.append("locale")
    return Ranked(item, total, tuple(reasons))


def rank(items: Iterable[Item], user: UserContext, now: datetime, limit: int = 50) -> list[Ranked]:
    """The eligible items, best first, at most ``limit``."""
    scored = [score(i, user, now) for i in items if eligible(i, user, now)]
    scored.sort(key=lambda r: (-r.score, -(r.item.published_at or now).timestamp(), r.item.id))
    return scored[:limit]


def preferred_locale(accept_language: str | None, supported: Sequence[str] = ()) -> str | None:
    """The first language of an ``Accept-Language`` header (by q-value; RFC 9110 §12.5.4)."""
    if not accept_language:
        return None
    choices = []
    for position, part in enumerate(accept_language.split(",")):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                continue
        if tag and tag != "*" and quality > 0:
            choices.append((-quality, position, tag.strip()))
    if not choices:
        return None
    tags = [t for _, _, t in sorted(choices)]
    if supported:
        for tag in tags:
            if any(_language(tag) == _language(s) for s in supported):
                return tag
    return tags[0]
