"""Ingestion through the service (in-process, real Postgres): authentication, limits, the
Spec's rules with reasons, partial batches, idempotency (retries and concurrent copies),
timestamps and IP addresses as stored."""

from __future__ import annotations

import asyncio
import base64
import gzip
import json
import zlib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import brotli
import httpx
import pytest
import zstandard
from support.analytics import ADMIN, ANDROID_KEY, IOS_KEY, Query, basic

pytestmark = pytest.mark.integration

BATCH = "/analytics/v1/batch"


def track(message_id: str, user: str = "usr_ann", **extra: Any) -> dict[str, Any]:
    return {"type": "track", "event": "Viewed", "userId": user, "messageId": message_id, **extra}


def error_of(response: httpx.Response) -> dict[str, Any]:
    body = response.json()
    assert set(body) == {"error"}, body
    error: dict[str, Any] = body["error"]
    assert error["message"]
    return error


async def test_batch_is_stored_and_answered(client: httpx.AsyncClient, query: Query) -> None:
    body = {"batch": [track("m1"), track("m2", user="usr_bo")]}
    response = await client.post(BATCH, json=body, headers=basic(IOS_KEY))
    assert response.status_code == 200
    assert response.json() == {"success": True, "accepted": 2, "duplicates": 0, "rejected": []}
    rows = query("SELECT message_id, user_id FROM analytics_events ORDER BY 1")
    assert rows == [
        {"message_id": "m1", "user_id": "usr_ann"},
        {"message_id": "m2", "user_id": "usr_bo"},
    ]


@pytest.mark.parametrize(
    ("headers", "body_key", "code", "reason"),
    [
        ({}, None, "invalid_write_key", "missing write key"),
        (basic("unknownWriteKey0000000000000000"), None, "invalid_write_key", "unknown"),
        ({}, "unknownWriteKey0000000000000000", "invalid_write_key", "unknown"),
        ({"authorization": "Bearer x"}, None, "invalid_write_key", "unsupported"),
        ({"authorization": "Basic %%%"}, None, "invalid_write_key", "malformed"),
        (basic(IOS_KEY), ANDROID_KEY, "invalid_write_key", "differ"),
    ],
)
async def test_unauthenticated_requests_get_401_with_a_reason(
    client: httpx.AsyncClient,
    query: Query,
    headers: dict[str, str],
    body_key: str | None,
    code: str,
    reason: str,
) -> None:
    body: dict[str, Any] = {"batch": [track("m1")]}
    if body_key:
        body["writeKey"] = body_key
    response = await client.post(BATCH, json=body, headers=headers)
    assert response.status_code == 401
    error = error_of(response)
    assert error["code"] == code and reason in error["message"]
    assert response.headers["www-authenticate"].startswith("Basic")
    assert query("SELECT count(*) AS n FROM analytics_events") == [{"n": 0}]


async def test_the_mobile_sdks_batch_path(client: httpx.AsyncClient, query: Query) -> None:
    """analytics-swift/-kotlin post to "<apiHost>/b" with apiHost "<host>/analytics/v1"."""
    body = {"batch": [track("swift-1")], "sentAt": datetime.now(UTC).isoformat()}
    response = await client.post("/analytics/v1/b", json=body, headers=basic(IOS_KEY))
    assert response.status_code == 200 and response.json()["accepted"] == 1
    assert query("SELECT message_id FROM analytics_events") == [{"message_id": "swift-1"}]


async def test_write_key_in_the_body(client: httpx.AsyncClient, query: Query) -> None:
    body = {"writeKey": ANDROID_KEY, "userId": "u", "event": "Opened", "messageId": "x"}
    response = await client.post("/analytics/v1/track", json=body)
    assert response.status_code == 200
    (row,) = query(
        "SELECT s.slug, e.payload FROM analytics_events e "
        "JOIN analytics_sources s ON s.id = e.source_id"
    )
    assert row["slug"] == "android" and "writeKey" not in row["payload"]


