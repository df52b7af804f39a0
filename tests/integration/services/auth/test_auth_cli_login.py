"""``mobileplane login``: the loopback flow a terminal (or a desktop app) uses, with a
browser that posts the login form and follows the redirect to the loopback listener."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from support.oidc import APP_ID, browser_login

from mobileplane.login import LoginError, login


def test_login_from_a_terminal(auth_server: Any) -> None:
    server = auth_server()

    def browser(url: str) -> None:
        answer = browser_login(url, "cli@example.com", "a terminal password", register=True)
        assert answer.status_code == 303
        httpx.get(answer.headers["location"])  # the browser lands on the loopback listener

    token = login(server.url, APP_ID, "openid offline_access email", open_url=browser)
    info = httpx.get(
        f"{server.url}/auth/userinfo", headers={"authorization": f"Bearer {token['access_token']}"}
    ).json()
    assert info["email"] == "cli@example.com"


def test_a_refusal_is_explained(auth_server: Any) -> None:
    server = auth_server()

    def browser(url: str) -> None:
        # The provider sends the user back with an error (here: a scope the app may not have).
        answer = httpx.get(url)
        httpx.get(answer.headers["location"])

    with pytest.raises(LoginError, match="invalid_scope"):
        login(server.url, APP_ID, "openid admin", open_url=browser)
    with pytest.raises(LoginError, match="is the platform up"):
        login("http://127.0.0.1:9", APP_ID, "openid", open_url=browser)
