"""``mobileplane login``: the loopback flow a terminal (or a desktop app) uses, with a
browser that posts the login form and follows the redirect to the loopback listener."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from support.oidc import APP_ID, browser_login

from mobileplane import credentials
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


def signed_in(server: Any, state: Path, email: str) -> dict[str, Any]:
    """``mobileplane login``'s flow, and what its command keeps."""

    def browser(url: str) -> None:
        answer = browser_login(url, email, "a terminal password", register=True)
        httpx.get(answer.headers["location"])

    scope = "openid offline_access email"
    token = login(server.url, APP_ID, scope, open_url=browser)
    credentials.save(server.url, APP_ID, scope, token, environ={"XDG_STATE_HOME": str(state)})
    return token


def test_the_sign_in_is_kept_and_refreshed(auth_server: Any, tmp_path: Path) -> None:
    server = auth_server()
    env = {"XDG_STATE_HOME": str(tmp_path)}
    token = signed_in(server, tmp_path, "kept@example.com")
    path = credentials.credentials_file(server.url, env)
    assert path.parent == tmp_path / "mobileplane" / "credentials"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700

    # Fresh enough: the stored access token, no refresh spent.
    assert credentials.access_token(server.url, environ=env) == token["access_token"]
    # Not fresh enough: a refresh grant; the rotated refresh token is stored back.
    fresh = credentials.access_token(server.url, environ=env, min_validity=10_000)
    assert fresh != token["access_token"]
    stored = credentials.load(server.url, env)
    assert stored.refresh_token != token["refresh_token"]
    assert stored.access_token == fresh
    info = httpx.get(f"{server.url}/auth/userinfo", headers={"authorization": f"Bearer {fresh}"})
    assert info.json()["email"] == "kept@example.com"
    # ... and that one works again (the spent one would have ended the session: reuse).
    again = credentials.access_token(server.url, environ=env, min_validity=10_000)
    assert again not in {fresh, token["access_token"]}


def test_parallel_commands_never_redeem_one_refresh_token_twice(
    auth_server: Any, tmp_path: Path
) -> None:
    server = auth_server()
    env = {"XDG_STATE_HOME": str(tmp_path)}
    signed_in(server, tmp_path, "parallel@example.com")

    def refresh() -> str:
        return credentials.access_token(server.url, environ=env, min_validity=10_000)

    # Without the lock two redeem the same token: reuse detection ends the session.
    with ThreadPoolExecutor(4) as pool:
        tokens = list(pool.map(lambda _: refresh(), range(4)))
    assert len(set(tokens)) == 4
    assert refresh() not in tokens  # the session is alive


def test_a_revoked_sign_in_says_to_log_in_again(auth_server: Any, tmp_path: Path) -> None:
    server = auth_server()
    env = {"XDG_STATE_HOME": str(tmp_path), "PATH": os.environ["PATH"]}
    token = signed_in(server, tmp_path, "revoked@example.com")
    revoked = httpx.post(
        f"{server.url}/auth/revoke",
        data={"token": token["refresh_token"], "client_id": APP_ID},
    )
    assert revoked.status_code == 200

    # What a user runs: the command, in a process of its own.
    command = [sys.executable, "-m", "mobileplane", "token", "--url", server.url]
    printed = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    assert printed.stdout.strip() == token["access_token"]  # still valid for minutes
    with pytest.raises(credentials.CredentialsError) as refused:
        credentials.access_token(server.url, environ=env, min_validity=10_000)
    assert "has expired or was revoked" in str(refused.value)
    assert f"run `mobileplane login --url {server.url}`" in str(refused.value)
    # The dead sign-in is forgotten: the command says to sign in.
    after = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    assert after.returncode == 1
    assert f"not signed in to {server.url}: run `mobileplane login --url" in after.stderr


def test_no_sign_in_yet(tmp_path: Path) -> None:
    with pytest.raises(credentials.CredentialsError, match="run `mobileplane login`"):
        credentials.access_token(environ={"XDG_STATE_HOME": str(tmp_path)})
