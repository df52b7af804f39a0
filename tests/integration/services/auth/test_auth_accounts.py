"""Accounts and sessions: devices, sign-out scopes, caps, lockout, rate limits, email
verification, sign-in through an upstream provider, key rotation, sign-out from the browser."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import jwt
from authlib.common.security import generate_token
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import FastAPI
from jwt.algorithms import RSAAlgorithm
from support.oidc import APP_ID, REDIRECT_URI, browser_login, keyset_json, rotated_keyset_json
from support.uvicorn_server import ServerHandle
from test_auth_login_flow import PASSWORD, oauth_client, refresh, sign_in

from mobileplane.services.auth.mail import LoggingSender


def bearer(token: dict[str, Any]) -> dict[str, str]:
    return {"authorization": f"Bearer {token['access_token']}"}


def test_each_device_is_a_session_that_can_be_listed_and_revoked(auth_server: Any) -> None:
    server = auth_server()
    phone = sign_in(
        server, "multi@example.com", extra={"device_id": "phone-1", "device_name": "Phone"}
    )
    tablet = sign_in(server, "multi@example.com", register=False, extra={"device_id": "tab-1"})
    listed = httpx.get(f"{server.url}/auth/sessions", headers=bearer(phone)).json()["sessions"]
    assert {s["device_id"] for s in listed} == {"phone-1", "tab-1"}
    assert [s["current"] for s in listed if s["device_id"] == "phone-1"] == [True]
    tablet_sid = next(s["id"] for s in listed if s["device_id"] == "tab-1")
    assert (
        httpx.delete(f"{server.url}/auth/sessions/{tablet_sid}", headers=bearer(phone)).status_code
        == 204
    )
    assert refresh(server, tablet["refresh_token"]).status_code == 400
    assert refresh(server, phone["refresh_token"]).status_code == 200
    # Someone else's session is not yours to end.
    other = sign_in(server, "other@example.com")
    assert (
        httpx.delete(f"{server.url}/auth/sessions/{tablet_sid}", headers=bearer(other)).status_code
        == 404
    )


def test_signing_in_again_on_the_same_device_replaces_its_session(auth_server: Any) -> None:
    server = auth_server()
    first = sign_in(server, "same@example.com", extra={"device_id": "d1"})
    second = sign_in(server, "same@example.com", register=False, extra={"device_id": "d1"})
    assert refresh(server, first["refresh_token"]).status_code == 400
    listed = httpx.get(f"{server.url}/auth/sessions", headers=bearer(second)).json()["sessions"]
    assert len(listed) == 1


def test_sign_out_others_then_global(auth_server: Any) -> None:
    server = auth_server()
    a = sign_in(server, "so@example.com")
    b = sign_in(server, "so@example.com", register=False)
    c = sign_in(server, "so@example.com", register=False)
    ended = httpx.post(
        f"{server.url}/auth/logout", json={"scope": "others"}, headers=bearer(a)
    ).json()
    assert len(ended["ended_sessions"]) == 2
    assert refresh(server, b["refresh_token"]).status_code == 400
    assert refresh(server, c["refresh_token"]).status_code == 400
    assert (
        httpx.post(
            f"{server.url}/auth/logout", json={"scope": "global"}, headers=bearer(a)
        ).status_code
        == 200
    )
    assert httpx.get(f"{server.url}/auth/sessions", headers=bearer(a)).status_code == 401
    bad = httpx.post(f"{server.url}/auth/logout", json={"scope": "everything"}, headers=bearer(a))
    assert bad.status_code in (401, 422)


def test_the_session_cap_ends_the_least_recently_used(auth_server: Any) -> None:
    server = auth_server(AUTH_MAX_SESSIONS_PER_USER="2")
    one = sign_in(server, "cap@example.com")
    two = sign_in(server, "cap@example.com", register=False)
    assert refresh(server, one["refresh_token"]).status_code == 200  # one is now the fresher
    three = sign_in(server, "cap@example.com", register=False)
    assert refresh(server, two["refresh_token"]).status_code == 400
    listed = httpx.get(f"{server.url}/auth/sessions", headers=bearer(three)).json()["sessions"]
    assert len(listed) == 2


def _authorize_url(server: ServerHandle) -> str:
    with oauth_client() as client:
        url, _ = client.create_authorization_url(
            f"{server.url}/auth/authorize", code_verifier=generate_token(64)
        )
    return str(url)


def test_failed_logins_lock_the_account(auth_server: Any) -> None:
    server = auth_server(AUTH_LOCKOUT_THRESHOLD="3")
    sign_in(server, "lock@example.com")
    for _ in range(3):
        wrong = browser_login(_authorize_url(server), "lock@example.com", "not the password")
        assert wrong.status_code in (401, 429)
    locked = browser_login(_authorize_url(server), "lock@example.com", PASSWORD)
    assert locked.status_code == 429
    assert "locked" in locked.text
    # Unknown accounts get the same answer as a wrong password (no account enumeration).
    unknown = browser_login(_authorize_url(server), "nobody@example.com", PASSWORD)
    assert unknown.status_code == 401 and "Wrong email or password" in unknown.text


def test_login_attempts_are_rate_limited_per_address(auth_server: Any) -> None:
    server = auth_server(AUTH_LOGIN_ATTEMPTS_PER_IP_PER_MINUTE="3")
    answers = [
        browser_login(_authorize_url(server), f"u{i}@example.com", "wrong password").status_code
        for i in range(5)
    ]
    assert answers[:3] == [401, 401, 401]
    assert 429 in answers[3:]


def test_registration_sends_a_verification_link(auth_server: Any) -> None:
    server = auth_server()
    token = sign_in(server, "verify@example.com")
    sender = server.app.state.auth.sender
    assert isinstance(sender, LoggingSender)
    link = sender.outbox[-1].link
    assert link and sender.outbox[-1].to == "verify@example.com"
    assert httpx.get(link).status_code == 200
    assert httpx.get(link).status_code == 400  # single use
    info = httpx.get(f"{server.url}/auth/userinfo", headers=bearer(token)).json()
    assert info["email_verified"] is True
    assert (
        httpx.post(f"{server.url}/auth/verify-email/resend", headers=bearer(token)).status_code
        == 422
    )


def test_unverified_users_are_refused_when_verification_is_required(auth_server: Any) -> None:
    server = auth_server(AUTH_REQUIRE_VERIFIED_EMAIL="true")
    created = browser_login(_authorize_url(server), "strict@example.com", PASSWORD, register=True)
    assert created.status_code == 200 and "Check your email" in created.text
    refused = browser_login(_authorize_url(server), "strict@example.com", PASSWORD)
    assert refused.status_code == 403
    httpx.get(server.app.state.auth.sender.outbox[-1].link)
    assert browser_login(_authorize_url(server), "strict@example.com", PASSWORD).status_code == 303


def test_a_duplicate_account_and_a_weak_password_are_explained(auth_server: Any) -> None:
    server = auth_server()
    sign_in(server, "dup@example.com")
    again = browser_login(_authorize_url(server), "DUP@example.com", PASSWORD, register=True)
    assert again.status_code == 409
    weak = browser_login(_authorize_url(server), "weak@example.com", "short", register=True)
    assert weak.status_code == 422 and "at least" in weak.text


# -- upstream providers ---------------------------------------------------------------------


class FakeApple:
    """A protocol-faithful stand-in for Sign in with Apple's key endpoint: a JWKS over HTTP."""

    issuer = "https://appleid.apple.com"

    def __init__(self) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        jwk = json.loads(RSAAlgorithm.to_jwk(self.key.public_key()))
        self.jwks = {"keys": [{**jwk, "kid": "apple-1", "alg": "RS256", "use": "sig"}]}
        app = FastAPI()
        app.get("/auth/keys")(lambda: self.jwks)
        self.server = ServerHandle(lambda: app)

    def id_token(self, sub: str, **claims: Any) -> str:
        now = datetime.now(UTC)
        body = {
            "iss": self.issuer,
            "aud": APP_ID,
            "sub": sub,
            "iat": int(now.timestamp()),
            "exp": int((now + timedelta(minutes=10)).timestamp()),
            "email": f"{sub}@privaterelay.appleid.com",
            "email_verified": "true",
            **claims,
        }
        return jwt.encode(body, self.key, algorithm="RS256", headers={"kid": "apple-1"})


