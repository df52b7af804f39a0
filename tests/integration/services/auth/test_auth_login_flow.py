"""The login flow as an app performs it: authlib's OAuth 2.0 client, PKCE S256, the login
page posted as a browser would, the code redeemed, tokens refreshed and revoked."""

from __future__ import annotations

import concurrent.futures
import json
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import jwt
import pytest
import redis as redis_lib
from authlib.common.security import generate_token
from authlib.integrations.base_client.errors import OAuthError
from authlib.integrations.httpx_client import OAuth2Client
from support.oidc import (
    APP_ID,
    LOOPBACK_REDIRECT,
    REDIRECT_URI,
    browser_login,
    clients_json,
    keyset_json,
)
from support.uvicorn_server import ServerHandle

from mobileplane.services.kit.identity import revoked_session_key
from mobileplane.services.kit.redis import KeySpace

PASSWORD = "correct horse battery"


def discover(server: ServerHandle) -> dict[str, Any]:
    return httpx.get(f"{server.url}/.well-known/openid-configuration").json()  # type: ignore[no-any-return]


def oauth_client(
    redirect_uri: str = REDIRECT_URI, scope: str = "openid offline_access email profiles"
) -> OAuth2Client:
    return OAuth2Client(
        client_id=APP_ID,
        redirect_uri=redirect_uri,
        scope=scope,
        code_challenge_method="S256",
        token_endpoint_auth_method="none",
    )


def sign_in(
    server: ServerHandle,
    email: str,
    *,
    register: bool = True,
    redirect_uri: str = REDIRECT_URI,
    extra: dict[str, str] | None = None,
) -> dict[str, Any]:
    meta = discover(server)
    verifier = generate_token(64)
    nonce = generate_token(16)
    with oauth_client(redirect_uri) as client:
        url, _state = client.create_authorization_url(
            meta["authorization_endpoint"], code_verifier=verifier, nonce=nonce, **(extra or {})
        )
        answer = browser_login(url, email, PASSWORD, register=register)
        assert answer.status_code == 303, answer.text
        location = answer.headers["location"]
        assert parse_qs(urlsplit(location).query)["iss"] == [meta["issuer"]]  # RFC 9207
        token = client.fetch_token(
            meta["token_endpoint"], authorization_response=location, code_verifier=verifier
        )
    claims = jwt.decode(token["id_token"], options={"verify_signature": False})
    assert claims["nonce"] == nonce
    return dict(token)


def refresh(server: ServerHandle, refresh_token: str) -> httpx.Response:
    return httpx.post(
        f"{server.url}/auth/token",
        data={"grant_type": "refresh_token", "refresh_token": refresh_token, "client_id": APP_ID},
    )


def test_discovery_and_jwks_describe_the_provider(auth_server: Any) -> None:
    server = auth_server()
    meta = discover(server)
    assert meta["issuer"] == server.url
    assert meta["code_challenge_methods_supported"] == ["S256"]
    assert "refresh_token" in meta["grant_types_supported"]
    keys = httpx.get(meta["jwks_uri"]).json()["keys"]
    assert [k["alg"] for k in keys] == ["ES256"] and all(k["kid"] for k in keys)
    assert all("d" not in k for k in keys)  # never a private member


def test_pkce_login_issues_verifiable_tokens(auth_server: Any) -> None:
    server = auth_server()
    token = sign_in(server, "ada@example.com")
    assert token["token_type"] == "Bearer" and token["refresh_token"]
    jwks = jwt.PyJWKClient(f"{server.url}/.well-known/jwks.json")
    key = jwks.get_signing_key_from_jwt(token["access_token"])
    assert jwt.get_unverified_header(token["access_token"])["typ"] == "at+jwt"
    claims = jwt.decode(
        token["access_token"], key.key, algorithms=["ES256"], audience=server.url, issuer=server.url
    )
    for claim in ("iss", "sub", "aud", "exp", "iat", "nbf", "jti", "scope", "sid"):
        assert claim in claims
    assert claims["client_id"] == APP_ID
    assert "profiles" in claims["scope"].split()
    userinfo = httpx.get(
        f"{server.url}/auth/userinfo",
        headers={"authorization": f"Bearer {token['access_token']}"},
    ).json()
    assert userinfo == {"sub": claims["sub"], "email": "ada@example.com", "email_verified": False}


