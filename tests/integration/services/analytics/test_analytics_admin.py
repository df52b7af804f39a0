"""The admin and query API (scopes, sources and write keys, counts per hour/day with
distinct users, top events) and the retention purge (only expired events; the loop stops at
shutdown), on real Postgres."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from support.analytics import ADMIN, IOS_KEY, READER, Query, basic, kit_settings

from mobileplane.services.analytics.service import purge_once
from mobileplane.services.kit.identity import Identity, identity_headers

pytestmark = pytest.mark.integration

BATCH = "/analytics/v1/batch"
DAY = datetime(2026, 11, 20, tzinfo=UTC)


async def test_scopes(client: httpx.AsyncClient) -> None:
    nobody = identity_headers(Identity("someone", frozenset({"profile"})))
    assert (await client.get("/analytics/sources")).status_code == 401
    assert (await client.get("/analytics/sources", headers=nobody)).status_code == 403
    assert (await client.get("/analytics/sources", headers=READER)).status_code == 403
    params = {"start": DAY.isoformat(), "end": (DAY + timedelta(days=1)).isoformat()}
    assert (await client.get("/analytics/counts", params=params, headers=nobody)).status_code == 403
    for headers in (READER, ADMIN):
        response = await client.get("/analytics/counts", params=params, headers=headers)
        assert response.status_code == 200


async def test_sources_and_write_keys(client: httpx.AsyncClient) -> None:
    listed = (await client.get("/analytics/sources", headers=ADMIN)).json()["sources"]
    assert [(s["slug"], s["name"]) for s in listed] == [("android", "android"), ("ios", "iOS app")]
    created = await client.post(
        "/analytics/sources", json={"slug": "web", "name": "Web"}, headers=ADMIN
    )
    assert created.status_code == 201
    (key,) = created.json()["write_keys"]
    assert len(key["write_key"]) == 32 and key["enabled"] is True
    again = await client.post("/analytics/sources", json={"slug": "web"}, headers=ADMIN)
    assert again.status_code == 409 and again.json()["error"]["code"] == "source_exists"
    bad = await client.post("/analytics/sources", json={"slug": "Not A Slug"}, headers=ADMIN)
    assert bad.status_code == 422
    # the new key works, then is revoked
    body = {"batch": [{"type": "track", "event": "x", "userId": "u"}]}
    assert (await client.post(BATCH, json=body, headers=basic(key["write_key"]))).status_code == 200
    gone = await client.delete(f"/analytics/sources/web/keys/{key['write_key']}", headers=ADMIN)
    assert gone.status_code == 200 and gone.json()["revoked_at"] is not None
    assert (await client.post(BATCH, json=body, headers=basic(key["write_key"]))).status_code == 401
    missing = await client.delete("/analytics/sources/web/keys/nope", headers=ADMIN)
    assert missing.status_code == 404
    assert (await client.get("/analytics/sources/nope", headers=ADMIN)).status_code == 404
    (web,) = [
        s
        for s in (await client.get("/analytics/sources", headers=ADMIN)).json()["sources"]
        if s["slug"] == "web"
    ]
    assert [k["enabled"] for k in web["write_keys"]] == [False]


def message(i: int, event: str, user: str | None, at: datetime, **extra: Any) -> dict[str, Any]:
    ids = {"userId": user} if user else {"anonymousId": f"anon-{i}"}
    return {
        "type": "track",
        "event": event,
        "messageId": f"m{i}",
        "timestamp": at.isoformat(),
        **ids,
        **extra,
    }


async def test_counts_per_day_and_hour(client: httpx.AsyncClient) -> None:
    # hand-counted fixture: (event, user, time)
    fixture = [
        ("Purchase", "ann", DAY + timedelta(hours=1)),
        ("Purchase", "ann", DAY + timedelta(hours=1, minutes=30)),
        ("Purchase", "bo", DAY + timedelta(hours=2)),
        ("Purchase", None, DAY + timedelta(hours=2, minutes=5)),  # anonymous: its own user
        ("Purchase", "ann", DAY + timedelta(days=2, hours=5)),
        ("Opened", "cy", DAY + timedelta(hours=1)),
        ("Purchase", "zed", DAY - timedelta(seconds=1)),  # before the range
        ("Purchase", "zed", DAY + timedelta(days=3)),  # at the (exclusive) end
    ]
    body = {"batch": [message(i, e, u, t) for i, (e, u, t) in enumerate(fixture)]}
    assert (await client.post(BATCH, json=body, headers=basic(IOS_KEY))).json()["accepted"] == 8
    params = {"start": DAY.isoformat(), "end": (DAY + timedelta(days=3)).isoformat()}
    days = (
        await client.get(
            "/analytics/counts", params={**params, "event": "Purchase"}, headers=READER
        )
    ).json()
    assert days["total"] == {"events": 5, "users": 3}
    assert [(b["start"], b["events"], b["users"]) for b in days["buckets"]] == [
        ("2026-11-20T00:00:00+00:00", 4, 3),
        ("2026-11-21T00:00:00+00:00", 0, 0),
        ("2026-11-22T00:00:00+00:00", 1, 1),
    ]
    hours = (
        await client.get(
            "/analytics/counts",
            params={
                "start": DAY.isoformat(),
                "end": (DAY + timedelta(hours=3)).isoformat(),
                "interval": "hour",
            },
            headers=READER,
        )
    ).json()
    assert [(b["events"], b["users"]) for b in hours["buckets"]] == [(0, 0), (3, 2), (2, 2)]
    assert hours["total"] == {"events": 5, "users": 4}
    by_source = await client.get(
        "/analytics/counts", params={**params, "source": "android"}, headers=READER
    )
    assert by_source.json()["total"] == {"events": 0, "users": 0}
    top = (await client.get("/analytics/events/top", params=params, headers=READER)).json()[
        "events"
    ]
    assert top == [
        {"type": "track", "event": "Purchase", "events": 5, "users": 3},
        {"type": "track", "event": "Opened", "events": 1, "users": 1},
    ]


@pytest.mark.parametrize(
    ("params", "status"),
    [
        ({"start": "2026-11-20T00:00:00Z", "end": "2026-11-19T00:00:00Z"}, 422),
        ({"start": "2026-11-20T00:00:00Z", "end": "2027-11-20T00:00:00Z", "interval": "hour"}, 422),
        ({"start": "2026-11-20T00:00:00", "end": "2026-11-21T00:00:00Z"}, 422),  # no zone
        ({"start": "2026-11-20T00:00:00Z", "end": "9999-12-31T23:00:00Z"}, 422),
        ({"start": "2026-11-20T00:00:00Z", "end": "2026-11-21T00:00:00Z", "source": "nope"}, 404),
        ({"start": "2026-11-20T00:00:00Z", "end": "2026-11-21T00:00:00Z", "type": "nope"}, 422),
    ],
)
async def test_bad_count_queries(
    client: httpx.AsyncClient, params: dict[str, str], status: int
) -> None:
    response = await client.get("/analytics/counts", params=params, headers=READER)
    assert response.status_code == status, response.text


async def test_profiles(client: httpx.AsyncClient) -> None:
    body = {"batch": [{"type": "identify", "userId": "usr_ann", "traits": {"plan": "pro"}}]}
    await client.post(BATCH, json=body, headers=basic(IOS_KEY))
    profile = (await client.get("/analytics/profiles/usr_ann", headers=READER)).json()
    assert profile["traits"] == {"plan": "pro"}
    assert (await client.get("/analytics/profiles/nobody", headers=READER)).status_code == 404


async def test_the_purge_deletes_only_expired_events(
    analytics_app: FastAPI, client: httpx.AsyncClient, query: Query
) -> None:
    now = datetime.now(UTC)
    body = {
        "batch": [
            message(1, "Old", "ann", now - timedelta(days=400)),
            message(2, "Edge", "ann", now - timedelta(days=394)),
            message(3, "New", "ann", now - timedelta(minutes=1)),
        ]
    }
    assert (await client.post(BATCH, json=body, headers=basic(IOS_KEY))).status_code == 200
    deleted = await purge_once(analytics_app.state.database, timedelta(days=395), now)
    assert deleted == 1
    assert [r["event"] for r in query("SELECT event FROM analytics_events ORDER BY timestamp")] == [
        "Edge",
        "New",
    ]
    # profiles stay (they are not events); a second purge finds nothing
    assert await purge_once(analytics_app.state.database, timedelta(days=395), now) == 0
    assert query("SELECT count(*) AS n FROM analytics_profiles") == [{"n": 1}]


async def test_the_purge_loop_runs_and_stops_at_shutdown(
    analytics_env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    database_url: str,
    redis_url: str,
    redis_prefix: str,
    query: Query,
) -> None:

    from mobileplane.services.analytics.service import SERVICE
    from mobileplane.services.kit.mount import create_service_app

    monkeypatch.setenv("ANALYTICS_PURGE_INTERVAL_SECONDS", "0.1")
    monkeypatch.setenv("ANALYTICS_RETENTION_DAYS", "1")
    app = create_service_app(SERVICE, settings=kit_settings(database_url, redis_url, redis_prefix))
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://analytics"
        ) as c:
            now = datetime.now(UTC)
            body = {
                "batch": [
                    message(1, "Old", "a", now - timedelta(days=2)),
                    message(2, "New", "a", now),
                ]
            }
            assert (await c.post(BATCH, json=body, headers=basic(IOS_KEY))).status_code == 200
        for _ in range(100):
            if query("SELECT count(*) AS n FROM analytics_events") == [{"n": 1}]:
                break
            await asyncio.sleep(0.05)
        assert [r["event"] for r in query("SELECT event FROM analytics_events")] == ["New"]
        task = app.state.analytics_purge
    assert task.done() and not task.cancelled()  # stopped by the event, not cancelled
