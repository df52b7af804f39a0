"""The sync flow end to end, as an app lives it: the reference SDK signs in (authorization
code + PKCE through the gateway), keeps and refreshes its tokens, syncs a SQLite replica
across two devices through the gateway, and downloads media from S3 through it — against
real Postgres, Redis, S3 and uvicorn servers."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import jwt
import pytest
from mobileplane_client import (
    FileTokenStore,
    LoginError,
    MediaCache,
    OIDCClient,
    Replica,
    SignedOut,
    SyncClient,
)
from mobileplane_client.auth import Tokens
from support.oidc import APP_ID, REDIRECT_URI, browser_login
from support.through_gateway import Platform, platform_behind_gateway

from mobileplane.services.content.service import SERVICE as CONTENT
from mobileplane.services.kit.settings import KitSettings
from mobileplane.services.sync.service import SERVICE as SYNC

PASSWORD = "offline first, always"


@pytest.fixture
def platform(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    database_url: str,
    redis_url: str,
    redis_prefix: str,
    s3_config: dict[str, str],
    s3_bucket: str,
) -> Iterator[Platform]:
    for key, value in {
        "CONTENT_MEDIA_BUCKET": s3_bucket,
        "AWS_ENDPOINT_URL": s3_config["endpoint_url"],
        "AWS_ACCESS_KEY_ID": s3_config["access_key_id"],
        "AWS_SECRET_ACCESS_KEY": s3_config["secret_access_key"],
        "AWS_REGION": s3_config["region"],
    }.items():
        monkeypatch.setenv(key, value)
    kit = KitSettings(
        database_url=database_url, redis_url=redis_url, redis_prefix=redis_prefix, log_format="text"
    )
    with platform_behind_gateway(
        monkeypatch, tmp_path / "signing-keys", kit, [SYNC, CONTENT]
    ) as running:
        yield running


def device(
    platform: Platform,
    directory: Path,
    email: str,
    *,
    register: bool,
    scope: str = "openid offline_access sync content",
) -> OIDCClient:
    """An app on a device signs in: the SDK makes the request, the user uses the login page."""
    oidc = OIDCClient(
        platform.url,
        APP_ID,
        REDIRECT_URI,
        store=FileTokenStore(directory / "tokens.json"),
        scope=scope,
    )
    request = oidc.begin_login()
    answer = browser_login(request.url, email, PASSWORD, register=register)
    assert answer.status_code == 303, answer.text
    oidc.complete_login(request, answer.headers["location"])
    return oidc


def test_two_devices_sync_through_the_gateway(platform: Platform, tmp_path: Path) -> None:
    phone_oidc = device(platform, tmp_path / "phone", "sam@example.com", register=True)
    tablet_oidc = device(platform, tmp_path / "tablet", "sam@example.com", register=False)
    phone = SyncClient(
        platform.url,
        Replica(tmp_path / "phone" / "db.sqlite"),
        schema_version=1,
        auth=phone_oidc.auth(),
    )
    tablet = SyncClient(
        platform.url,
        Replica(tmp_path / "tablet" / "db.sqlite"),
        schema_version=1,
        auth=tablet_oidc.auth(),
    )
    try:
        # Offline on the phone: the write is visible locally at once.
        phone.replica.insert("notes", "n1", {"title": "buy milk"})
        assert phone.replica.get("notes", "n1") == {"title": "buy milk"}
        phone.sync_once()
        tablet.sync_once()
        assert tablet.replica.get("notes", "n1") == {"title": "buy milk"}
        tablet.replica.update("notes", "n1", {"done": True})
        tablet.sync_once()
        phone.sync_once()
        assert phone.replica.get("notes", "n1") == {"title": "buy milk", "done": True}
    finally:
        phone.close()
        tablet.close()
        phone_oidc.close()
        tablet_oidc.close()


def test_tokens_are_kept_and_refreshed_without_signing_out(
    platform: Platform, tmp_path: Path
) -> None:
    oidc = device(platform, tmp_path / "app", "kim@example.com", register=True)
    store = FileTokenStore(tmp_path / "app" / "tokens.json")
    assert oidc_mode(tmp_path / "app" / "tokens.json") == 0o600
    before = store.load()
    assert before is not None
    # The access token is about to expire: the next call refreshes it first (and rotates the
    # single-use refresh token), transparently for the app.
    store.save(
        Tokens(before.access_token, before.refresh_token, 0.0, before.scope, before.id_token)
    )
    client = SyncClient(
        platform.url, Replica(tmp_path / "app" / "db.sqlite"), schema_version=1, auth=oidc.auth()
    )
    try:
        client.replica.insert("notes", "n1", {"title": "x"})
        client.sync_once()
        after = store.load()
        assert after is not None
        assert after.access_token != before.access_token
        assert after.refresh_token != before.refresh_token
        # An app restart reads the stored tokens: still signed in, no login page.
        restarted = OIDCClient(platform.url, APP_ID, REDIRECT_URI, store=store)
        assert restarted.access_token() == after.access_token
        restarted.close()
        # Signing out revokes the session; the next call says "sign in again".
        oidc.logout()
        with pytest.raises(SignedOut):
            client.sync_once()
    finally:
        client.close()
        oidc.close()


def oidc_mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


def test_a_tampered_redirect_is_refused(platform: Platform, tmp_path: Path) -> None:
    oidc = OIDCClient(platform.url, APP_ID, REDIRECT_URI, store=FileTokenStore(tmp_path / "t.json"))
    try:
        request = oidc.begin_login()
        answer = browser_login(request.url, "tamper@example.com", PASSWORD, register=True)
        location = answer.headers["location"].replace(f"state={request.state}", "state=forged")
        with pytest.raises(LoginError, match="state"):
            oidc.complete_login(request, location)
    finally:
        oidc.close()


def test_media_downloads_through_the_gateway_into_the_device_cache(
    platform: Platform, tmp_path: Path
) -> None:
    editor = device(
        platform,
        tmp_path / "editor",
        "ed@example.com",
        register=True,
        scope="openid content content:write",
    )
    data = b"\x89PNG" + b"x" * 2000
    with httpx.Client(base_url=platform.url, auth=editor.auth()) as client:
        plan = client.post(
            "/content/media",
            json={
                "content_type": "image/png",
                "size": len(data),
                "sha256": hashlib.sha256(data).hexdigest(),
            },
        )
        assert plan.status_code in (200, 201), plan.text
        upload = plan.json()
        httpx.put(upload["upload"]["url"], content=data, headers=upload["upload"]["headers"])
        assert client.post(f"/content/media/{upload['id']}/complete").status_code == 200
    reader = device(platform, tmp_path / "reader", "rd@example.com", register=True)
    cache = MediaCache(platform.url, tmp_path / "reader" / "media", auth=reader.auth())
    try:
        reference = f"/content/media/{upload['id']}"
        assert cache.path(reference).read_bytes() == data
        assert cache.path(reference).read_bytes() == data
        assert cache.downloads == 1
    finally:
        cache.close()
        reader.close()
        editor.close()
    claims = jwt.decode(
        json.loads((tmp_path / "reader" / "tokens.json").read_text())["access_token"],
        options={"verify_signature": False},
    )
    assert "content" in claims["scope"].split()


def test_without_the_sync_scope_the_gateway_refuses(platform: Platform, tmp_path: Path) -> None:
    oidc = device(
        platform, tmp_path / "narrow", "narrow@example.com", register=True, scope="openid content"
    )
    try:
        answer = httpx.get(
            f"{platform.url}/sync/download",
            params={"client_id": "c1", "schema_version": 1},
            headers={"authorization": f"Bearer {oidc.access_token()}"},
        )
        assert answer.status_code == 403
        assert "insufficient_scope" in answer.headers.get("www-authenticate", "")
    finally:
        oidc.close()
