"""Token validation at the gateway, with real keys, a real JWKS server and real Redis."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import jwt
import pytest
import redis.asyncio
from cryptography.hazmat.primitives import serialization

from mobileplane.operator.keys import SigningKey, generate
from mobileplane.services.kit.identity import IDENTITY_HEADERS, revoked_session_key
from mobileplane.services.kit.redis import KeySpace

pytestmark = pytest.mark.integration

Sign = Callable[..., str]


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def headers_of(response: Any) -> dict[str, str]:
    return {k: v for k, v in response.json()["headers"]}


async def test_a_valid_token_reaches_the_upstream_with_the_identity(
    gateway: Any, es_key: SigningKey, sign_token: Sign
) -> None:
    spoofed = {h: "mallory" for h in IDENTITY_HEADERS}
    async with gateway() as client:
        response = await client.get(
            "/sync/items?x=1",
            headers={
                **bearer(sign_token(es_key, jti="t-1")),
                **spoofed,
                "x-request-id": "req-abc",
                "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
                "x-forwarded-for": "6.6.6.6",
                "connection": "x-secret",
                "x-secret": "hop",
                "keep-alive": "timeout=5",
            },
        )
    assert response.status_code == 200, response.text
    seen = headers_of(response)
    assert seen["x-mobileplane-subject"] == "alice"
    assert seen["x-mobileplane-scopes"] == "content sync"
    assert seen["x-mobileplane-session"] == "session-1"
    assert seen["x-mobileplane-client"] == "app"
    assert seen["x-mobileplane-token-id"] == "t-1"
    assert seen["x-request-id"] == "req-abc"
    assert response.headers["x-request-id"] == "req-abc"
    trace_id = seen["traceparent"].split("-")[1]
    assert trace_id == "0af7651916cd43dd8448eb211c80319c"
    assert seen["traceparent"].split("-")[2] != "b7ad6b7169203331"  # the gateway's span
    assert seen["x-forwarded-for"] == "127.0.0.1"
    assert seen["x-forwarded-proto"] == "http"
    assert seen["x-forwarded-host"] == "gw.test"
    assert "x-secret" not in seen and "keep-alive" not in seen
    assert response.json()["raw_path"] == "/sync/items"
    assert response.json()["query"] == "x=1"
    # Hop-by-hop headers of the upstream's response are not passed on.
    assert response.headers["x-upstream"] == "yes"
    assert "x-drop-me" not in response.headers
    assert "ratelimit" in response.headers


async def test_identity_headers_are_stripped_on_public_routes(
    gateway: Any, es_key: SigningKey, sign_token: Sign
) -> None:
    async with gateway() as client:
        response = await client.post(
            "/auth/token",
            headers={"x-mobileplane-subject": "root", "X-MobilePlane-Scopes": "admin"},
            content=b"grant_type=x",
        )
    assert response.status_code == 200
    names = {k.lower() for k in headers_of(response)}
    assert names.isdisjoint(IDENTITY_HEADERS)
    assert response.json()["method"] == "POST"
    fresh = headers_of(response)["x-request-id"]
    assert fresh == response.headers["x-request-id"] and len(fresh) == 32


def _hs256_with_public_key(key: SigningKey) -> str:
    """The classic algorithm-confusion forgery: HS256 keyed with the issuer's public key."""
    public_pem = jwt.PyJWK(key.public_jwk).key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    header = {"alg": "HS256", "typ": "at+jwt", "kid": key.kid}
    now = int(time.time())
    claims = {"iss": ISSUER_, "aud": ISSUER_, "sub": "mallory", "exp": now + 300, "scope": "sync"}
    signing_input = _b64(json.dumps(header).encode()) + "." + _b64(json.dumps(claims).encode())
    signature = hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest()
    return signing_input + "." + _b64(signature)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unsigned(claims: dict[str, Any], kid: str) -> str:
    header = {"alg": "none", "typ": "at+jwt", "kid": kid}
    return _b64(json.dumps(header).encode()) + "." + _b64(json.dumps(claims).encode()) + "."


ISSUER_ = "https://api.example.test"


