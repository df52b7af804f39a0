"""Bucketing as Unleash computes it, and monotone as the percentage rises."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from UnleashClient.utils import normalized_hash as unleash_hash

from mobileplane.rollout.bucketing import is_enabled, murmur3_32, normalized_hash


@pytest.mark.parametrize(
    ("data", "seed", "expected"),
    [  # the reference vectors of MurmurHash3's SMHasher verification
        (b"", 0, 0),
        (b"", 1, 0x514E28B7),
        (b"\xff\xff\xff\xff", 0, 0x76293B50),
        (b"!Ce\x87", 0, 0xF55B516B),
        (b"!Ce", 0, 0x7E4A8634),
        (b"!C", 0, 0xA0F7B07A),
        (b"!", 0, 0x72661CF4),
        (b"Hello, world!", 0x9747B28C, 0x24884CBA),
    ],
)
def test_murmur3_reference_vectors(data: bytes, seed: int, expected: int) -> None:
    assert murmur3_32(data, seed) == expected


@given(st.text(max_size=40), st.text(max_size=40))
def test_the_same_bucket_as_the_unleash_client(group: str, user: str) -> None:
    assert normalized_hash(group, user) == unleash_hash(user, group)


@given(st.text(min_size=1, max_size=20), st.integers(0, 100), st.integers(0, 100))
def test_raising_the_percentage_never_drops_a_user(user: str, p: int, q: int) -> None:
    low, high = sorted((p, q))
    if is_enabled(low, "release-2.4.0", user):
        assert is_enabled(high, "release-2.4.0", user)


def test_edges_and_share() -> None:
    users = [f"user-{i}" for i in range(10_000)]
    assert not any(is_enabled(0, "g", u) for u in users)
    assert all(is_enabled(100, "g", u) for u in users)
    share = sum(is_enabled(25, "g", u) for u in users) / len(users)
    assert 0.23 < share < 0.27
