"""The verified-token cache: expiry, the size bound, LRU order, what is never stored."""

from __future__ import annotations

from typing import Any

import pytest

from mobileplane.services.gateway.keyring import PublicKey
from mobileplane.services.gateway.tokencache import VerifiedTokens, fingerprint

KEY = PublicKey(kid="k1", key_type="EC", algorithm="ES256", key=object())
NOW = 1_800_000_000.0


def claims(**changes: Any) -> dict[str, Any]:
    return {"iss": "https://iss", "sub": "alice", "exp": NOW + 300, **changes}


def cache(entries: int = 10, ttl: float = 60, leeway: float = 30) -> VerifiedTokens:
    return VerifiedTokens(max_entries=entries, ttl=ttl, leeway=leeway)


def test_a_stored_token_is_found_with_its_claims_and_key_and_others_are_not() -> None:
    tokens = cache()
    tokens.put("a.b.c", claims(), kid="k1", key=KEY, now=NOW)
    found = tokens.get("a.b.c", NOW + 1)
    assert found is not None
    assert found.kid == "k1" and found.key is KEY and found.claims["sub"] == "alice"
    assert tokens.get("a.b.d", NOW + 1) is None
    assert tokens.get("a.b.c ", NOW + 1) is None  # byte-for-byte the verified token only


@pytest.mark.parametrize(
    ("exp", "ttl", "leeway", "valid_until"),
    [
        (NOW + 300, 60, 30, NOW + 60),  # the ttl comes first
        (NOW + 20, 60, 30, NOW + 50),  # exp + leeway comes first
        (NOW + 20, 60, 0, NOW + 20),  # exp, without leeway
    ],
)
def test_an_entry_lives_until_the_sooner_of_exp_plus_leeway_and_the_ttl(
    exp: float, ttl: float, leeway: float, valid_until: float
) -> None:
    tokens = cache(ttl=ttl, leeway=leeway)
    tokens.put("t", claims(exp=exp), kid="k1", key=KEY, now=NOW)
    assert tokens.get("t", valid_until - 0.001) is not None
    assert tokens.get("t", valid_until) is None
    assert len(tokens) == 0  # an expired entry is dropped when met


@pytest.mark.parametrize(
    "bad",
    [
        {"exp": None},
        {"exp": "1900000000"},
        {"exp": True},
        {"exp": NOW - 31},  # already past exp + leeway
    ],
)
def test_tokens_without_a_usable_future_exp_are_not_stored(bad: dict[str, Any]) -> None:
    tokens = cache()
    tokens.put("t", claims(**bad), kid="k1", key=KEY, now=NOW)
    assert len(tokens) == 0 and tokens.get("t", NOW) is None


def test_the_size_is_bounded_and_the_least_recently_used_goes_first() -> None:
    tokens = cache(entries=2)
    tokens.put("one", claims(), kid="k1", key=KEY, now=NOW)
    tokens.put("two", claims(), kid="k1", key=KEY, now=NOW)
    assert tokens.get("one", NOW) is not None  # "one" is now the most recently used
    tokens.put("three", claims(), kid="k1", key=KEY, now=NOW)
    assert len(tokens) == 2
    assert tokens.get("two", NOW) is None
    assert tokens.get("one", NOW) is not None and tokens.get("three", NOW) is not None
    for i in range(100):
        tokens.put(f"t{i}", claims(), kid="k1", key=KEY, now=NOW)
    assert len(tokens) == 2


def test_stored_claims_are_a_read_only_copy_and_tokens_are_kept_as_hashes() -> None:
    tokens = cache()
    original = claims()
    tokens.put("secret.token.value", original, kid="k1", key=KEY, now=NOW)
    original["sub"] = "mallory"  # the caller's dict changing later changes nothing
    found = tokens.get("secret.token.value", NOW)
    assert found is not None and found.claims["sub"] == "alice"
    with pytest.raises(TypeError):
        found.claims["sub"] = "mallory"  # type: ignore[index]
    assert list(tokens._entries) == [fingerprint("secret.token.value")]
    assert len(fingerprint("secret.token.value")) == 32


def test_a_token_verified_again_replaces_its_entry() -> None:
    tokens = cache()
    tokens.put("t", claims(), kid="k1", key=KEY, now=NOW)
    other = PublicKey(kid="k1", key_type="EC", algorithm="ES256", key=object())
    tokens.put("t", claims(), kid="k1", key=other, now=NOW + 10)
    found = tokens.get("t", NOW + 65)  # the ttl counts from the second verification
    assert len(tokens) == 1 and found is not None and found.key is other


@pytest.mark.parametrize(("entries", "ttl"), [(0, 60), (10, 0), (-1, 60)])
def test_a_cache_needs_room_and_a_lifetime(entries: int, ttl: float) -> None:
    with pytest.raises(ValueError, match="max_entries"):
        VerifiedTokens(max_entries=entries, ttl=ttl, leeway=30)
