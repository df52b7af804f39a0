"""Reading telemetry back as a developer does: through the gateway, with a token from the
platform's own login (issue 21 §3: every read route answered 401 through the gateway).

Real components: auth, telemetry and the gateway under uvicorn, routes and policies as the
operator renders them; the crash is sent by the real sentry-sdk through the gateway's public
ingestion route, with the DSN key only.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from support.oidc import APP_ID, clients_json, sign_in
from support.sentry import sentry, session
from support.through_gateway import Platform, platform_behind_gateway

from mobileplane import credentials
from mobileplane.services.kit.identity import Identity, identity_headers
from mobileplane.services.kit.settings import KitSettings
from mobileplane.services.telemetry.service import SERVICE as TELEMETRY

pytestmark = pytest.mark.integration

PASSWORD = "a long enough password"
KEY = "e5" * 16
PROJECTS = [{"id": 7, "slug": "shop-android", "platform": "android", "keys": [{"public_key": KEY}]}]
#: What `mobileplane login` asks for; the demo client may ask for the telemetry scopes.
SCOPE = "openid offline_access telemetry:read"


@pytest.fixture
def platform(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    database_url: str,
    redis_url: str,
    redis_prefix: str,
) -> Iterator[Platform]:
    monkeypatch.setenv("TELEMETRY_PROJECTS", json.dumps(PROJECTS))
    kit = KitSettings(
        database_url=database_url, redis_url=redis_url, redis_prefix=redis_prefix, log_format="text"
    )
    auth_env = {
        "AUTH_CLIENTS": clients_json("openid offline_access email telemetry:read telemetry:admin"),
        # As the quick start: the first account is the developer.
        "AUTH_FIRST_ACCOUNT_SCOPES": "telemetry:read",
        # As the operator renders spec.auth.members.
        "AUTH_SCOPE_GRANTS": json.dumps({"release@example.com": "telemetry:read"}),
    }
    with platform_behind_gateway(
        monkeypatch, tmp_path / "signing-keys", kit, [TELEMETRY], auth_env=auth_env
    ) as running:
        yield running


def bearer(token: dict[str, Any]) -> dict[str, str]:
    return {"authorization": f"Bearer {token['access_token']}"}


def crash_through_the_gateway(platform: Platform) -> None:
    scheme, _, host = platform.url.partition("://")
    dsn = f"{scheme}://{KEY}@{host}/telemetry/7"
    with sentry(dsn, "shop@1.2.0"):
        session("u1", "healthy")
        session("u2", "crashed")


def test_a_developer_lists_issues_and_release_health_through_the_gateway(
    platform: Platform,
) -> None:
    developer = sign_in(platform.url, "dev@example.com", PASSWORD, SCOPE, register=True)
    assert "telemetry:read" in developer["scope"].split()
    crash_through_the_gateway(platform)  # ingestion: the DSN key, no token

    with httpx.Client(base_url=platform.url, headers=bearer(developer), timeout=10) as api:
        projects = api.get("/telemetry/projects")
        issues = api.get(
            "/telemetry/projects/shop-android/issues", params={"release": "shop@1.2.0"}
        )
        elsewhere = api.get("/telemetry/projects/7/issues", params={"release": "shop@1.1.0"})
        health = api.get(
            "/telemetry/projects/shop-android/releases/shop@1.2.0/health", params={"window": "1h"}
        )
        recent = api.get("/telemetry/projects/shop-android/releases", params={"window": "1h"})

    assert projects.status_code == 200, projects.text
    [project] = projects.json()["projects"]
    assert project["slug"] == "shop-android"
    assert "keys" not in project  # DSN keys are for telemetry:admin
    assert issues.status_code == 200, issues.text
    [issue] = issues.json()["issues"]
    assert issue["title"].startswith("KeyError")
    assert issue["last_release"] == "shop@1.2.0"
    assert elsewhere.json()["issues"] == []  # not seen in that release
    assert health.status_code == 200, health.text
    release = health.json()["release"]
    assert release["sessions"]["total"] == 2
    assert release["sessions"]["crashed"] == 1
    assert release["crash_free_sessions"]["rate"] == pytest.approx(0.5)
    assert [r["release"] for r in recent.json()["releases"]] == ["shop@1.2.0"]


def test_a_member_reads_telemetry_once_their_email_is_verified(platform: Platform) -> None:
    sign_in(platform.url, "dev@example.com", PASSWORD, SCOPE, register=True)  # the first account
    member = sign_in(platform.url, "Release@Example.com", PASSWORD, SCOPE, register=True)
    # Unverified, the address is anyone's claim: no restricted scope yet.
    assert "telemetry:read" not in member["scope"].split()
    refused = httpx.get(f"{platform.url}/telemetry/projects", headers=bearer(member))
    assert refused.status_code == 403

    outbox = platform.services["auth"].app.state.auth.sender.outbox
    [link] = [m.link for m in outbox if m.to.lower() == "release@example.com" and m.link]
    assert httpx.get(link).status_code == 200
    # Decided at each issuance: the next refresh carries the scope.
    refreshed = httpx.post(
        f"{platform.url}/auth/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": member["refresh_token"],
            "client_id": APP_ID,
        },
    ).json()
    assert "telemetry:read" in refreshed["scope"].split()
    answer = httpx.get(f"{platform.url}/telemetry/projects", headers=bearer(refreshed))
    assert answer.status_code == 200, answer.text

    # A verified account that is not a member holds nothing.
    other = sign_in(platform.url, "someone@example.com", PASSWORD, SCOPE, register=True)
    [link] = [m.link for m in outbox if m.to == "someone@example.com" and m.link]
    httpx.get(link)
    again = httpx.post(
        f"{platform.url}/auth/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": other["refresh_token"],
            "client_id": APP_ID,
        },
    ).json()
    assert "telemetry:read" not in again["scope"].split()


def test_each_refusal_says_what_is_wrong(platform: Platform) -> None:
    sign_in(platform.url, "dev@example.com", PASSWORD, SCOPE, register=True)  # the first
    # A later account asks for the same scope with the same client: the token comes without
    # it (the response's scope says so), and the service's 403 names what is missing.
    user = sign_in(platform.url, "user@example.com", PASSWORD, SCOPE, register=True)
    assert "telemetry:read" not in user["scope"].split()
    issues = f"{platform.url}/telemetry/projects/shop-android/issues"

    anonymous = httpx.get(issues, timeout=10)
    assert anonymous.status_code == 401
    assert anonymous.json()["error"]["message"].startswith("This route needs an access token")
    assert anonymous.headers["www-authenticate"].startswith("Bearer")

    # Identity headers a client sends are stripped: they are no way around the token.
    spoofed = identity_headers(Identity("dev", frozenset({"telemetry:read"})))
    assert httpx.get(issues, headers=spoofed, timeout=10).status_code == 401

    lacking = httpx.get(issues, headers=bearer(user), timeout=10)
    assert lacking.status_code == 403
    error = lacking.json()["error"]
    assert error["code"] == "insufficient_scope"
    assert "'telemetry:read'" in error["message"]
    assert error["details"] == {"scopes": ["telemetry:read", "telemetry:admin"]}
    assert 'scope="telemetry:read telemetry:admin"' in lacking.headers["www-authenticate"]

    forged = httpx.get(issues, headers={"authorization": "Bearer not.a.token"}, timeout=10)
    assert forged.status_code == 401
    assert forged.json()["error"]["code"] == "invalid_token"

    # Called directly, bypassing the gateway, the service says where to call it.
    direct = httpx.get(f"{platform.services['telemetry'].url}/telemetry/projects/7/issues")
    assert direct.status_code == 401
    assert "through the gateway" in direct.json()["error"]["message"]

    # Ingestion stays DSN-authenticated: no token needed, a missing key is what is wrong.
    envelope = b'{}\n{"type":"event","length":2}\n{}\n'
    ingest = f"{platform.url}/telemetry/api/7/envelope/"
    refused = httpx.post(ingest, content=envelope, timeout=10)
    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "invalid_dsn_key"
    auth = {"x-sentry-auth": f"Sentry sentry_key={KEY}, sentry_version=7"}
    assert httpx.post(ingest, content=envelope, headers=auth, timeout=10).status_code == 200


def test_a_reader_cannot_manage(platform: Platform) -> None:
    developer = sign_in(platform.url, "dev@example.com", PASSWORD, SCOPE, register=True)
    resolve = httpx.patch(
        f"{platform.url}/telemetry/projects/7/issues/1",
        json={"status": "resolved"},
        headers=bearer(developer),
        timeout=10,
    )
    assert resolve.status_code == 403
    assert (
        resolve.json()["error"]["message"] == "The access token lacks the 'telemetry:admin' scope"
    )


# -- mobileplane telemetry issues|health, in a process of its own, against the platform ------


def cli(platform: Platform, state: Path, *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "mobileplane", "telemetry", *args, "--url", platform.url]
    env = {"XDG_STATE_HOME": str(state), "PATH": os.environ["PATH"]}
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=60, check=False)


def signed_in(platform: Platform, state: Path, email: str) -> dict[str, Any]:
    """What `mobileplane login` keeps after this account signs in."""
    token = sign_in(platform.url, email, PASSWORD, SCOPE, register=True)
    credentials.save(platform.url, APP_ID, SCOPE, token, environ={"XDG_STATE_HOME": str(state)})
    return token


def test_the_cli_lists_issues_and_release_health(platform: Platform, tmp_path: Path) -> None:
    signed_in(platform, tmp_path, "dev@example.com")
    crash_through_the_gateway(platform)

    issues = cli(platform, tmp_path, "issues")
    assert issues.returncode == 0, issues.stderr
    header, row = issues.stdout.splitlines()
    assert header.split()[:3] == ["PROJECT", "ISSUE", "STATUS"]
    assert row.split()[:3] == ["shop-android", "1", "unresolved"]
    assert "shop@1.2.0" in row and "KeyError: 'u2'" in row

    machine = cli(platform, tmp_path, "issues", "--json", "--release", "shop@1.2.0")
    [issue] = json.loads(machine.stdout)["issues"]
    assert issue["project"] == "shop-android" and issue["event_count"] == 1
    none = cli(platform, tmp_path, "issues", "--release", "shop@0.9.0", "--status", "all")
    assert none.returncode == 0 and none.stdout == ""
    assert "No issues in release shop@0.9.0." in none.stderr

    health = cli(platform, tmp_path, "health", "--project", "shop-android")
    assert health.returncode == 0, health.stderr
    header, row = health.stdout.splitlines()
    assert row.split()[:4] == ["shop-android", "shop@1.2.0", "2", "1"]
    assert "50.0% (" in row and row.endswith("critical")
    one = json.loads(cli(platform, tmp_path, "health", "--release", "shop@1.2.0", "--json").stdout)
    [report] = one["health"]
    assert report["releases"][0]["crash_free_sessions"]["rate"] == pytest.approx(0.5)


def test_the_cli_says_what_is_wrong(platform: Platform, tmp_path: Path) -> None:
    nobody = cli(platform, tmp_path / "nobody", "issues")
    assert nobody.returncode == 1
    assert f"not signed in to {platform.url}: run `mobileplane login --url" in nobody.stderr

    signed_in(platform, tmp_path / "dev", "dev@example.com")  # the first account
    signed_in(platform, tmp_path / "user", "user@example.com")
    lacking = cli(platform, tmp_path / "user", "issues")
    assert lacking.returncode == 1
    assert "lacks the 'telemetry:read' scope (it was granted: openid offline_access)" in (
        lacking.stderr
    )
    assert "first account created" in lacking.stderr

    unknown = cli(platform, tmp_path / "dev", "health", "--project", "nope")
    assert unknown.returncode == 1
    assert "no telemetry project 'nope' (HTTP 404)" in unknown.stderr