def test_sign_in_with_an_upstream_id_token(auth_server: Any) -> None:
    apple = FakeApple()
    apple.server.start()
    try:
        provider = {
            "name": "apple",
            "issuer": apple.issuer,
            "jwks_uri": f"{apple.server.url}/auth/keys",
            "audiences": [APP_ID],
        }
        server = auth_server(AUTH_UPSTREAM_PROVIDERS=json.dumps([provider]))

        def exchange(subject_token: str) -> httpx.Response:
            return httpx.post(
                f"{server.url}/auth/token",
                data={
                    "grant_type": "urn:ietf:params:oauth:grant-type:token-exchange",
                    "subject_token": subject_token,
                    "subject_token_type": "urn:ietf:params:oauth:token-type:id_token",
                    "client_id": APP_ID,
                    "scope": "openid offline_access email profiles",
                },
            )

        first = exchange(apple.id_token("001234.abc"))
        assert first.status_code == 200, first.text
        body = first.json()
        assert body["issued_token_type"] == "urn:ietf:params:oauth:token-type:access_token"
        again = exchange(apple.id_token("001234.abc")).json()
        sub = jwt.decode(body["access_token"], options={"verify_signature": False})["sub"]
        assert jwt.decode(again["access_token"], options={"verify_signature": False})["sub"] == sub
        assert refresh(server, body["refresh_token"]).status_code == 200
        # Forged (another key), wrong audience, expired, and alg-none tokens are refused.
        forged = jwt.encode(
            {"iss": apple.issuer, "aud": APP_ID, "sub": "x", "iat": 1, "exp": 2**31},
            rsa.generate_private_key(public_exponent=65537, key_size=2048),
            algorithm="RS256",
            headers={"kid": "apple-1"},
        )
        for bad in (
            forged,
            apple.id_token("y", aud="com.other.app"),
            apple.id_token("z", exp=int(time.time()) - 3600),
            jwt.encode({"iss": apple.issuer, "aud": APP_ID, "sub": "n"}, None, algorithm="none"),
            "garbage",
        ):
            answer = exchange(bad)
            assert answer.status_code == 400, bad
            assert answer.json()["error"] == "invalid_grant"
    finally:
        apple.server.stop()


