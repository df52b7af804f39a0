"""Envelope ingestion on real Postgres and Redis: bad input, retries, load, aggregates,
regressions and the admin API."""

from __future__ import annotations

import asyncio
import gzip
import json
import uuid
import zlib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import brotli
import httpx
import pytest
import zstandard
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import create_async_engine

from mobileplane.services.telemetry import models as m

pytestmark = pytest.mark.integration

Auth = Callable[[str], dict[str, str]]
URL = "/telemetry/api/1/envelope/"


def envelope(*items: tuple[dict[str, Any], bytes], header: dict[str, Any] | None = None) -> bytes:
    out = [json.dumps(header or {}).encode()]
    for item_header, payload in items:
        out.append(json.dumps({**item_header, "length": len(payload)}).encode())
        out.append(payload)
    return b"\n".join(out) + b"\n"


def event_item(event_id: str | None = None, **fields: Any) -> tuple[dict[str, Any], bytes]:
    payload = {
        "event_id": event_id or uuid.uuid4().hex,
        "timestamp": datetime.now(UTC).isoformat(),
        "platform": "python",
        "level": "error",
        "release": "shop@1.0.0",
        "exception": {
            "values": [
                {
                    "type": "ValueError",
                    "value": "bad",
                    "stacktrace": {
                        "frames": [{"module": "shop.cart", "function": "add", "in_app": True}]
                    },
                }
            ]
        },
        **fields,
    }
    return {"type": "event"}, json.dumps(payload).encode()


def session_item(
    sid: str, seq: int, status: str = "ok", **fields: Any
) -> tuple[dict[str, Any], bytes]:
    now = datetime.now(UTC).isoformat()
    payload = {
        "sid": sid,
        "did": "user-1",
        "init": seq == 0,
        "seq": seq,
        "started": now,
        "timestamp": now,
        "status": status,
        "attrs": {"release": "shop@1.0.0", "environment": "production"},
        **fields,
    }
    return {"type": "session"}, json.dumps(payload).encode()


async def count(database_url: str, table: Any) -> int:
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as conn:
            return int(await conn.scalar(select(func.count()).select_from(table)) or 0)
    finally:
        await engine.dispose()


async def health(
    client: httpx.AsyncClient, headers: dict[str, str], release: str = "shop@1.0.0"
) -> Any:
    r = await client.get(
        f"/telemetry/projects/shop-python/releases/{release}/health",
        headers=headers,
        params={"window": "1h"},
    )
    assert r.status_code == 200, r.text
    return r.json()["release"]


# -- bad input --------------------------------------------------------------------------------


def _deflate_raw(data: bytes) -> bytes:
    packer = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    return packer.compress(data) + packer.flush()


@pytest.mark.parametrize(
    ("coding", "pack"),
    [
        ("gzip", gzip.compress),
        ("deflate", zlib.compress),
        ("deflate", _deflate_raw),
        ("br", brotli.compress),
        ("zstd", lambda data: zstandard.ZstdCompressor().compress(data)),
        ("gzip, br", lambda data: brotli.compress(gzip.compress(data))),
    ],
    ids=["gzip", "deflate", "raw-deflate", "br", "zstd", "gzip-then-br"],
)
async def test_every_encoding_sentrys_ingestion_accepts_is_accepted(
    client: httpx.AsyncClient,
    keys: dict[str, str],
    sentry_auth: Auth,
    coding: str,
    pack: Callable[[bytes], bytes],
) -> None:
    event_id = uuid.uuid4().hex
    body = envelope(event_item(event_id), header={"event_id": event_id})
    headers = {**sentry_auth(keys["shop-python"]), "content-encoding": coding}
    answer = await client.post(URL, content=pack(body), headers=headers)
    assert answer.status_code == 200, answer.text
    assert answer.json()["stored"] == {"event": 1}