async def test_a_revoked_key_is_refused(client: httpx.AsyncClient) -> None:
    created = (await client.post("/analytics/sources/ios/keys", json={}, headers=ADMIN)).json()
    key = created["write_key"]
    assert (
        await client.post(BATCH, json={"batch": [track("a")]}, headers=basic(key))
    ).status_code == 200
    revoked = await client.delete(f"/analytics/sources/ios/keys/{key}", headers=ADMIN)
    assert revoked.status_code == 200 and revoked.json()["enabled"] is False
    response = await client.post(BATCH, json={"batch": [track("b")]}, headers=basic(key))
    assert response.status_code == 401 and error_of(response)["code"] == "write_key_revoked"


@pytest.mark.parametrize(
    ("content", "headers", "status", "reason"),
    [
        (b"{not json", {}, 400, "not valid JSON"),
        (b"[]", {}, 400, "JSON object"),
        (b'{"batch": 5}', {}, 400, "needs a batch"),
        (b'{"batch": [{"type": "track", "userId": "u"}]}', {}, 400, "no message"),
        (b'{"batch": []', {"content-encoding": "gzip"}, 400, "not valid gzip"),
        (b'{"batch": []}', {"content-encoding": "br"}, 400, "not valid br"),
        (b'{"batch": []}', {"content-encoding": "lzma"}, 415, "unsupported Content-Encoding"),
        (b'{"a": NaN}', {}, 400, "not valid JSON"),
        (b"\xff", {}, 400, "UTF-8"),
    ],
)
async def test_bad_bodies_get_4xx_with_a_reason(
    client: httpx.AsyncClient, content: bytes, headers: dict[str, str], status: int, reason: str
) -> None:
    response = await client.post(
        BATCH,
        content=content,
        headers={**basic(IOS_KEY), "content-type": "application/json", **headers},
    )
    assert response.status_code == status, response.text
    assert reason in error_of(response)["message"]


async def test_a_batch_with_no_valid_message_lists_the_reasons(client: httpx.AsyncClient) -> None:
    body = {"batch": [{"type": "track", "userId": "u", "messageId": "m1"}, {"type": "nope"}]}
    response = await client.post(BATCH, json=body, headers=basic(IOS_KEY))
    assert response.status_code == 400
    assert error_of(response)["details"]["rejected"] == [
        {"index": 0, "messageId": "m1", "reason": "a track call needs a non-empty event"},
        {
            "index": 1,
            "messageId": None,
            "reason": f"type must be one of {'track, identify, page, screen, group, alias'}",
        },
    ]


async def test_a_partial_batch_stores_the_valid_messages_and_names_the_others(
    client: httpx.AsyncClient, query: Query
) -> None:
    body = {
        "batch": [
            track("ok-1"),
            {"type": "identify", "messageId": "no-ids"},
            track("bad-time", timestamp="last tuesday"),
            track("big", properties={"blob": "x" * 40_000}),
            track("ok-2"),
        ]
    }
    response = await client.post(BATCH, json=body, headers=basic(IOS_KEY))
    assert response.status_code == 200
    answer = response.json()
    assert answer["accepted"] == 2
    assert [(r["index"], r["messageId"]) for r in answer["rejected"]] == [
        (1, "no-ids"),
        (2, "bad-time"),
        (3, "big"),
    ]
    assert "userId or an anonymousId" in answer["rejected"][0]["reason"]
    assert "ISO 8601" in answer["rejected"][1]["reason"]
    assert "larger than 32000 bytes" in answer["rejected"][2]["reason"]
    assert [
        r["message_id"] for r in query("SELECT message_id FROM analytics_events ORDER BY 1")
    ] == [
        "ok-1",
        "ok-2",
    ]


async def test_size_limits(client: httpx.AsyncClient) -> None:
    # a single call over 32KB: 413
    big = {"userId": "u", "event": "x", "properties": {"blob": "x" * 33_000}}
    response = await client.post("/analytics/v1/track", json=big, headers=basic(IOS_KEY))
    assert response.status_code == 413 and "32000" in error_of(response)["message"]
    # a batch over 500KB: 413, before anything is parsed
    many = {"batch": [track(f"m{i}", properties={"b": "x" * 20_000}) for i in range(30)]}
    response = await client.post(BATCH, json=many, headers=basic(IOS_KEY))
    assert response.status_code == 413 and "500000" in error_of(response)["message"]
    # a small gzip body inflating past 500KB (a zip bomb): 413
    bomb = gzip.compress(b'{"batch": [' + b" " * 50_000_000 + b"]}")
    assert len(bomb) < 100_000
    response = await client.post(
        BATCH, content=bomb, headers={**basic(IOS_KEY), "content-encoding": "gzip"}
    )
    assert response.status_code == 413 and "decompresses" in error_of(response)["message"]