# -- keys, sign-out ---------------------------------------------------------------------------


def test_a_rotated_key_signs_new_tokens_while_old_ones_still_verify(
    auth_server: Any, tmp_path: Path
) -> None:
    keyset = keyset_json()
    (tmp_path / "keyset.json").write_text(keyset)
    server = auth_server(
        AUTH_SIGNING_KEYS="",
        AUTH_SIGNING_KEYS_DIR=str(tmp_path),
        AUTH_SIGNING_KEYS_CHECK_SECONDS="0",
    )
    before = sign_in(server, "keys@example.com")
    # The operator rotates: the Secret's file is replaced (the kubelet swaps it atomically).
    staged = tmp_path / "keyset.json.new"
    staged.write_text(rotated_keyset_json(keyset))
    staged.replace(tmp_path / "keyset.json")
    after = refresh(server, before["refresh_token"]).json()
    old_kid = jwt.get_unverified_header(before["access_token"])["kid"]
    new_kid = jwt.get_unverified_header(after["access_token"])["kid"]
    assert old_kid != new_kid
    published = {k["kid"] for k in httpx.get(f"{server.url}/.well-known/jwks.json").json()["keys"]}
    assert {old_kid, new_kid} <= published
    for token in (before, after):
        info = httpx.post(
            f"{server.url}/auth/introspect",
            data={"token": token["access_token"], "client_id": APP_ID},
        ).json()
        assert info["active"] is True


def test_end_session_signs_out_and_returns_to_the_app(auth_server: Any) -> None:
    server = auth_server()
    token = sign_in(server, "bye@example.com")
    answer = httpx.get(
        f"{server.url}/auth/end-session",
        params={
            "id_token_hint": token["id_token"],
            "post_logout_redirect_uri": REDIRECT_URI,
            "state": "st",
        },
    )
    assert answer.status_code == 303
    assert parse_qs(urlsplit(answer.headers["location"]).query)["state"] == ["st"]
    assert refresh(server, token["refresh_token"]).status_code == 400
    forged = httpx.get(f"{server.url}/auth/end-session", params={"id_token_hint": "a.b.c"})
    assert forged.status_code == 400
