"""Test helpers for the OpenID Provider: key sets, clients, and a browser that signs in.

:func:`browser_login` does what a user does in the app's browser tab: it opens the
authorization URL, reads the login form from the HTML, posts it with the user's credentials
(and the cookie the page set), and returns the redirect back to the app (the ``Location`` with
the code), which the OAuth client library then redeems.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from html.parser import HTMLParser
from typing import Any

import httpx
from authlib.common.security import generate_token
from authlib.integrations.httpx_client import OAuth2Client

from mobileplane.operator.keys import KeySet, generate, rotate

APP_ID = "com.example.shop"
REDIRECT_URI = "com.example.shop:/oauth2redirect"
LOOPBACK_REDIRECT = "http://127.0.0.1/callback"


def keyset_json(algorithm: str = "ES256") -> str:
    now = datetime.now(UTC)
    return KeySet().__class__(keys=(generate(algorithm, now),)).to_json()


def rotated_keyset_json(current: str, algorithm: str = "ES256") -> str:
    now = datetime.now(UTC)
    return rotate(KeySet.from_json(current), generate(algorithm, now), "r2", now).to_json()


def clients_json(
    scopes: str = "openid offline_access email profiles content content:write sync",
) -> str:
    return json.dumps(
        [
            {
                "client_id": APP_ID,
                "client_name": "Shop",
                "redirect_uris": [REDIRECT_URI, LOOPBACK_REDIRECT],
                "token_endpoint_auth_method": "none",
                "scope": scopes,
            }
        ]
    )


class _Forms(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.forms: dict[str, dict[str, Any]] = {}
        self._current: dict[str, Any] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "form":
            self._current = {"action": a.get("action"), "fields": {}}
            self.forms[a.get("id") or str(len(self.forms))] = self._current
        elif tag == "input" and self._current is not None and a.get("name"):
            self._current["fields"][a["name"]] = a.get("value") or ""

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._current = None


def login_forms(html: str) -> dict[str, dict[str, Any]]:
    parser = _Forms()
    parser.feed(html)
    return parser.forms


def browser_login(
    authorization_url: str,
    email: str,
    password: str,
    *,
    register: bool = False,
    browser: httpx.Client | None = None,
) -> httpx.Response:
    """Open the login page, submit it, and return the answer (a 303 to the app on success)."""
    own = browser is None
    client = browser or httpx.Client(follow_redirects=False, timeout=20)
    try:
        page = client.get(authorization_url)
        if page.status_code != 200:
            return page
        form = login_forms(page.text)["register" if register else "login"]
        fields = {**form["fields"], "email": email, "password": password}
        return client.post(form["action"], data=fields)
    finally:
        if own:
            client.close()


def sign_in(
    platform_url: str,
    email: str,
    password: str,
    scope: str,
    *,
    register: bool = False,
    client_id: str = APP_ID,
    redirect_uri: str = REDIRECT_URI,
    transport: httpx.BaseTransport | None = None,
) -> dict[str, Any]:
    """An app's sign-in with authlib (authorization code + PKCE, discovery and every endpoint
    at ``platform_url``), the login page posted by :func:`browser_login`: the token response.
    ``transport`` carries every request (a cluster's names resolved by the test, say)."""
    with httpx.Client(transport=transport, timeout=10) as plain:
        meta = plain.get(f"{platform_url}/.well-known/openid-configuration").json()
    verifier = generate_token(64)
    with (
        OAuth2Client(
            client_id=client_id,
            redirect_uri=redirect_uri,
            scope=scope,
            code_challenge_method="S256",
            token_endpoint_auth_method="none",
            transport=transport,
        ) as client,
        httpx.Client(transport=transport, timeout=20) as browser,
    ):
        url, _ = client.create_authorization_url(
            meta["authorization_endpoint"], code_verifier=verifier
        )
        answer = browser_login(url, email, password, register=register, browser=browser)
        if answer.status_code != 303:
            raise AssertionError(f"the login page answered {answer.status_code}: {answer.text}")
        return dict(
            client.fetch_token(
                meta["token_endpoint"],
                authorization_response=answer.headers["location"],
                code_verifier=verifier,
            )
        )