@pytest.mark.parametrize(
    ("coding", "pack"),
    [
        ("gzip", gzip.compress),
        ("deflate", zlib.compress),
        ("br", brotli.compress),
        ("zstd", lambda data: zstandard.ZstdCompressor().compress(data)),
    ],
)
async def test_compressed_bodies_are_accepted(
    client: httpx.AsyncClient, query: Query, coding: str, pack: Callable[[bytes], bytes]
) -> None:
    body = pack(json.dumps({"batch": [track(coding)]}).encode())
    response = await client.post(
        BATCH, content=body, headers={**basic(IOS_KEY), "content-encoding": coding}
    )
    assert response.status_code == 200
    assert query("SELECT message_id FROM analytics_events") == [{"message_id": coding}]


@pytest.mark.parametrize(
    ("path", "body", "reason"),
    [
        ("track", {"userId": "u"}, "non-empty event"),
        ("identify", {"traits": {}}, "userId or an anonymousId"),
        ("group", {"userId": "u"}, "groupId"),
        ("alias", {"userId": "u"}, "previousId"),
        ("page", {"userId": "u", "properties": "x"}, "properties must be an object"),
        ("screen", {"type": "track", "userId": "u"}, "sent to the screen endpoint"),
    ],
)
async def test_single_calls_validate_per_the_spec(
    client: httpx.AsyncClient, path: str, body: dict[str, Any], reason: str
) -> None:
    response = await client.post(f"/analytics/v1/{path}", json=body, headers=basic(IOS_KEY))
    assert response.status_code == 400
    error = error_of(response)
    assert error["code"] == "invalid_message" and reason in error["message"]


async def test_a_retried_batch_is_stored_once(client: httpx.AsyncClient, query: Query) -> None:
    body = {"batch": [track("r1"), {"type": "identify", "userId": "usr_ann", "traits": {"n": 1}}]}
    first = (await client.post(BATCH, json=body, headers=basic(IOS_KEY))).json()
    again = (await client.post(BATCH, json=body, headers=basic(IOS_KEY))).json()
    assert (first["duplicates"], again["duplicates"]) == (0, 2)
    assert query("SELECT count(*) AS n FROM analytics_events") == [{"n": 2}]
    # the same message id from another source is another event
    await client.post(BATCH, json={"batch": [track("r1")]}, headers=basic(ANDROID_KEY))
    assert query("SELECT count(*) AS n FROM analytics_events") == [{"n": 3}]


async def test_concurrent_identical_batches_are_stored_once(
    client: httpx.AsyncClient, query: Query
) -> None:
    body = {
        "batch": [track(f"c{i}", user=f"usr_{i % 7}") for i in range(200)]
        + [{"type": "identify", "userId": f"usr_{i}", "traits": {"i": i}} for i in range(7)]
    }
    responses = await asyncio.gather(
        *(client.post(BATCH, json=body, headers=basic(IOS_KEY)) for _ in range(8))
    )
    assert [r.status_code for r in responses] == [200] * 8
    assert sum(r.json()["duplicates"] for r in responses) == 7 * 207
    assert query("SELECT count(*) AS n FROM analytics_events") == [{"n": 207}]
    assert query("SELECT count(*) AS n FROM analytics_profiles") == [{"n": 7}]


async def test_timestamps_are_kept_and_corrected(client: httpx.AsyncClient, query: Query) -> None:
    # the device's clock is two hours fast; the event happened 30 s before the upload
    skew = timedelta(hours=2)
    now = datetime.now(UTC)
    body = {
        "sentAt": (now + skew).isoformat(),
        "batch": [track("t1", timestamp=(now + skew - timedelta(seconds=30)).isoformat())],
    }
    assert (await client.post(BATCH, json=body, headers=basic(IOS_KEY))).status_code == 200
    (row,) = query(
        "SELECT timestamp, original_timestamp, sent_at, received_at FROM analytics_events"
    )
    assert row["original_timestamp"] == now + skew - timedelta(seconds=30)
    assert row["sent_at"] == now + skew
    assert row["received_at"] - row["timestamp"] == timedelta(seconds=30)
    assert abs(row["received_at"] - now) < timedelta(seconds=5)


