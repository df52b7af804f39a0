"""The quick start end to end: a real process with real PostgreSQL and Redis from wheels.

It needs no stack: it brings its own servers. The data directory is made with ``tempfile``
under /tmp rather than pytest's ``tmp_path``: as root, PostgreSQL runs as the ``postgres``
account, which cannot enter pytest's per-user directory (mode 0700).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from authlib.common.security import generate_token
from authlib.integrations.httpx_client import OAuth2Client
from support.oidc import browser_login
from support.sentry import sentry, session

from mobileplane.embedded.process import pick_port, port_is_free
from mobileplane.operator.render.appkeys import apps_status
from mobileplane.quickstart import DEMO_CLIENT_ID, DEMO_PLATFORM, DEMO_SPEC, demo_app_keys
from mobileplane.services.kit.identity import Identity, identity_headers

# It brings its own embedded servers: an end-to-end run of `mobileplane up`, no stack needed.
pytestmark = pytest.mark.e2e

START_TIMEOUT = 120.0  # first run includes initdb; a loaded 2-core CI box is slow


@pytest.fixture
def data_dir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="mp-quickstart-") as directory:
        yield Path(directory)


def start(data_dir: Path, port: int, *options: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "mobileplane.quickstart", "--port", str(port),
         "--data-dir", str(data_dir), *options],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip


def wait_ready(process: subprocess.Popen[str], url: str) -> httpx.Response:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            output = process.stdout.read() if process.stdout else ""
            pytest.fail(f"quick start exited with {process.returncode}:\n{output}")
        try:
            response = httpx.get(f"{url}/readyz", timeout=2)
            if response.status_code == 200:
                return response
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    process.kill()
    pytest.fail(f"quick start not ready after {START_TIMEOUT}s")


def stop(process: subprocess.Popen[str]) -> str:
    process.send_signal(signal.SIGTERM)
    try:
        output, _ = process.communicate(timeout=90)
    except subprocess.TimeoutExpired:
        process.kill()
        output, _ = process.communicate()
        pytest.fail(f"quick start did not stop on SIGTERM:\n{output}")
    assert process.returncode == 0, output
    return output


def demo_login(url: str) -> dict[str, Any]:
    meta = httpx.get(f"{url}/.well-known/openid-configuration", timeout=5).json()
    assert meta["issuer"] == url
    verifier = generate_token(64)
    with OAuth2Client(
        client_id=DEMO_CLIENT_ID,
        redirect_uri="http://127.0.0.1:7777/callback",
        scope="openid offline_access sync",
        code_challenge_method="S256",
        token_endpoint_auth_method="none",
    ) as client:
        authorize, _ = client.create_authorization_url(
            meta["authorization_endpoint"], code_verifier=verifier
        )
        answer = browser_login(authorize, "qs@example.com", "quick start password", register=True)
        assert answer.status_code == 303, answer.text
        return dict(
            client.fetch_token(
                meta["token_endpoint"],
                authorization_response=answer.headers["location"],
                code_verifier=verifier,
            )
        )


def cli_login(url: str, env: dict[str, str]) -> str:
    """``mobileplane login --no-browser`` completed by a scripted browser, then
    ``mobileplane token``: what the banner tells a newcomer to run."""
    cli = [sys.executable, "-m", "mobileplane"]
    login = subprocess.Popen(
        [*cli, "login", "--url", url, "--no-browser"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    assert login.stderr is not None
    lines = [login.stderr.readline(), login.stderr.readline()]
    authorize = lines[1].strip()
    assert authorize.startswith(f"{url}/auth/authorize?"), lines
    answer = browser_login(authorize, "cli@example.com", "quick start password", register=True)
    httpx.get(answer.headers["location"], timeout=10)  # the browser lands on the CLI's listener
    printed, rest = login.communicate(timeout=30)
    assert login.returncode == 0, rest
    assert "refresh_token" not in printed  # kept in a file, not printed
    assert "the refresh token is kept in" in rest
    token = subprocess.run(
        [*cli, "token", "--url", url], capture_output=True, text=True, env=env, check=True
    )
    return token.stdout.strip()


def test_quickstart_serves_the_platform_and_stops_cleanly(data_dir: Path) -> None:
    port = pick_port("127.0.0.1", 18080)
    url = f"http://127.0.0.1:{port}"
    process = start(data_dir, port)
    try:
        wait_ready(process, url)  # the gateway's readiness
        # The platform's index, behind the gateway, reports the components' readiness.
        answer = httpx.get(f"{url}/", timeout=5)
        # Proxied: the platform app's server and the gateway's each wrote a Date; one is kept.
        assert len(answer.headers.get_list("date")) == 1
        index = answer.json()
        assert index["name"] == "mobileplane"
        assert index["status"] == "ready"
        assert set(index["checks"]) == {"postgres", "redis"}
        mounted = {s["name"]: s["base_path"] for s in index["services"]}
        assert {"auth": "/auth", "content": "/content", "sync": "/sync"}.items() <= mounted.items()
        # Identity headers from a client are stripped by the gateway: no spoofing.
        spoofed = identity_headers(Identity("quickstart-user", frozenset({"sync"})))
        refused = httpx.get(
            f"{url}/sync/download", headers=spoofed, params={"client_id": "x"}, timeout=10
        )
        assert refused.status_code == 401
        # The banner's next steps: `mobileplane login` (the first account: the developer),
        # then `mobileplane token` for curl.
        state = {"XDG_STATE_HOME": str(data_dir / "state"), "PATH": os.environ["PATH"]}
        developer_token = cli_login(url, state)
        # The demo app signs in (authorization code + PKCE through the login page)...
        token = demo_login(url)
        who = {"authorization": f"Bearer {token['access_token']}"}
        # ...and the sync service works on the embedded default (its demo schema).
        mutation = {
            "id": 1,
            "table": "notes",
            "op": "insert",
            "row_id": "n1",
            "values": {"title": "hello"},
            "hlc": "001764000000000-00000-qs",
        }
        uploaded = httpx.post(
            f"{url}/sync/upload",
            headers=who,
            json={"client_id": "quickstart-1", "schema_version": 1, "mutations": [mutation]},
            timeout=10,
        )
        assert uploaded.status_code == 200, uploaded.text
        downloaded = httpx.get(
            f"{url}/sync/download",
            headers=who,
            params={"client_id": "quickstart-2", "schema_version": 1},
            timeout=10,
        ).json()
        assert [c["values"] for c in downloaded["changes"]] == [{"title": "hello"}]
        postgres, redis = index["components"]["postgres"], index["components"]["redis"]
        assert postgres["database"] == "mobileplane"
        assert "***" in postgres["url"]  # the index never shows the password
        assert not port_is_free("127.0.0.1", postgres["port"])
        assert not port_is_free("127.0.0.1", redis["port"])

        profile = httpx.get(
            f"{url}/profiles/me", headers={"authorization": f"Bearer {developer_token}"}, timeout=10
        )
        assert profile.status_code == 200, profile.text

        # An android build crashes with the banner's Sentry DSN; `mobileplane telemetry
        # issues` and `health` show it to the developer (issue 21 §3).
        apps = apps_status(DEMO_PLATFORM, DEMO_SPEC, demo_app_keys(data_dir), url)
        with sentry(apps["android"]["sentryDSN"], "dev.mobileplane.demo@1.0.0+1"):
            session("u1", "healthy")
            session("u2", "crashed")
        cli = [sys.executable, "-m", "mobileplane", "telemetry"]
        issues = subprocess.run(
            [*cli, "issues", "--url", url], capture_output=True, text=True, env=state, timeout=60
        )
        assert issues.returncode == 0, issues.stderr
        _, row = issues.stdout.splitlines()
        assert row.split()[:3] == ["demo-android", "1", "unresolved"], issues.stdout
        assert "KeyError: 'u2'" in row
        health = subprocess.run(
            [*cli, "health", "--url", url], capture_output=True, text=True, env=state, timeout=60
        )
        assert health.returncode == 0, health.stderr
        assert health.stdout.splitlines()[1].split()[:4] == [
            "demo-android", "dev.mobileplane.demo@1.0.0+1", "2", "1"
        ]  # fmt: skip
        # The demo app's users (later accounts) do not read telemetry.
        lacking = httpx.get(
            f"{url}/telemetry/projects",
            headers={"authorization": f"Bearer {token['access_token']}"},
        )
        assert lacking.status_code == 403
        assert lacking.json()["error"]["code"] == "insufficient_scope"

        # The docs page the banner names describes every service, as the gateway routes it.
        api = httpx.get(f"{url}/openapi.json", timeout=10).json()["paths"]
        assert {"/sync/upload", "/profiles/me", "/.well-known/openid-configuration"} <= set(api)
        assert api["/sync/upload"]["post"]["security"] == [{"bearer": []}]
        assert httpx.get(f"{url}/docs", timeout=5).status_code == 200

        missing = httpx.get(f"{url}/no-such-page", timeout=5)
        assert missing.status_code == 404
        assert missing.json()["error"]["code"] == "not_found"
    finally:
        output = stop(process)

    assert "starting PostgreSQL" in output
    assert "mobileplane is up" in output
    assert output.rstrip().endswith("stopped")
    password = (data_dir / "postgres.password").read_text().strip()
    assert password not in output
    assert f"password in {data_dir / 'postgres.password'}" in output
    # Quiet terminal: no line per request; every service's lines are in the log folder.
    assert "mobileplane.access" not in output
    assert "GET /sync/upload" not in output
    logs = [json.loads(x) for x in (data_dir / "logs" / "mobileplane.log").read_text().splitlines()]
    upload = [e for e in logs if e.get("http_path") == "/sync/upload"]
    assert {e["service"] for e in upload} == {"gateway", "platform"}
    assert len({e["request_id"] for e in upload}) == 1  # one request, seen twice, joinable
    assert any(e["logger"] == "mobileplane.gateway" for e in logs)
    assert not any(e["logger"] == "httpx" for e in logs)
    requests = (data_dir / "logs" / "access.log").read_text()
    assert requests.count("POST /sync/upload 200") == 1
    assert not (data_dir / "postgres" / "postmaster.pid").exists()  # a clean shutdown
    assert port_is_free("127.0.0.1", postgres["port"])
    assert port_is_free("127.0.0.1", redis["port"])
    assert (data_dir / "redis" / "dump.rdb").exists()  # Redis saved on the way out

    # A second run reuses the data directory: no initdb, same database. With --verbose the
    # terminal gets one line per request, the gateway's.
    process = start(data_dir, port, "--verbose")
    try:
        wait_ready(process, url)
        assert httpx.get(f"{url}/sync/download", timeout=5).status_code == 401
    finally:
        output = stop(process)
    assert "creating the PostgreSQL data directory" not in output
    assert [line for line in output.splitlines() if "/sync/download" in line] == [
        line for line in output.splitlines() if "mobileplane.access: GET /sync/download 401" in line
    ]
    assert output.count("GET /sync/download 401") == 1


def test_second_quickstart_on_the_same_data_is_refused(data_dir: Path) -> None:
    first_port = pick_port("127.0.0.1", 18180)
    first = start(data_dir, first_port)
    try:
        wait_ready(first, f"http://127.0.0.1:{first_port}")
        second = start(data_dir, pick_port("127.0.0.1", first_port + 1))
        output, _ = second.communicate(timeout=60)
        assert second.returncode == 1
        assert f"another quick start (pid {first.pid}) uses" in output
    finally:
        stop(first)


@pytest.mark.skipif(os.geteuid() != 0, reason="only root is refused by PostgreSQL")
def test_as_root_postgres_runs_as_the_postgres_account(data_dir: Path) -> None:
    port = pick_port("127.0.0.1", 18280)
    process = start(data_dir, port)
    try:
        wait_ready(process, f"http://127.0.0.1:{port}")
        pid = int((data_dir / "postgres" / "postmaster.pid").read_text().splitlines()[0])
        assert os.stat(f"/proc/{pid}").st_uid != 0
    finally:
        output = stop(process)
    assert "PostgreSQL runs as the 'postgres' account" in output