def test_a_loopback_redirect_may_use_any_port(auth_server: Any) -> None:
    server = auth_server()
    token = sign_in(server, "lo@example.com", redirect_uri="http://127.0.0.1:61234/callback")
    assert token["access_token"]
    assert LOOPBACK_REDIRECT.endswith("/callback")


def test_an_unregistered_redirect_is_never_followed(auth_server: Any) -> None:
    server = auth_server()
    with oauth_client("com.evil.app:/steal") as client:
        url, _ = client.create_authorization_url(
            f"{server.url}/auth/authorize", code_verifier=generate_token(64)
        )
    answer = httpx.get(url)
    assert answer.status_code == 400
    assert "location" not in answer.headers
    assert "redirect" in answer.text.lower()


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"code_challenge_method": "plain"}, "invalid_request"),
        ({"code_challenge": None, "code_challenge_method": None}, "invalid_request"),  # no PKCE
        ({"response_type": "token"}, "unsupported_response_type"),
        ({"scope": "openid admin"}, "invalid_scope"),
        ({"prompt": "none"}, "login_required"),
    ],
)
def test_bad_authorization_requests_return_to_the_app_with_an_error(
    auth_server: Any, changes: dict[str, str | None], error: str
) -> None:
    server = auth_server()
    query: dict[str, str | None] = {
        "client_id": APP_ID,
        "redirect_uri": REDIRECT_URI,
        "response_type": "code",
        "state": "s1",
        "scope": "openid",
        "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
        "code_challenge_method": "S256",
        **changes,
    }
    params = {k: v for k, v in query.items() if v is not None}
    answer = httpx.get(f"{server.url}/auth/authorize", params=params)
    assert answer.status_code == 303
    got = parse_qs(urlsplit(answer.headers["location"]).query)
    assert got["error"] == [error] and got["state"] == ["s1"]


def test_a_wrong_code_verifier_is_refused(auth_server: Any) -> None:
    server = auth_server()
    meta = discover(server)
    with oauth_client() as client:
        url, _ = client.create_authorization_url(
            meta["authorization_endpoint"], code_verifier=generate_token(64)
        )
        answer = browser_login(url, "eve@example.com", PASSWORD, register=True)
        with pytest.raises(OAuthError, match="invalid_grant"):
            client.fetch_token(
                meta["token_endpoint"],
                authorization_response=answer.headers["location"],
                code_verifier=generate_token(64),
            )


def test_a_code_redeemed_twice_ends_its_session(auth_server: Any) -> None:
    server = auth_server()
    meta = discover(server)
    verifier = generate_token(64)
    with oauth_client() as client:
        url, _ = client.create_authorization_url(
            meta["authorization_endpoint"], code_verifier=verifier
        )
    location = browser_login(url, "twice@example.com", PASSWORD, register=True).headers["location"]
    code = parse_qs(urlsplit(location).query)["code"][0]
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT_URI,
        "client_id": APP_ID,
        "code_verifier": verifier,
    }
    first = httpx.post(meta["token_endpoint"], data=form)
    assert first.status_code == 200
    second = httpx.post(meta["token_endpoint"], data=form)
    assert second.status_code == 400 and second.json()["error"] == "invalid_grant"
    # The tokens from the first redemption die with the session.
    assert refresh(server, first.json()["refresh_token"]).status_code == 400


def test_refresh_rotates_and_reuse_revokes_the_family(
    auth_server: Any, redis_prefix: str, redis_url: str
) -> None:
    server = auth_server()
    token = sign_in(server, "rot@example.com")
    first = refresh(server, token["refresh_token"])
    assert first.status_code == 200
    rotated = first.json()["refresh_token"]
    assert rotated != token["refresh_token"]
    # Replaying the superseded token is theft: the whole family is revoked...
    replay = refresh(server, token["refresh_token"])
    assert replay.status_code == 400 and replay.json()["error"] == "invalid_grant"
    # ...including the token the legitimate app holds now.
    assert refresh(server, rotated).status_code == 400
    # ...and the gateway learns it through Redis.
    sid = jwt.decode(token["access_token"], options={"verify_signature": False})["sid"]
    with redis_lib.Redis.from_url(redis_url) as r:
        assert r.exists(revoked_session_key(KeySpace(redis_prefix), sid))
    events = httpx.get(
        f"{server.url}/auth/audit", headers={"authorization": f"Bearer {token['access_token']}"}
    )
    assert events.status_code == 401  # the session is gone