@pytest.mark.parametrize(
    ("body", "headers", "status", "code"),
    [
        pytest.param(
            b'{}\n{"type":"event","length":500}\n{"a":1}\n',
            {},
            400,
            "invalid_envelope",
            id="truncated",
        ),
        pytest.param(b"\x00\x01garbage\xff", {}, 400, "invalid_envelope", id="garbage"),
        pytest.param(b"", {}, 400, "invalid_envelope", id="empty"),
        pytest.param(b"x" * 300_000, {}, 413, "payload_too_large", id="oversized-body"),
        pytest.param(
            gzip.compress(b"{}\n" + b" " * 500_000),
            {"content-encoding": "gzip"},
            413,
            "payload_too_large",
            id="zip-bomb",
        ),
        pytest.param(b"{}\n", {"content-encoding": "gzip"}, 400, "invalid_body", id="not-gzip"),
        pytest.param(
            brotli.compress(b"{}\n" + b" " * 500_000),
            {"content-encoding": "br"},
            413,
            "payload_too_large",
            id="brotli-bomb",
        ),
        pytest.param(
            zstandard.ZstdCompressor().compress(b"{}\n" + b" " * 500_000),
            {"content-encoding": "zstd"},
            413,
            "payload_too_large",
            id="zstd-bomb",
        ),
        pytest.param(b"{}\n", {"content-encoding": "br"}, 400, "invalid_body", id="not-brotli"),
        pytest.param(
            b"{}\n", {"content-encoding": "compress"}, 415, "unsupported_media_type", id="lzw"
        ),
        pytest.param(
            envelope(({"type": "event"}, b"[not json")),
            {},
            400,
            "invalid_item",
            id="event-not-json",
        ),
        pytest.param(
            envelope(({"type": "event"}, json.dumps({"x": "y" * 150_000}).encode())),
            {},
            413,
            "payload_too_large",
            id="event-too-big",
        ),
        pytest.param(
            envelope(({"type": "session"}, b'{"sid":"nope","started":"2026-01-01T00:00:00Z"}')),
            {},
            400,
            "invalid_item",
            id="bad-session",
        ),
    ],
)
async def test_bad_envelopes_are_refused_with_a_reason(
    client: httpx.AsyncClient,
    keys: dict[str, str],
    sentry_auth: Auth,
    database_url: str,
    body: bytes,
    headers: dict[str, str],
    status: int,
    code: str,
) -> None:
    r = await client.post(
        URL, content=body, headers={**sentry_auth(keys["shop-python"]), **headers}
    )
    assert r.status_code == status, r.text
    error = r.json()["error"]
    assert error["code"] == code and error["message"]
    assert await count(database_url, m.events) == 0


@pytest.mark.parametrize(
    ("url", "headers", "status", "code"),
    [
        pytest.param(URL, {}, 401, "invalid_dsn_key", id="no-key"),
        pytest.param(
            URL,
            {"x-sentry-auth": "Sentry sentry_key=" + "0" * 32},
            401,
            "invalid_dsn_key",
            id="unknown-key",
        ),
        pytest.param(
            URL,
            {"x-sentry-auth": "Sentry sentry_key=bad!"},
            401,
            "invalid_dsn_key",
            id="malformed-key",
        ),
        pytest.param(
            "/telemetry/api/2/envelope/",
            "python",
            403,
            "dsn_key_project_mismatch",
            id="other-project",
        ),
    ],
)
async def test_wrong_authentication(
    client: httpx.AsyncClient,
    keys: dict[str, str],
    sentry_auth: Auth,
    url: str,
    headers: Any,
    status: int,
    code: str,
) -> None:
    if headers == "python":
        headers = sentry_auth(keys["shop-python"])
    r = await client.post(url, content=envelope(event_item()), headers=headers)
    assert r.status_code == status, r.text
    assert r.json()["error"]["code"] == code


