"""The login flow end to end, as an app lives it, through real uvicorn servers:

authlib performs the authorization code + PKCE login against the OpenID Provider *through
the gateway* (discovery, the login page posted as a browser would, the token endpoint), then
calls ``GET /profiles/me`` through the gateway, which validates the JWT against the JWKS and
forwards the identity. Refresh rotation, reuse detection revoking the family, a revoked
session refused at the gateway, key rotation keeping old tokens valid, forged and
wrong-audience tokens, and a burst answered 429 — all across the real components.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from authlib.common.security import generate_token
from authlib.integrations.httpx_client import OAuth2Client
from support.oidc import (
    APP_ID,
    REDIRECT_URI,
    browser_login,
    rotated_keyset_json,
)
from support.through_gateway import Platform, platform_behind_gateway

from mobileplane.services.kit.settings import KitSettings
from mobileplane.services.profiles.service import SERVICE as PROFILES

PASSWORD = "a long enough password"


@pytest.fixture
def platform(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    database_url: str,
    redis_url: str,
    redis_prefix: str,
) -> Iterator[Platform]:
    kit = KitSettings(
        database_url=database_url, redis_url=redis_url, redis_prefix=redis_prefix, log_format="text"
    )
    with platform_behind_gateway(
        monkeypatch,
        tmp_path / "signing-keys",
        kit,
        [PROFILES],
        gateway_rate_limit_user_requests=40,
        gateway_rate_limit_user_window_seconds=60,
        gateway_jwks_refetch_interval_seconds=0,
    ) as running:
        yield running


def hs256(claims: dict[str, Any], secret: bytes, kid: str) -> str:
    """An HS256 token made by hand (pyjwt refuses a public key as an HMAC secret, which is
    exactly the algorithm-confusion attack a careless verifier would fall for)."""

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    header = {"alg": "HS256", "typ": "at+jwt", "kid": kid}
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
    signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(signature)}"


def login(platform: Platform, email: str, *, register: bool = True) -> dict[str, Any]:
    meta = httpx.get(f"{platform.url}/.well-known/openid-configuration").json()
    assert meta["token_endpoint"].startswith(platform.url)  # everything through the gateway
    verifier = generate_token(64)
    with OAuth2Client(
        client_id=APP_ID,
        redirect_uri=REDIRECT_URI,
        scope="openid offline_access profiles",
        code_challenge_method="S256",
        token_endpoint_auth_method="none",
    ) as client:
        url, _ = client.create_authorization_url(
            meta["authorization_endpoint"], code_verifier=verifier
        )
        answer = browser_login(url, email, PASSWORD, register=register)
        assert answer.status_code == 303, answer.text
        return dict(
            client.fetch_token(
                meta["token_endpoint"],
                authorization_response=answer.headers["location"],
                code_verifier=verifier,
            )
        )


def me(platform: Platform, access_token: str) -> httpx.Response:
    return httpx.get(
        f"{platform.url}/profiles/me", headers={"authorization": f"Bearer {access_token}"}
    )


def refresh(platform: Platform, refresh_token: str) -> httpx.Response:
    return httpx.post(
        f"{platform.url}/auth/token",
        data={"grant_type": "refresh_token", "refresh_token": refresh_token, "client_id": APP_ID},
    )


def test_login_then_profile_through_the_gateway(platform: Platform) -> None:
    token = login(platform, "e2e@example.com")
    answer = me(platform, token["access_token"])
    assert answer.status_code == 200, answer.text
    sub = jwt.decode(token["access_token"], options={"verify_signature": False})["sub"]
    assert answer.json()["subject"] == sub
    # No token, a forged one, one for another audience, an algorithm-confused one: 401.
    assert httpx.get(f"{platform.url}/profiles/me").status_code == 401
    header = jwt.get_unverified_header(token["access_token"])
    claims = jwt.decode(token["access_token"], options={"verify_signature": False})
    public_jwk = httpx.get(f"{platform.url}/.well-known/jwks.json").json()["keys"][0]
    # The platform's own key, as an insider or a leaked test key would have it: a token for
    # another audience, or an expired one, is refused even with a valid signature.
    active = json.loads((platform.keys_dir / "keyset.json").read_text())["keys"][0]

    def signed(**changes: Any) -> str:
        return jwt.encode(
            {**claims, **changes},
            active["private_pem"],
            algorithm="ES256",
            headers={"kid": header["kid"], "typ": "at+jwt"},
        )

    tampered = token["access_token"][:-4] + (
        "AAAA" if not token["access_token"].endswith("AAAA") else "BBBB"
    )
    forged = [
        tampered,
        signed(aud="https://elsewhere.example"),
        signed(exp=claims["iat"] - 3600, nbf=claims["iat"] - 7200, iat=claims["iat"] - 7200),
        hs256(claims, json.dumps(public_jwk).encode(), header["kid"]),
        jwt.encode(claims, None, algorithm="none", headers={"kid": header["kid"], "typ": "at+jwt"}),
    ]
    assert me(platform, signed()).status_code == 200  # the control: same key, right claims
    for bad in forged:
        assert me(platform, bad).status_code == 401


def test_refresh_rotation_and_reuse_detection_reach_the_gateway(platform: Platform) -> None:
    token = login(platform, "rotate@example.com")
    rotated = refresh(platform, token["refresh_token"])
    assert rotated.status_code == 200
    fresh = rotated.json()
    assert me(platform, fresh["access_token"]).status_code == 200
    # Someone replays the superseded refresh token: the family is revoked...
    assert refresh(platform, token["refresh_token"]).status_code == 400
    assert refresh(platform, fresh["refresh_token"]).status_code == 400
    # ...and the gateway refuses the session's access tokens at once, though unexpired.
    refused = me(platform, fresh["access_token"])
    assert refused.status_code == 401


def test_a_device_signed_out_is_refused_at_the_gateway(platform: Platform) -> None:
    token = login(platform, "signout@example.com")
    assert me(platform, token["access_token"]).status_code == 200
    out = httpx.post(
        f"{platform.url}/auth/logout",
        json={"scope": "local"},
        headers={"authorization": f"Bearer {token['access_token']}"},
    )
    assert out.status_code == 200
    assert me(platform, token["access_token"]).status_code == 401


def test_after_key_rotation_old_tokens_validate_until_they_expire(platform: Platform) -> None:
    before = login(platform, "keys@example.com")
    staged = platform.keys_dir / "keyset.json.new"
    staged.write_text(rotated_keyset_json((platform.keys_dir / "keyset.json").read_text()))
    staged.replace(platform.keys_dir / "keyset.json")
    after = refresh(platform, before["refresh_token"]).json()
    assert (
        jwt.get_unverified_header(after["access_token"])["kid"]
        != (jwt.get_unverified_header(before["access_token"])["kid"])
    )
    # The new kid is unknown to the gateway's cached JWKS: it refetches and accepts it...
    assert me(platform, after["access_token"]).status_code == 200
    # ...and the old key is still published, so the earlier token still works.
    assert me(platform, before["access_token"]).status_code == 200


def test_a_burst_is_answered_429(platform: Platform) -> None:
    token = login(platform, "burst@example.com")
    codes = [me(platform, token["access_token"]) for _ in range(60)]
    limited = [r for r in codes if r.status_code == 429]
    assert limited, [r.status_code for r in codes]
    assert int(limited[0].headers["retry-after"]) >= 0
    assert "ratelimit" in {k.lower() for k in limited[0].headers}


def test_erasure_signs_every_device_out_at_the_gateway(platform: Platform) -> None:
    """GDPR erasure deletes the user and so the sessions; the access tokens already issued,
    unexpired JWTs, are refused at the gateway at once, on every device."""
    phone = login(platform, "erase@example.com")
    tablet = login(platform, "erase@example.com", register=False)
    assert me(platform, tablet["access_token"]).status_code == 200

    erased = httpx.delete(
        f"{platform.url}/profiles/me",
        headers={"authorization": f"Bearer {phone['access_token']}"},
    )

    assert erased.status_code == 200, erased.text
    assert erased.json()["erased"]["auth"] >= 1
    for device in (phone, tablet):
        refused = me(platform, device["access_token"])
        assert refused.status_code == 401, refused.text
        assert refresh(platform, device["refresh_token"]).status_code == 400


def test_the_gateway_describes_every_services_api_as_it_routes_it(platform: Platform) -> None:
    # Each service runs on its own (the cluster's shape); the gateway merges their documents.
    document = httpx.get(f"{platform.url}/openapi.json").json()
    paths = document["paths"]
    assert {"/.well-known/openid-configuration", "/auth/token", "/profiles/me"} <= set(paths)
    assert paths["/profiles/me"]["get"]["security"] == [{"bearer": []}]
    assert "scope `profiles`" in paths["/profiles/me"]["get"]["description"]
    assert paths["/auth/token"]["post"]["security"] == []
    # The probes described are the gateway's own (the services' are not reachable here).
    assert paths["/readyz"] == httpx.get(f"{platform.url}/openapi.json").json()["paths"]["/readyz"]
    assert "Not described" not in document["info"]["description"]
    docs = httpx.get(f"{platform.url}/docs")
    assert docs.status_code == 200
    assert "/openapi.json" in docs.text
    # Proxied through real servers: one Date, the gateway's server's.
    proxied = httpx.get(f"{platform.url}/.well-known/openid-configuration")
    assert proxied.status_code == 200
    assert len(proxied.headers.get_list("date")) == 1
