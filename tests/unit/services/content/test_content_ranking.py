"""The feed's ranking function and conditional requests: worked examples."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from mobileplane.services.content.etags import etag_for, none_match
from mobileplane.services.content.ranking import (
    Item,
    UserContext,
    eligible,
    preferred_locale,
    rank,
)

NOW = datetime(2026, 11, 25, 12, tzinfo=UTC)
DAY = timedelta(days=1)


def item(id: str, age_days: float = 1, **kw: object) -> Item:
    return Item(id=id, published_at=NOW - age_days * DAY, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("candidate", "user", "expected"),
    [
        (item("a"), UserContext(), True),
        (Item("draft", published_at=None), UserContext(), False),
        (Item("future", published_at=NOW + DAY), UserContext(), False),
        (item("expired", expires_at=NOW), UserContext(), False),
        (item("pt", locale="pt-BR"), UserContext(locale="pt"), True),
        (item("pt", locale="pt-BR"), UserContext(locale="en-US"), False),
        (item("pt", locale="pt-BR"), UserContext(), False),
        (item("vip", segments=frozenset({"vip"})), UserContext(), False),
        (item("vip", segments=frozenset({"vip"})), UserContext(segments=frozenset({"vip"})), True),
    ],
)
def test_eligibility(candidate: Item, user: UserContext, expected: bool) -> None:
    assert eligible(candidate, user, NOW) is expected


def test_priority_then_interests_then_freshness() -> None:
    user = UserContext(locale="en-GB", interests=frozenset({"running", "music"}))
    items = [
        item("old-plain", age_days=30),
        item("fresh-plain", age_days=0),
        item("interesting", age_days=10, tags=frozenset({"running", "music", "x"})),
        item("pinned", age_days=60, priority=2),
        item("exact-locale", age_days=0, locale="en-GB"),
        item("other-lang", age_days=0, locale="de"),
    ]
    order = [r.item.id for r in rank(items, user, NOW)]
    assert order == ["pinned", "interesting", "exact-locale", "fresh-plain", "old-plain"]
    top = rank(items, user, NOW)[1]
    assert top.reasons == ("interests: music, running",)


def test_ties_are_broken_by_recency_then_id() -> None:
    same = [Item("b", published_at=NOW), Item("a", published_at=NOW)]
    assert [r.item.id for r in rank(same, UserContext(), NOW)] == ["a", "b"]


def test_limit() -> None:
    assert len(rank([item(str(i)) for i in range(10)], UserContext(), NOW, limit=3)) == 3


@pytest.mark.parametrize(
    ("header", "supported", "expected"),
    [
        (None, (), None),
        ("", (), None),
        ("de-CH, de;q=0.9, en;q=0.8", (), "de-CH"),
        ("en;q=0.5, fr;q=0.9", (), "fr"),
        ("*", (), None),
        ("xx;q=oops, es", (), "es"),
        ("de;q=0", (), None),
        ("ja, pt-BR;q=0.8", ("pt",), "pt-BR"),
    ],
)
def test_preferred_locale(
    header: str | None, supported: tuple[str, ...], expected: str | None
) -> None:
    assert preferred_locale(header, supported) == expected


@pytest.mark.parametrize(
    ("header", "matches"),
    [
        (None, False),
        ("*", True),
        ('"abc"', True),
        ('W/"abc"', True),
        ('"x", "abc"', True),
        ('"abcd"', False),
    ],
)
def test_if_none_match(header: str | None, matches: bool) -> None:
    assert none_match(header, '"abc"') is matches


def test_etags_follow_the_bytes() -> None:
    assert etag_for(b"a") == etag_for(b"a") != etag_for(b"b")
    assert etag_for(b"a").startswith('"') and etag_for(b"a").endswith('"')