async def test_ip_addresses_are_anonymised(client: httpx.AsyncClient, query: Query) -> None:
    body = {
        "batch": [
            track("ip1", context={"ip": "203.0.113.77"}),
            track("ip2", context={"ip": "2001:db8:abcd:12::1"}),
            track("ip3"),
        ]
    }
    headers = {**basic(IOS_KEY), "x-forwarded-for": "198.51.100.23"}
    assert (await client.post(BATCH, json=body, headers=headers)).status_code == 200
    rows = query(
        "SELECT message_id, ip, payload->'context'->>'ip' AS sent FROM analytics_events ORDER BY 1"
    )
    assert [(r["message_id"], r["ip"], r["sent"]) for r in rows] == [
        ("ip1", "203.0.113.0", "203.0.113.0"),
        ("ip2", "2001:db8:abcd::", "2001:db8:abcd::"),
        ("ip3", "198.51.100.0", "198.51.100.0"),
    ]


async def test_traits_merge_in_event_time_order(client: httpx.AsyncClient, query: Query) -> None:
    t0 = datetime(2026, 11, 1, tzinfo=UTC)

    def identify(mid: str, at: datetime, traits: dict[str, Any]) -> dict[str, Any]:
        return {
            "type": "identify",
            "userId": "usr_ann",
            "messageId": mid,
            "timestamp": at.isoformat(),
            "traits": traits,
        }

    newer = {"batch": [identify("i2", t0 + timedelta(days=2), {"plan": "pro"})]}
    older = {"batch": [identify("i1", t0, {"plan": "free", "city": "Oslo"})]}
    await client.post(BATCH, json=newer, headers=basic(IOS_KEY))
    await client.post(BATCH, json=older, headers=basic(ANDROID_KEY))  # arrives late
    (profile,) = query("SELECT traits, first_seen, last_seen FROM analytics_profiles")
    assert profile["traits"] == {"plan": "pro", "city": "Oslo"}
    assert (profile["first_seen"], profile["last_seen"]) == (t0, t0 + timedelta(days=2))


async def test_text_postgres_cannot_store_is_rejected_per_message(
    client: httpx.AsyncClient,
) -> None:
    raw = (
        b'{"batch": [{"type": "track", "userId": "u", "event": "a\\u0000b"}, '
        b'{"type": "track", "userId": "u", "event": "\\ud800"}]}'
    )
    response = await client.post(
        BATCH, content=raw, headers={**basic(IOS_KEY), "content-type": "application/json"}
    )
    assert response.status_code == 400
    reasons = [r["reason"] for r in error_of(response)["details"]["rejected"]]
    assert reasons == [
        "the message holds a NUL character",
        "the message holds text that is not valid Unicode",
    ]


def test_basic_helper_matches_the_sdk() -> None:
    assert basic("k")["authorization"] == "Basic " + base64.b64encode(b"k:").decode()


async def test_deep_nesting_is_a_400_not_a_500(client: httpx.AsyncClient) -> None:
    for depth in (100, 990, 5000):
        nested = '{"a":' * depth + "1" + "}" * depth
        raw = '{"batch": [{"type": "track", "event": "x", "userId": "u", "properties": %s}]}'
        response = await client.post(
            BATCH,
            content=(raw % nested).encode(),
            headers={**basic(IOS_KEY), "content-type": "application/json"},
        )
        assert response.status_code == 400, (depth, response.text)
        assert "nested" in response.text
    deep_context = {"batch": [track("d")], "context": json.loads('{"a":' * 100 + "1" + "}" * 100)}
    response = await client.post(BATCH, json=deep_context, headers=basic(IOS_KEY))
    assert response.status_code == 400 and "nested deeper" in error_of(response)["message"]