async def test_disabled_key_and_query_auth(
    client: httpx.AsyncClient, keys: dict[str, str], admin_headers: dict[str, str]
) -> None:
    key = keys["shop-python"]
    ok = await client.post(URL, params={"sentry_key": key}, content=envelope(event_item()))
    assert ok.status_code == 200, ok.text
    r = await client.patch(
        f"/telemetry/projects/1/keys/{key}", json={"enabled": False}, headers=admin_headers
    )
    assert r.status_code == 200 and r.json()["enabled"] is False
    refused = await client.post(URL, params={"sentry_key": key}, content=envelope(event_item()))
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "dsn_key_disabled"


# -- idempotency and load ---------------------------------------------------------------------


async def test_retries_never_double_count(
    client: httpx.AsyncClient,
    keys: dict[str, str],
    sentry_auth: Auth,
    reader_headers: dict[str, str],
    database_url: str,
) -> None:
    sid = str(uuid.uuid4())
    event_id = uuid.uuid4().hex
    now = datetime.now(UTC).isoformat()
    aggregates = (
        {"type": "sessions"},
        json.dumps(
            {
                "attrs": {"release": "shop@1.0.0"},
                "aggregates": [{"started": now, "exited": 3, "crashed": 1}],
            }
        ).encode(),
    )
    body = envelope(
        event_item(event_id, user={"id": "u9"}),
        session_item(sid, 0),
        session_item(sid, 1, "crashed", errors=1),
        aggregates,
        (
            {"type": "client_report"},
            json.dumps({"timestamp": now, "discarded_events": []}).encode(),
        ),
        ({"type": "attachment"}, b"binary\x00stuff"),
        header={"event_id": event_id, "sent_at": now},
    )
    headers = sentry_auth(keys["shop-python"])
    first = await client.post(
        URL, content=gzip.compress(body), headers={**headers, "content-encoding": "gzip"}
    )
    assert first.status_code == 200, first.text
    assert first.json()["stored"] == {"event": 1, "session": 2, "sessions": 1, "client_report": 1}
    assert first.json()["ignored"] == {"attachment": 1}
    for _ in range(3):
        again = await client.post(URL, content=body, headers=headers)
        assert again.status_code == 200
        assert again.json()["duplicates"]["event"] == 1
    assert await count(database_url, m.events) == 1
    issues = (await client.get("/telemetry/projects/1/issues", headers=reader_headers)).json()[
        "issues"
    ]
    assert [(i["event_count"], i["user_count"]) for i in issues] == [(1, 1)]
    release = await health(client, reader_headers)
    # one crashed session (sid) + the aggregate's 3 exited and 1 crashed, each counted once
    assert release["sessions"] == {
        "total": 5,
        "healthy": 3,
        "errored": 0,
        "abnormal": 0,
        "crashed": 2,
    }


async def test_under_load_n_envelopes_sent_are_n_items_stored(
    client: httpx.AsyncClient,
    keys: dict[str, str],
    sentry_auth: Auth,
    reader_headers: dict[str, str],
    database_url: str,
) -> None:
    headers = sentry_auth(keys["shop-python"])
    bodies = [envelope(event_item(user={"id": f"u{i % 7}"})) for i in range(120)]
    sids = [str(uuid.uuid4()) for _ in range(40)]
    # each session's three updates, posted concurrently and out of order, retried once
    updates = [
        envelope(
            session_item(
                sid,
                seq,
                "crashed" if (seq == 2 and n % 4 == 0) else ("exited" if seq == 2 else "ok"),
            )
        )
        for n, sid in enumerate(sids)
        for seq in (2, 0, 1, 2)
    ]
    everything = bodies + updates + bodies[:30]  # 30 events retried
    results = await asyncio.gather(
        *(client.post(URL, content=b, headers=headers) for b in everything)
    )
    assert [r.status_code for r in results] == [200] * len(everything)
    assert await count(database_url, m.events) == 120
    assert await count(database_url, m.sessions) == 40
    issues = (await client.get("/telemetry/projects/1/issues", headers=reader_headers)).json()[
        "issues"
    ]
    assert sum(i["event_count"] for i in issues) == 120
    assert issues[0]["user_count"] == 7
    release = await health(client, reader_headers)
    assert release["sessions"]["total"] == 40
    assert release["sessions"]["crashed"] == 10
    assert release["sessions"]["healthy"] == 30


