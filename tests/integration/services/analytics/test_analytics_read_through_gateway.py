"""Reading analytics back through the gateway with a token from the platform's own login (its
read routes sat behind the public ingestion route, whose identity headers the gateway strips,
so every read answered 401 through the gateway, as telemetry's did: issue 21 §3).

Real components: auth, analytics and the gateway under uvicorn, routes as the operator renders
them; events sent with the write key through the gateway's public ingestion route.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from support.analytics import IOS_KEY, SOURCES, basic, kit_settings
from support.oidc import clients_json, sign_in
from support.through_gateway import Platform, platform_behind_gateway

from mobileplane.services.analytics.service import SERVICE as ANALYTICS

pytestmark = pytest.mark.integration

PASSWORD = "a long enough password"
SCOPE = "openid offline_access analytics:read"


@pytest.fixture
def platform(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    database_url: str,
    redis_url: str,
    redis_prefix: str,
) -> Iterator[Platform]:
    monkeypatch.setenv("ANALYTICS_SOURCES", json.dumps(SOURCES))
    auth_env = {
        "AUTH_CLIENTS": clients_json("openid offline_access analytics:read analytics:admin"),
        "AUTH_FIRST_ACCOUNT_SCOPES": "analytics:read",
    }
    with platform_behind_gateway(
        monkeypatch,
        tmp_path / "signing-keys",
        kit_settings(database_url, redis_url, redis_prefix),
        [ANALYTICS],
        auth_env=auth_env,
    ) as running:
        yield running


def bearer(token: dict[str, Any]) -> dict[str, str]:
    return {"authorization": f"Bearer {token['access_token']}"}


def test_a_reader_counts_events_through_the_gateway(platform: Platform) -> None:
    analyst = sign_in(platform.url, "analyst@example.com", PASSWORD, SCOPE, register=True)
    assert "analytics:read" in analyst["scope"].split()
    sent = httpx.post(
        f"{platform.url}/analytics/v1/track",
        json={"userId": "u1", "event": "Opened"},
        headers=basic(IOS_KEY),
    )
    assert sent.status_code == 200, sent.text

    now = datetime.now(UTC)
    params = {
        "start": (now - timedelta(hours=1)).isoformat(),
        "end": (now + timedelta(hours=1)).isoformat(),
        "interval": "hour",
    }
    with httpx.Client(base_url=platform.url, timeout=10) as api:
        counts = api.get("/analytics/counts", params=params, headers=bearer(analyst))
        sources = api.get("/analytics/sources", headers=bearer(analyst))
        anonymous = api.get("/analytics/counts", params=params)
        # The write key opens ingestion only, never the read API.
        with_key = api.get("/analytics/counts", params=params, headers=basic(IOS_KEY))
    assert counts.status_code == 200, counts.text
    assert counts.json()["total"]["events"] == 1
    assert sources.status_code == 403  # sources and keys are for analytics:admin
    assert sources.json()["error"]["code"] == "insufficient_scope"
    assert anonymous.status_code == 401
    assert with_key.status_code == 401

    user = sign_in(platform.url, "user@example.com", PASSWORD, SCOPE, register=True)
    refused = httpx.get(f"{platform.url}/analytics/counts", params=params, headers=bearer(user))
    assert refused.status_code == 403
    assert "analytics:read" in refused.text
