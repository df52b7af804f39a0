"""The app-config service on real PostgreSQL: what apps read, who may write, and that a halt
is visible to the next read (ETag changes, old ETag no longer 304)."""

from __future__ import annotations

import httpx
import pytest

from mobileplane.services.kit.identity import Identity, identity_headers

pytestmark = pytest.mark.integration


async def test_unknown_app_is_404(appconfig: httpx.AsyncClient) -> None:
    r = await appconfig.get("/appconfig/nothing-here")
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "app_not_found"


async def test_versions_halts_and_switches_reach_the_document(
    appconfig: httpx.AsyncClient, writer: dict[str, str]
) -> None:
    r = await appconfig.patch(
        "/appconfig/shop/platforms/ios",
        json={"latest_version": "2.4.0", "min_supported_version": "2.0.0"},
        headers=writer,
    )
    assert r.status_code == 200, r.text
    r = await appconfig.put(
        "/appconfig/shop/kill-switches/new-checkout",
        json={"enabled": True, "message": "checkout is off"},
        headers=writer,
    )
    assert r.status_code == 200
    first = await appconfig.get("/appconfig/shop")
    assert first.status_code == 200
    assert first.headers["cache-control"] == "public, max-age=15"
    assert first.json() == {
        "app": "shop",
        "platforms": {
            "ios": {
                "latest_version": "2.4.0",
                "min_supported_version": "2.0.0",
                "halted_versions": [],
            }
        },
        "kill_switches": {"new-checkout": {"enabled": True, "message": "checkout is off"}},
    }
    etag = first.headers["etag"]
    again = await appconfig.get("/appconfig/shop", headers={"if-none-match": etag})
    assert again.status_code == 304
    assert again.headers["etag"] == etag

    r = await appconfig.put(
        "/appconfig/shop/platforms/ios/halted/2.4.0",
        json={"reason": "crash-free sessions 96.00% below 99.50%"},
        headers=writer,
    )
    assert r.json() == {
        "app": "shop",
        "platform": "ios",
        "version": "2.4.0",
        "halted": True,
        "changed": True,
    }
    repeat = await appconfig.put(
        "/appconfig/shop/platforms/ios/halted/2.4.0", json={"reason": "again"}, headers=writer
    )
    assert repeat.json()["changed"] is False  # idempotent: the first reason is kept

    after = await appconfig.get(
        "/appconfig/shop",
        params={"platform": "ios", "version": "2.4.0"},
        headers={"if-none-match": etag},
    )
    assert after.status_code == 200  # the halt changed the document: the old ETag is stale
    body = after.json()
    halted = body["platforms"]["ios"]["halted_versions"]
    assert [h["version"] for h in halted] == ["2.4.0"]
    assert halted[0]["reason"] == "crash-free sessions 96.00% below 99.50%"
    assert body["client"] == {
        "platform": "ios",
        "version": "2.4.0",
        "halted": True,
        "halted_reason": "crash-free sessions 96.00% below 99.50%",
        "update_required": False,
        "update_available": False,
    }
    old = await appconfig.get("/appconfig/shop", params={"platform": "ios", "version": "1.9.0"})
    assert old.json()["client"]["update_required"] is True

    r = await appconfig.delete("/appconfig/shop/platforms/ios/halted/2.4.0", headers=writer)
    assert r.json()["changed"] is True
    cleared = await appconfig.get("/appconfig/shop")
    assert cleared.json()["platforms"]["ios"]["halted_versions"] == []


@pytest.mark.parametrize(
    ("method", "path", "body", "headers", "status", "code"),
    [
        pytest.param(
            "put",
            "/appconfig/shop/kill-switches/x",
            {"enabled": True},
            {},
            401,
            "unauthorized",
            id="no identity",
        ),
        pytest.param(
            "put",
            "/appconfig/shop/kill-switches/x",
            {"enabled": True},
            identity_headers(Identity("app-user", frozenset({"content"}))),
            403,
            "insufficient_scope",
            id="without the write scope",
        ),
        pytest.param(
            "patch", "/appconfig/shop/platforms/ios", {}, None, 400, "empty_patch", id="empty patch"
        ),
        pytest.param(
            "patch",
            "/appconfig/shop/platforms/windows",
            {"latest_version": "1"},
            None,
            422,
            "validation_failed",
            id="unknown platform",
        ),
        pytest.param(
            "patch",
            "/appconfig/shop/platforms/ios",
            {"latest_version": "1.0", "min_supported_version": "2.0"},
            None,
            422,
            "minimum_above_latest",
            id="minimum above latest",
        ),
        pytest.param(
            "patch",
            "/appconfig/shop/platforms/ios",
            {"latest_version": "1 0"},
            None,
            422,
            "validation_failed",
            id="bad version",
        ),
        pytest.param(
            "put",
            "/appconfig/shop/platforms/ios/halted/2.0",
            {"reason": ""},
            None,
            422,
            "validation_failed",
            id="halt without a reason",
        ),
        pytest.param(
            "put",
            "/appconfig/Bad App/kill-switches/x",
            {"enabled": True},
            None,
            422,
            "validation_failed",
            id="bad app name",
        ),
        pytest.param(
            "delete",
            "/appconfig/shop/kill-switches/none",
            None,
            None,
            404,
            "kill_switch_not_found",
            id="unknown kill switch",
        ),
        pytest.param(
            "get",
            "/appconfig/shop?platform=ios",
            None,
            None,
            400,
            "platform_and_version",
            id="platform without version",
        ),
    ],
)
async def test_bad_requests_get_4xx_with_a_reason(
    appconfig: httpx.AsyncClient,
    writer: dict[str, str],
    method: str,
    path: str,
    body: object,
    headers: dict[str, str] | None,
    status: int,
    code: str,
) -> None:
    await appconfig.patch(
        "/appconfig/shop/platforms/android", json={"latest_version": "3.0"}, headers=writer
    )
    r = await appconfig.request(
        method, path, json=body, headers=writer if headers is None else headers
    )
    assert r.status_code == status, r.text
    assert r.json()["error"]["code"] == code