@pytest.mark.parametrize(
    "case",
    [
        "expired",
        "not-yet-valid",
        "wrong-audience",
        "wrong-issuer",
        "forged-signature",
        "hs256-with-public-key",
        "alg-none",
        "not-an-access-token",
        "unknown-kid",
        "garbage",
        "basic-scheme",
    ],
)
async def test_bad_tokens_get_401_invalid_token(
    gateway: Any, es_key: SigningKey, sign_token: Sign, case: str
) -> None:
    now = int(time.time())
    impostor = generate("ES256", datetime.now(UTC))
    # The impostor signs with its own key but claims the real key's kid.
    impostor_as_real = SigningKey(
        kid=es_key.kid,
        algorithm="ES256",
        private_pem=impostor.private_pem,
        public_jwk=impostor.public_jwk,
        created_at=impostor.created_at,
    )
    tokens = {
        "expired": lambda: sign_token(es_key, exp=now - 120, iat=now - 600, nbf=now - 600),
        "not-yet-valid": lambda: sign_token(es_key, nbf=now + 600),
        "wrong-audience": lambda: sign_token(es_key, aud="https://other.example"),
        "wrong-issuer": lambda: sign_token(es_key, iss="https://evil.example"),
        "forged-signature": lambda: sign_token(impostor_as_real),
        "hs256-with-public-key": lambda: _hs256_with_public_key(es_key),
        "alg-none": lambda: _unsigned(
            {"iss": ISSUER_, "aud": ISSUER_, "sub": "x", "exp": now + 60}, es_key.kid
        ),
        "not-an-access-token": lambda: sign_token(es_key, header={"typ": "JWT"}),
        "unknown-kid": lambda: sign_token(impostor),
        "garbage": lambda: "not.a.jwt",
    }
    if case == "basic-scheme":
        headers = {"authorization": "Basic YWxpY2U6c2VjcmV0"}
    else:
        headers = bearer(tokens[case]())
    async with gateway() as client:
        response = await client.get("/sync/items", headers=headers)
    assert response.status_code == 401, response.text
    assert response.json()["error"]["code"] == "invalid_token"
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith("Bearer ") and 'error="invalid_token"' in challenge
    assert "error_description=" in challenge


async def test_no_token_is_401_without_an_error_code_and_missing_scope_is_403(
    gateway: Any, es_key: SigningKey, sign_token: Sign
) -> None:
    async with gateway() as client:
        anonymous = await client.get("/sync/items")
        narrow = await client.get("/profiles/me", headers=bearer(sign_token(es_key)))
    assert anonymous.status_code == 401
    assert "error=" not in anonymous.headers["www-authenticate"]
    assert narrow.status_code == 403
    assert narrow.json()["error"]["code"] == "insufficient_scope"
    assert 'error="insufficient_scope"' in narrow.headers["www-authenticate"]
    assert 'scope="profiles"' in narrow.headers["www-authenticate"]


async def test_a_revoked_session_is_refused_and_others_are_not(
    gateway: Any,
    es_key: SigningKey,
    sign_token: Sign,
    redis_client: redis.asyncio.Redis,
    redis_prefix: str,
) -> None:
    await redis_client.set(revoked_session_key(KeySpace(redis_prefix), "lost-phone"), "1", ex=600)
    async with gateway() as client:
        revoked = await client.get(
            "/sync/items", headers=bearer(sign_token(es_key, sid="lost-phone"))
        )
        other = await client.get("/sync/items", headers=bearer(sign_token(es_key, sid="tablet")))
    assert revoked.status_code == 401
    assert "revoked" in revoked.headers["www-authenticate"]
    assert other.status_code == 200


async def test_after_key_rotation_new_and_old_tokens_validate(
    gateway: Any, es_key: SigningKey, sign_token: Sign, jwks_state: Any
) -> None:
    old_token = sign_token(es_key)
    async with gateway() as client:
        assert (await client.get("/sync/a", headers=bearer(old_token))).status_code == 200
        fetched = jwks_state.fetches
        # Rotation: the JWKS now publishes a new RSA key first and keeps the old one.
        new_key = generate("RS256", datetime.now(UTC))
        jwks_state.keys.insert(0, new_key.public_jwk)
        assert (await client.get("/sync/b", headers=bearer(sign_token(new_key)))).status_code == 200
        assert jwks_state.fetches == fetched + 1
        assert (await client.get("/sync/c", headers=bearer(old_token))).status_code == 200
        # The old token expires in its own time: an expired one signed by the old key fails.
        expired = sign_token(es_key, exp=int(time.time()) - 120)
        assert (await client.get("/sync/d", headers=bearer(expired))).status_code == 401