# -- issues -----------------------------------------------------------------------------------


async def test_resolved_issue_regresses_in_a_newer_release(
    client: httpx.AsyncClient,
    keys: dict[str, str],
    sentry_auth: Auth,
    admin_headers: dict[str, str],
) -> None:
    headers = sentry_auth(keys["shop-python"])
    assert (
        await client.post(URL, content=envelope(event_item()), headers=headers)
    ).status_code == 200
    (issue,) = (await client.get("/telemetry/projects/1/issues", headers=admin_headers)).json()[
        "issues"
    ]
    path = f"/telemetry/projects/1/issues/{issue['id']}"
    r = await client.patch(
        path, json={"status": "resolved", "release": "shop@1.1.0"}, headers=admin_headers
    )
    assert r.status_code == 200 and r.json()["status"] == "resolved"
    later = (datetime.now(UTC) + timedelta(seconds=5)).isoformat()
    # a late report from an old build: still resolved
    await client.post(
        URL, content=envelope(event_item(release="shop@1.0.0", timestamp=later)), headers=headers
    )
    assert (await client.get(path, headers=admin_headers)).json()["status"] == "resolved"
    # the same crash in a newer release: a regression
    await client.post(
        URL, content=envelope(event_item(release="shop@1.2.0", timestamp=later)), headers=headers
    )
    regressed = (await client.get(path, headers=admin_headers)).json()
    assert regressed["status"] == "unresolved"
    assert regressed["regressed_in_release"] == "shop@1.2.0"
    assert regressed["event_count"] == 3


async def test_custom_fingerprint_from_the_sdk(
    client: httpx.AsyncClient,
    keys: dict[str, str],
    sentry_auth: Auth,
    admin_headers: dict[str, str],
) -> None:
    headers = sentry_auth(keys["shop-python"])
    for kind in ("TimeoutError", "ConnectionError"):
        extra = {"fingerprint": ["database-unreachable"]}
        item = event_item(**extra)
        payload = json.loads(item[1])
        payload["exception"]["values"][0]["type"] = kind
        await client.post(
            URL, content=envelope((item[0], json.dumps(payload).encode())), headers=headers
        )
    issues = (await client.get("/telemetry/projects/1/issues", headers=admin_headers)).json()[
        "issues"
    ]
    assert len(issues) == 1 and issues[0]["event_count"] == 2
    assert issues[0]["components"] == ["custom:database-unreachable"]


# -- admin API --------------------------------------------------------------------------------


async def test_projects_keys_and_targets(
    client: httpx.AsyncClient, admin_headers: dict[str, str], reader_headers: dict[str, str]
) -> None:
    r = await client.post(
        "/telemetry/projects",
        json={
            "slug": "kiosk",
            "platform": "android",
            "crash_free_sessions_target": 99.9,
            "crash_free_sessions_critical": 99.0,
        },
        headers=admin_headers,
    )
    assert r.status_code == 201, r.text
    project = r.json()
    assert project["id"] > 4  # past the seeded ids
    (key,) = project["keys"]
    assert key["dsn"] == f"http://{key['public_key']}@telemetry/telemetry/{project['id']}"
    assert project["targets"]["crash_free_sessions"] == {"target": 99.9, "critical": 99.0}
    assert project["targets"]["crash_free_users"] == {"target": 99.0, "critical": 98.0}
    dup = await client.post(
        "/telemetry/projects", json={"slug": "kiosk", "platform": "ios"}, headers=admin_headers
    )
    assert dup.status_code == 409
    bad = await client.patch(
        "/telemetry/projects/kiosk", json={"crash_free_users_critical": 99.5}, headers=admin_headers
    )
    assert bad.status_code == 422 and "critical" in bad.json()["error"]["message"]
    bad_limits = await client.patch(
        "/telemetry/projects/kiosk", json={"category_limits": {"bogus": 1}}, headers=admin_headers
    )
    assert bad_limits.status_code == 422
    forbidden = await client.post(
        "/telemetry/projects", json={"slug": "x", "platform": "ios"}, headers=reader_headers
    )
    assert forbidden.status_code == 403
    anonymous = await client.get("/telemetry/projects")
    assert anonymous.status_code == 401
    window = await client.get(
        "/telemetry/projects/kiosk/releases/a@1/health",
        params={"window": "1y"},
        headers=reader_headers,
    )
    assert window.status_code == 422 and "window" in window.json()["error"]["message"]
    missing = await client.get("/telemetry/projects/nope/issues", headers=reader_headers)
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "project_not_found"
    empty = await client.get(
        "/telemetry/projects/kiosk/releases/a@1/health", headers=reader_headers
    )
    assert empty.json()["release"]["crash_free_sessions"] == {
        "rate": None,
        "low": None,
        "high": None,
        "n": 0,
        "verdict": "no_data",
    }