def test_two_concurrent_refreshes_of_one_token_cannot_both_succeed(auth_server: Any) -> None:
    server = auth_server()
    token = sign_in(server, "race@example.com")
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: refresh(server, token["refresh_token"]), range(8)))
    assert sum(a.status_code == 200 for a in answers) <= 1
    winners = [a.json()["refresh_token"] for a in answers if a.status_code == 200]
    # With no grace window the losers are replays: the family is revoked for everyone.
    for winner in winners:
        assert refresh(server, winner).status_code == 400


def test_the_grace_window_forgives_only_the_immediate_parent(auth_server: Any) -> None:
    server = auth_server(AUTH_REFRESH_GRACE_SECONDS="30")
    token = sign_in(server, "grace@example.com")
    first = refresh(server, token["refresh_token"]).json()["refresh_token"]
    # The app lost the answer and retries with the same token: forgiven, a new child issued.
    retried = refresh(server, token["refresh_token"])
    assert retried.status_code == 200
    second = retried.json()["refresh_token"]
    # The child the app never received is superseded: at most one live token per family.
    assert refresh(server, first).status_code == 400
    # The token the app holds now carries on.
    assert refresh(server, second).status_code == 200


def test_grace_does_not_forgive_an_older_ancestor(auth_server: Any) -> None:
    server = auth_server(AUTH_REFRESH_GRACE_SECONDS="30")
    token = sign_in(server, "old@example.com")
    one = refresh(server, token["refresh_token"]).json()["refresh_token"]
    two = refresh(server, one).json()["refresh_token"]
    assert refresh(server, token["refresh_token"]).status_code == 400  # grandparent: theft
    assert refresh(server, two).status_code == 400  # the family is revoked


def test_revocation_ends_the_session(auth_server: Any) -> None:
    server = auth_server()
    token = sign_in(server, "rev@example.com")
    answer = httpx.post(
        f"{server.url}/auth/revoke",
        data={
            "token": token["refresh_token"],
            "token_type_hint": "refresh_token",
            "client_id": APP_ID,
        },
    )
    assert answer.status_code == 200
    assert refresh(server, token["refresh_token"]).status_code == 400
    gone = httpx.post(
        f"{server.url}/auth/introspect", data={"token": token["access_token"], "client_id": APP_ID}
    ).json()
    assert gone == {"active": False}
    # Unknown tokens are answered 200 too (RFC 7009 §2.2).
    assert (
        httpx.post(
            f"{server.url}/auth/revoke", data={"token": "nonsense", "client_id": APP_ID}
        ).status_code
        == 200
    )


def test_introspection_describes_live_tokens(auth_server: Any) -> None:
    server = auth_server()
    token = sign_in(server, "intro@example.com")
    access = httpx.post(
        f"{server.url}/auth/introspect", data={"token": token["access_token"], "client_id": APP_ID}
    ).json()
    assert access["active"] is True and access["client_id"] == APP_ID and access["sid"]
    refresh_info = httpx.post(
        f"{server.url}/auth/introspect", data={"token": token["refresh_token"], "client_id": APP_ID}
    ).json()
    assert refresh_info["active"] is True and refresh_info["token_type"] == "refresh_token"
    assert httpx.post(f"{server.url}/auth/introspect", data={"token": "x"}).status_code == 401


def test_another_clients_refresh_token_is_refused_without_spending_it(auth_server: Any) -> None:
    clients = json.loads(clients_json())
    clients.append({**clients[0], "client_id": "com.example.other", "redirect_uris": []})
    server = auth_server(AUTH_CLIENTS=json.dumps(clients))
    token = sign_in(server, "two-apps@example.com")
    wrong = httpx.post(
        f"{server.url}/auth/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": token["refresh_token"],
            "client_id": "com.example.other",
        },
    )
    assert wrong.status_code == 400 and wrong.json()["error"] == "invalid_grant"
    assert refresh(server, token["refresh_token"]).status_code == 200  # still the owner's


def test_rs256_keys_sign_rs256_tokens(auth_server: Any) -> None:
    server = auth_server(AUTH_SIGNING_KEYS=keyset_json("RS256"))
    token = sign_in(server, "rsa@example.com")
    assert jwt.get_unverified_header(token["access_token"])["alg"] == "RS256"
    meta = discover(server)
    assert meta["id_token_signing_alg_values_supported"] == ["RS256"]
    key = jwt.PyJWKClient(meta["jwks_uri"]).get_signing_key_from_jwt(token["access_token"])
    claims = jwt.decode(
        token["access_token"], key.key, algorithms=["RS256"], audience=server.url, issuer=server.url
    )
    assert claims["sid"]