async def test_refetches_on_unknown_kids_are_rate_limited(
    gateway: Any, es_key: SigningKey, sign_token: Sign, jwks_state: Any
) -> None:
    stranger = generate("ES256", datetime.now(UTC))
    async with gateway(gateway_jwks_refetch_interval_seconds=3600) as client:
        assert (await client.get("/sync/a", headers=bearer(sign_token(es_key)))).status_code == 200
        fetched = jwks_state.fetches
        for _ in range(5):
            response = await client.get("/sync/a", headers=bearer(sign_token(stranger)))
            assert response.status_code == 401
    assert jwks_state.fetches == fetched


def _verified(client: Any) -> Any:
    return client.app.state.gateway.verified


class FakeClock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


async def test_a_cached_token_still_meets_revocation_and_scopes_on_every_request(
    gateway: Any,
    es_key: SigningKey,
    sign_token: Sign,
    redis_client: redis.asyncio.Redis,
    redis_prefix: str,
) -> None:
    token = sign_token(es_key, sid="phone")
    async with gateway() as client:
        assert (await client.get("/sync/a", headers=bearer(token))).status_code == 200
        assert len(_verified(client)) == 1  # the next requests are cache hits
        # The scopes are the route's question, asked on each request: a hit grants nothing.
        assert (await client.get("/profiles/me", headers=bearer(token))).status_code == 403
        await redis_client.set(revoked_session_key(KeySpace(redis_prefix), "phone"), "1", ex=600)
        revoked = await client.get("/sync/b", headers=bearer(token))
        assert len(_verified(client)) == 1
    assert revoked.status_code == 401
    assert "revoked" in revoked.headers["www-authenticate"]


async def test_a_cached_token_is_refused_once_it_expires(
    gateway: Any, es_key: SigningKey, sign_token: Sign
) -> None:
    clock = FakeClock()
    token = sign_token(es_key, exp=int(clock.now) + 60)
    async with gateway(clock=clock, gateway_token_cache_seconds=3600) as client:
        assert (await client.get("/sync/a", headers=bearer(token))).status_code == 200
        clock.now += 60 + 29  # within the 30 s leeway: still a hit, still valid
        assert (await client.get("/sync/a", headers=bearer(token))).status_code == 200
        assert len(_verified(client)) == 1
        clock.now += 2
        expired = await client.get("/sync/a", headers=bearer(token))
    assert expired.status_code == 401
    assert "expired" in expired.headers["www-authenticate"]


async def test_a_cached_token_whose_key_left_the_jwks_is_refused_after_the_refresh(
    gateway: Any, es_key: SigningKey, sign_token: Sign, jwks_state: Any
) -> None:
    clock = FakeClock()
    token = sign_token(es_key, exp=int(clock.now) + 3600)
    async with gateway(clock=clock, gateway_token_cache_seconds=3600) as client:
        assert (await client.get("/sync/a", headers=bearer(token))).status_code == 200
        assert len(_verified(client)) == 1
        # The issuer withdraws the key (say it leaked); the JWKS cache refreshes after 300 s.
        jwks_state.keys.clear()
        jwks_state.keys.append(generate("ES256", datetime.now(UTC)).public_jwk)
        clock.now += 301
        refused = await client.get("/sync/a", headers=bearer(token))
    assert refused.status_code == 401
    assert "signing key" in refused.headers["www-authenticate"]


async def test_with_the_cache_off_every_token_is_verified_and_accepted(
    gateway: Any, es_key: SigningKey, sign_token: Sign
) -> None:
    async with gateway(gateway_token_cache_entries=0) as client:
        assert _verified(client) is None
        for _ in range(2):
            response = await client.get("/sync/a", headers=bearer(sign_token(es_key)))
            assert response.status_code == 200