async def test_health_counts_abnormal_environments_and_aggregate_users(
    client: httpx.AsyncClient,
    keys: dict[str, str],
    sentry_auth: Auth,
    reader_headers: dict[str, str],
) -> None:
    headers = sentry_auth(keys["shop-python"])
    now = datetime.now(UTC).isoformat()
    aggregates = {
        "attrs": {"release": "shop@1.0.0", "environment": "production"},
        "aggregates": [
            {"started": now, "did": "agg-user", "exited": 2, "crashed": 1},
            {"started": now, "exited": 4, "errored": 1},
        ],
    }
    body = envelope(
        session_item(str(uuid.uuid4()), 0, "abnormal", did="mobile-1"),
        session_item(str(uuid.uuid4()), 0, "exited", did="mobile-2"),
        session_item(
            str(uuid.uuid4()),
            0,
            "crashed",
            did="staging-user",
            attrs={"release": "shop@1.0.0", "environment": "staging"},
        ),
        ({"type": "sessions"}, json.dumps(aggregates).encode()),
        header={"sent_at": now},
    )
    assert (await client.post(URL, content=body, headers=headers)).status_code == 200
    r = await client.get(
        "/telemetry/projects/shop-python/releases/shop@1.0.0/health",
        headers=reader_headers,
        params={"window": "1h", "environment": "production"},
    )
    release = r.json()["release"]
    # production only: abnormal + exited sessions, and the two buckets (3 + 5 sessions)
    assert release["sessions"] == {
        "total": 10,
        "healthy": 7,
        "errored": 1,
        "abnormal": 1,
        "crashed": 1,
    }
    # users: mobile-1, mobile-2 and the bucket's agg-user (crashed); the bucket without did
    # adds sessions but no users
    assert release["users"] == {"total": 3, "crashed": 1}
    # abnormal sessions do not lower the crash-free rate
    assert release["crash_free_sessions"]["rate"] == pytest.approx(9 / 10)
    everywhere = await health(client, reader_headers)
    assert everywhere["sessions"]["total"] == 11 and everywhere["sessions"]["crashed"] == 2


async def test_retention_purge_removes_old_raw_data(
    telemetry_app: Any,
    client: httpx.AsyncClient,
    keys: dict[str, str],
    sentry_auth: Auth,
    database_url: str,
) -> None:
    from mobileplane.services.telemetry.service import purge_once

    headers = sentry_auth(keys["shop-python"])
    old = (datetime.now(UTC) - timedelta(days=100)).isoformat()
    body = envelope(event_item(), session_item(str(uuid.uuid4()), 0, started=old, timestamp=old))
    assert (await client.post(URL, content=body, headers=headers)).status_code == 200
    deleted = await purge_once(telemetry_app.state.database, timedelta(days=90), datetime.now(UTC))
    assert deleted == 1  # the 100-day-old session; the event was received just now
    assert await count(database_url, m.sessions) == 0
    assert await count(database_url, m.events) == 1
