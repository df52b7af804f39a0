"""Redis key namespaces isolate deployments, tenants and tests."""

from __future__ import annotations

import pytest

from mobileplane.services.kit.redis import KeySpace


@pytest.mark.parametrize(
    ("prefix", "parts", "key"),
    [
        ("mp", ("sessions", "abc"), "mp:sessions:abc"),
        ("mp:test-7f3a", ("rate", "ip", "1.2.3.4"), "mp:test-7f3a:rate:ip:1.2.3.4"),
        ("t.1_x", ("k",), "t.1_x:k"),
    ],
)
def test_key(prefix: str, parts: tuple[str, ...], key: str) -> None:
    assert KeySpace(prefix).key(*parts) == key


def test_child_nests_and_strip_inverts() -> None:
    sessions = KeySpace("mp").child("tenant-1").child("sessions")
    key = sessions.key("abc")
    assert key == "mp:tenant-1:sessions:abc"
    assert sessions.owns(key)
    assert sessions.strip(key) == "abc"
    assert not KeySpace("mp:tenant-2").owns(key)
    with pytest.raises(ValueError):
        KeySpace("mp:tenant-2").strip(key)


def test_prefix_is_not_a_prefix_of_a_longer_namespace() -> None:
    assert not KeySpace("mp:a").owns("mp:ab:key")


@pytest.mark.parametrize("prefix", ["", ":", "has space", "ends::", "star*", "new\nline"])
def test_bad_prefixes_are_refused(prefix: str) -> None:
    with pytest.raises(ValueError):
        KeySpace(prefix)


def test_trailing_separator_is_dropped() -> None:
    assert KeySpace("t-abc:") == KeySpace("t-abc")
    assert KeySpace("t-abc:").key("k") == "t-abc:k"


def test_key_needs_parts() -> None:
    with pytest.raises(ValueError):
        KeySpace("mp").key()


def test_pattern_matches_only_the_namespace() -> None:
    assert KeySpace("mp:t1").pattern() == "mp:t1:*"
