"""Signing keys: generation, rotation without invalidating issued tokens, pruning."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import jwt
import pytest

from mobileplane.operator.keys import (
    MAX_PASSIVE_KEYS,
    KeySet,
    generate,
    needs_key,
    prune,
    rotate,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize("algorithm", ["ES256", "RS256"])
def test_generated_keys_sign_tokens_the_jwks_verifies(algorithm: str) -> None:
    key = generate(algorithm, T0)
    token = jwt.encode(
        {"sub": "u1"}, key.private_pem, algorithm=algorithm, headers={"kid": key.kid}
    )
    jwks = KeySet(keys=(key,)).jwks()
    public = jwt.PyJWKSet.from_dict(jwks)[key.kid]
    assert jwt.decode(token, public.key, algorithms=[algorithm])["sub"] == "u1"
    assert key.public_jwk["alg"] == algorithm and key.public_jwk["use"] == "sig"
    assert "d" not in key.public_jwk  # never publish the private part


def test_unknown_algorithm_is_refused() -> None:
    with pytest.raises(ValueError, match="ES256 or RS256"):
        generate("HS256", T0)


@pytest.mark.parametrize(
    ("keyset", "algorithm", "rotation", "expected"),
    [
        pytest.param(KeySet(), "ES256", None, True, id="no-key-yet"),
        pytest.param("es", "ES256", None, False, id="same"),
        pytest.param("es", "ES256", "r1", True, id="rotation-requested"),
        pytest.param("es-r1", "ES256", "r1", False, id="rotation-done"),
        pytest.param("es", "RS256", None, True, id="algorithm-changed"),
    ],
)
def test_needs_key(keyset: object, algorithm: str, rotation: str | None, expected: bool) -> None:
    key = generate("ES256", T0)
    sets = {"es": KeySet(keys=(key,)), "es-r1": KeySet(keys=(key,), rotation="r1")}
    ks = sets[keyset] if isinstance(keyset, str) else keyset
    assert isinstance(ks, KeySet)
    assert needs_key(ks, algorithm, rotation) is expected


def test_rotation_keeps_old_tokens_valid_until_pruned() -> None:
    old = generate("ES256", T0)
    token = jwt.encode({"sub": "u1"}, old.private_pem, algorithm="ES256", headers={"kid": old.kid})
    rotated = rotate(KeySet(keys=(old,)), generate("ES256", T0), "r1", T0)
    assert rotated.active is not None and rotated.active.kid != old.kid
    assert rotated.rotation == "r1"
    # The old key is still published: a token it signed still verifies.
    jwks = jwt.PyJWKSet.from_dict(rotated.jwks())
    assert jwt.decode(token, jwks[old.kid].key, algorithms=["ES256"])["sub"] == "u1"
    assert rotated.jwks()["keys"][0]["kid"] == rotated.active.kid

    ttl = timedelta(minutes=15)
    assert {k.kid for k in prune(rotated, ttl, T0 + ttl).keys} == {old.kid, rotated.active.kid}
    late = prune(rotated, ttl, T0 + 2 * ttl + timedelta(seconds=1))
    assert [k.kid for k in late.keys] == [rotated.active.kid]


def test_passive_keys_are_bounded() -> None:
    ks = KeySet(keys=(generate("ES256", T0),))
    for i in range(MAX_PASSIVE_KEYS + 3):
        ks = rotate(ks, generate("ES256", T0), f"r{i}", T0 + timedelta(seconds=i))
    pruned = prune(ks, timedelta(hours=1), T0 + timedelta(minutes=1))
    assert len([k for k in pruned.keys if not k.active]) == MAX_PASSIVE_KEYS
    assert pruned.active == ks.active


def test_json_round_trip() -> None:
    ks = rotate(KeySet(keys=(generate("RS256", T0),)), generate("ES256", T0), "r", T0)
    assert KeySet.from_json(ks.to_json()) == ks
