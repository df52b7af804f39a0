"""Token checks without I/O: header, keys, claims against an injected clock, challenges."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import jwt
import pytest

from mobileplane.operator.keys import generate
from mobileplane.services.gateway.forwarding import (
    client_response_headers,
    upstream_request_headers,
)
from mobileplane.services.gateway.keyring import KeyCacheState, KeyRing, lookup_decision, parse_jwks
from mobileplane.services.gateway.tokens import (
    TokenPolicy,
    TokenRejected,
    bearer_token,
    check_claims,
    read_header,
    verify_signature,
    www_authenticate,
)

POLICY = TokenPolicy("https://iss", "https://iss", frozenset({"ES256", "RS256"}), leeway=30)
NOW = 1_800_000_000.0
KEY = generate("ES256", datetime.now(UTC))


def claims(**changes: Any) -> dict[str, Any]:
    base = {
        "iss": "https://iss",
        "aud": "https://iss",
        "sub": "alice",
        "exp": NOW + 300,
        "nbf": NOW,
        "iat": NOW,
        "scope": "sync content",
        "sid": "s1",
        "client_id": "app",
        "jti": "j1",
    }
    base.update(changes)
    return {k: v for k, v in base.items() if v is not None}


@pytest.mark.parametrize(
    ("name", "changes", "reason"),
    [
        ("expired beyond leeway", {"exp": NOW - 31}, "expired"),
        ("not yet valid", {"nbf": NOW + 31}, "not valid yet"),
        ("issued in the future", {"iat": NOW + 60}, "future"),
        ("other issuer", {"iss": "https://evil"}, "another issuer"),
        ("other audience", {"aud": ["https://a", "https://b"]}, "another audience"),
        ("no exp", {"exp": None}, "no exp"),
        ("exp is a string", {"exp": "tomorrow"}, "not a number"),
        ("exp is a bool", {"exp": True}, "not a number"),
        ("no sub", {"sub": None}, "no subject"),
        ("sub with a newline", {"sub": "a\nb"}, "printable"),
        ("scope not a string", {"scope": ["sync"]}, "scope"),
    ],
)
def test_claims_refused(name: str, changes: dict[str, Any], reason: str) -> None:
    with pytest.raises(TokenRejected, match=reason):
        check_claims(claims(**changes), POLICY, NOW)


@pytest.mark.parametrize(
    ("name", "changes"),
    [
        ("within leeway after exp", {"exp": NOW - 29}),
        ("within leeway before nbf", {"nbf": NOW + 29}),
        ("audience in a list", {"aud": ["https://other", "https://iss"]}),
        ("azp instead of client_id", {"client_id": None, "azp": "web"}),
    ],
)
def test_claims_accepted(name: str, changes: dict[str, Any]) -> None:
    identity = check_claims(claims(**changes), POLICY, NOW)
    assert identity.subject == "alice" and identity.scopes == {"sync", "content"}


def _token(header: dict[str, Any], algorithm: str = "ES256") -> str:
    return jwt.encode(claims(), KEY.private_pem, algorithm=algorithm, headers=header)


@pytest.mark.parametrize(
    ("name", "token", "reason"),
    [
        ("not a JWT", "abc", "not a signed JWT"),
        ("too long", "a." * 5000 + "b", "too long"),
        ("typ JWT", _token({"kid": "k", "typ": "JWT"}), "not an access token"),
        ("no kid", _token({"typ": "at+jwt"}), "key id"),
        ("jku", _token({"kid": "k", "typ": "at+jwt", "jku": "http://evil"}), "jku"),
        (
            "HS256 token",
            jwt.encode({}, "k" * 32, algorithm="HS256", headers={"kid": "k", "typ": "at+jwt"}),
            "algorithm is not accepted",
        ),
        ("allowed algorithm", _token({"kid": "k", "typ": "at+jwt"}), None),
    ],
)
def test_headers(name: str, token: str, reason: str | None) -> None:
    if reason is None:
        assert read_header(token, POLICY).alg == "ES256"
        return
    with pytest.raises(TokenRejected, match=reason):
        read_header(token, POLICY)


def test_an_rs256_key_cannot_verify_an_es256_header() -> None:
    rsa = generate("RS256", datetime.now(UTC))
    ring = parse_jwks({"keys": [rsa.public_jwk]}, fetched_at=0)
    token = _token({"kid": rsa.kid, "typ": "at+jwt"})
    header = read_header(token, POLICY)
    with pytest.raises(TokenRejected, match="does not match its key"):
        verify_signature(token, header, ring.keys[rsa.kid])


def test_a_good_signature_verifies() -> None:
    ring = parse_jwks({"keys": [KEY.public_jwk]}, fetched_at=0)
    token = _token({"kid": KEY.kid, "typ": "at+jwt"})
    assert verify_signature(token, read_header(token, POLICY), ring.keys[KEY.kid])["sub"] == "alice"


def test_jwks_parsing_skips_keys_never_to_trust() -> None:
    good = KEY.public_jwk
    ring = parse_jwks(
        {
            "keys": [
                good,
                {"kty": "oct", "kid": "hmac", "k": "c2VjcmV0"},
                {**good, "kid": "enc", "use": "enc"},
                {**good, "kid": "wrongalg", "alg": "RS256"},
                {**good, "kid": "private", "d": "AAAA"},
                {"kid": "broken", "kty": "EC", "crv": "P-256", "x": "!", "y": "!"},
                "not a key",
            ]
        },
        fetched_at=5,
    )
    assert set(ring.keys) == {KEY.kid}


@pytest.mark.parametrize(
    ("name", "state", "kid", "now", "expected"),
    [
        ("nothing yet", KeyCacheState(), "k", 0, "fetch"),
        ("nothing, just failed", KeyCacheState(None, last_attempt_at=0), "k", 10, "unknown"),
        ("known and fresh", KeyCacheState(KeyRing({"k": None}, 0), 0), "k", 10, "use"),  # type: ignore[dict-item]
        ("known but stale", KeyCacheState(KeyRing({"k": None}, 0), 0), "k", 400, "fetch"),  # type: ignore[dict-item]
        ("unknown, refetch allowed", KeyCacheState(KeyRing({}, 0), 0), "new", 31, "fetch"),
        ("unknown, too soon", KeyCacheState(KeyRing({}, 0), 0), "new", 29, "unknown"),
    ],
)
def test_lookup_decisions(
    name: str, state: KeyCacheState, kid: str, now: float, expected: str
) -> None:
    assert lookup_decision(state, kid, now, max_age=300, min_refetch_interval=30) == expected


def test_bearer_and_challenges() -> None:
    assert bearer_token(None) is None
    assert bearer_token("bearer abc") == "abc"
    with pytest.raises(TokenRejected):
        bearer_token("Basic abc")
    assert www_authenticate("invalid_token", 'bad "x"\\') == (
        'Bearer realm="mobileplane", error="invalid_token", error_description="bad x"'
    )


def test_forwarded_headers() -> None:
    out = upstream_request_headers(
        [
            ("Connection", "keep-alive, X-Private"),
            ("X-Private", "1"),
            ("X-MobilePlane-Subject", "root"),
            ("X-Forwarded-For", "6.6.6.6"),
            ("Accept", "application/json"),
            ("Set-Cookie", "a"),
            ("Authorization", "Bearer "),  # trailing whitespace is not part of a value
        ],
        identity_headers={"x-mobileplane-subject": "alice"},
        client_ip="10.0.0.1",
        scheme="https",
        host="api.example",
        request_id="r1",
    )
    assert out == [
        ("Accept", "application/json"),
        ("Set-Cookie", "a"),
        ("Authorization", "Bearer"),
        ("x-mobileplane-subject", "alice"),
        ("x-forwarded-for", "10.0.0.1"),
        ("x-forwarded-proto", "https"),
        ("x-forwarded-host", "api.example"),
        ("x-request-id", "r1"),
    ]
    assert client_response_headers(
        [("Transfer-Encoding", "chunked"), ("Set-Cookie", "a"), ("Set-Cookie", "b")]
    ) == [
        ("Set-Cookie", "a"),
        ("Set-Cookie", "b"),
    ]


def test_the_upstream_date_is_dropped_for_the_gateway_servers_own() -> None:
    # uvicorn writes Date on every response the gateway sends; a forwarded one was a second.
    assert client_response_headers(
        [("date", "Wed, 02 Dec 2026 19:47:38 GMT"), ("Content-Type", "text/plain"), ("ETag", '"1"')]
    ) == [("Content-Type", "text/plain"), ("ETag", '"1"')]
