"""GDPR export and erasure across the platform, on one real database: a user with data in
auth, profiles, content, sync and telemetry (each written through that service's own API or
store); ``GET /profiles/me/export`` has every service's part, ``DELETE /profiles/me`` leaves
nothing about the user in any table, and another user's data is untouched."""

from __future__ import annotations

import json
import secrets
import socket
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from redis.asyncio import Redis
from sqlalchemy import Text, cast, exists, or_, select, table, text

from mobileplane.services.auth import store as auth_store
from mobileplane.services.auth.rules import SessionLifetimes
from mobileplane.services.content.service import SERVICE as CONTENT
from mobileplane.services.kit.identity import Identity, identity_headers, revoked_session_key
from mobileplane.services.kit.mount import ServiceDefinition, create_service_app
from mobileplane.services.kit.revocation import ANNOUNCE_TTL_SECONDS
from mobileplane.services.kit.settings import KitSettings
from mobileplane.services.platform import SERVICES
from mobileplane.services.profiles.service import SERVICE as PROFILES
from mobileplane.services.sync.hlc import Timestamp
from mobileplane.services.sync.service import SERVICE as SYNC
from mobileplane.services.telemetry.service import SERVICE as TELEMETRY

pytestmark = pytest.mark.integration

DSN_KEY = "e5" * 16
SYNC_SCHEMA = {"version": 1, "tables": {"notes": {"columns": {"title": {"type": "text"}}}}}
#: Tables that may still name an erased user, and why.
ALLOWED_AFTER_ERASURE = {
    # The profile.deleted event (names only the subject, no content) waits for the relay to
    # publish it to other services; the retention purge removes it once published.
    "profile_outbox",
}


@pytest.fixture
async def apps(
    monkeypatch: pytest.MonkeyPatch, database_url: str, redis_url: str, redis_prefix: str
) -> AsyncIterator[dict[str, FastAPI]]:
    """Profiles (with every service's data-subject store registered, as deployed) and the
    services that hold user data, each as its own app on the one database."""
    monkeypatch.setenv("SYNC_SCHEMA", json.dumps(SYNC_SCHEMA))
    monkeypatch.setenv("SYNC_CHECKPOINT_KEYS", secrets.token_urlsafe(32))
    monkeypatch.setenv(
        "TELEMETRY_PROJECTS",
        json.dumps(
            [{"id": 1, "slug": "shop", "platform": "python", "keys": [{"public_key": DSN_KEY}]}]
        ),
    )
    settings = KitSettings(
        database_url=database_url, redis_url=redis_url, redis_prefix=redis_prefix, log_format="text"
    )
    services: dict[str, ServiceDefinition] = {
        "content": CONTENT,
        "sync": SYNC,
        "telemetry": TELEMETRY,
    }
    built = {
        "profiles": create_service_app(PROFILES, settings=settings, all_services=SERVICES),
        **{name: create_service_app(s, settings=settings) for name, s in services.items()},
    }
    async with AsyncExitStack() as stack:
        for app in built.values():
            await stack.enter_async_context(app.router.lifespan_context(app))
        yield built


def client(app: FastAPI, subject: str, scopes: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app, raise_app_exceptions=False),
        base_url="http://platform",
        headers=identity_headers(Identity(subject, frozenset(scopes.split()))),
    )


async def ok(response: httpx.Response) -> Any:
    assert response.status_code < 300, response.text
    return response.json()


async def give_data(apps: dict[str, FastAPI], email: str) -> str:
    """A user with data in every service that holds some; returns the user's id."""
    async with apps["profiles"].state.database.transaction() as session:
        user = await auth_store.create_user(session, email, None, verified=True)
        await auth_store.record(session, "login", user_id=user.id, ip="192.0.2.1")
    subject = user.id
    async with client(apps["profiles"], subject, "profiles") as me:
        etag = (await me.get("/profiles/me")).headers["etag"]
        await ok(
            await me.patch(
                "/profiles/me",
                json={"display_name": f"name of {email}"},
                headers={"content-type": "application/merge-patch+json", "If-Match": etag},
            )
        )
    async with client(apps["content"], "editor", "content content:write") as editor:
        await ok(await editor.put(f"/content/audience/{subject}", json={"segments": ["beta"]}))
    async with client(apps["sync"], subject, "sync") as me:
        stamp = Timestamp(int(datetime.now(UTC).timestamp() * 1000), 0, "phone").encode()
        mutation = {
            "id": 1,
            "table": "notes",
            "op": "insert",
            "row_id": "n1",
            "values": {"title": f"note of {email}"},
            "hlc": stamp,
        }
        body = {"client_id": f"phone-{subject}", "schema_version": 1, "mutations": [mutation]}
        await ok(await me.post("/sync/upload", json=body))
    now = datetime.now(UTC).isoformat()
    items = [
        (
            {"type": "event"},
            {
                "event_id": uuid.uuid4().hex,
                "timestamp": now,
                "release": "shop@1.0.0",
                "user": {"id": subject, "email": email},
                "exception": {"values": [{"type": "ValueError", "value": "bad"}]},
            },
        ),
        (
            {"type": "session"},
            {
                "sid": str(uuid.uuid4()),
                "did": subject,
                "init": True,
                "started": now,
                "status": "exited",
                "attrs": {"release": "shop@1.0.0"},
            },
        ),
    ]
    lines = [b"{}"]
    for header, payload in items:
        raw = json.dumps(payload).encode()
        lines += [json.dumps({**header, "length": len(raw)}).encode(), raw]
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=apps["telemetry"]), base_url="http://platform"
    ) as sdk:
        await ok(
            await sdk.post(
                "/telemetry/api/1/envelope/",
                content=b"\n".join(lines) + b"\n",
                headers={"x-sentry-auth": f"Sentry sentry_key={DSN_KEY}, sentry_version=7"},
            )
        )
    return subject


async def tables_mentioning(app: FastAPI, *values: str) -> set[str]:
    """Every table of the platform's database with a row whose text contains one of ``values``."""
    found: set[str] = set()
    async with app.state.database.transaction() as session:
        names = await session.scalars(
            text(
                "SELECT table_name FROM information_schema.tables "
                "WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'"
            )
        )
        for name in list(names):
            rows = table(name)
            row_text = cast(rows.table_valued(), Text)
            mentioned = or_(*(row_text.contains(value) for value in values))
            if await session.scalar(select(exists().select_from(rows).where(mentioned))):
                found.add(name)
    return found


def test_every_service_holding_user_data_registers_a_store() -> None:
    stores = {s.name for s in SERVICES if s.subject_data is not None}
    assert {"auth", "profiles", "content", "sync", "telemetry"} <= stores


async def test_export_and_erasure_cover_every_service(apps: dict[str, FastAPI]) -> None:
    ann = await give_data(apps, "ann@example.com")
    bo = await give_data(apps, "bo@example.com")
    assert await tables_mentioning(apps["profiles"], ann) >= {
        "auth_users",
        "profiles",
        "content_audience",
        "sync_rows",
        "sync_clients",
        "telemetry_events",
        "telemetry_sessions",
    }
    async with client(apps["profiles"], ann, "profiles") as me:
        export = await ok(await me.get("/profiles/me/export"))
        parts = export["services"]
        assert {"auth", "profiles", "content", "sync", "telemetry"} <= set(parts)
        assert parts["auth"]["account"]["email"] == "ann@example.com"
        assert parts["profiles"]["profile"]["display_name"] == "name of ann@example.com"
        assert parts["content"]["audience_segments"] == ["beta"]
        assert [r["values"] for r in parts["sync"]["rows"]] == [
            {"title": "note of ann@example.com"}
        ]
        assert [c["client_id"] for c in parts["sync"]["clients"]] == [f"phone-{ann}"]
        [event] = parts["telemetry"]["events"]
        assert event["user"] == {"id": ann, "email": "ann@example.com"}
        assert [s["outcome"] for s in parts["telemetry"]["sessions"]] == ["healthy"]
        async with client(apps["profiles"], bo, "profiles") as other:
            bo_before = await ok(await other.get("/profiles/me/export"))

        erased = await ok(await me.delete("/profiles/me"))
        assert erased["subject"] == ann
        for service in ("auth", "profiles", "content", "sync", "telemetry"):
            assert erased["erased"][service] > 0, service

        left = await tables_mentioning(apps["profiles"], ann, "ann@example.com")
        assert left <= ALLOWED_AFTER_ERASURE, left
        after = (await ok(await me.get("/profiles/me/export")))["services"]
    assert after["auth"] == {}
    assert after["profiles"]["profile"] is None
    assert after["content"] == {"audience_segments": [], "media_uploaded": []}
    assert after["sync"]["rows"] == after["sync"]["clients"] == after["sync"]["conflicts"] == []
    assert all(v == [] for v in after["telemetry"].values()), after["telemetry"]

    async with client(apps["profiles"], bo, "profiles") as other:
        bo_after = await ok(await other.get("/profiles/me/export"))
    for service, part in bo_before["services"].items():
        if service == "profiles":  # the profile is read at export time: compare what counts
            assert part["profile"] == bo_after["services"]["profiles"]["profile"]
            continue
        assert bo_after["services"][service] == part, service


async def test_erasure_announces_revoked_sessions_or_erases_nothing(
    apps: dict[str, FastAPI], redis_url: str
) -> None:
    """The user's live sessions are announced revoked in Redis (the gateway's list) in the
    erasure's transaction; with Redis unreachable the erasure is a 503 and nothing is gone."""
    profiles = apps["profiles"]
    users = [await give_data(apps, f"{name}@example.com") for name in ("cy", "di")]
    sids: dict[str, list[str]] = {}
    now = datetime.now(UTC)
    lifetimes = SessionLifetimes(idle=timedelta(days=30), absolute=timedelta(days=90))
    for subject in users:
        async with profiles.state.database.transaction() as session:
            sids[subject] = [
                (
                    await auth_store.create_session(
                        session,
                        user_id=subject,
                        client_id="dev.mobileplane.demo",
                        amr="pwd",
                        device=auth_store.DeviceInfo(device_id=device),
                        now=now,
                        lifetimes=lifetimes,
                        cap=None,
                    )
                )[0]
                for device in ("phone", "tablet")
            ]
    cy = users[0]
    keys = {s: revoked_session_key(profiles.state.keyspace, s) for v in sids.values() for s in v}

    working = profiles.state.redis
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    profiles.state.redis = Redis.from_url(f"redis://127.0.0.1:{closed}/0")
    try:
        async with client(profiles, cy, "profiles") as me:
            refused = await me.delete("/profiles/me")
    finally:
        await profiles.state.redis.aclose()
        profiles.state.redis = working
    assert refused.status_code == 503, refused.text
    assert await tables_mentioning(profiles, cy) >= {"auth_users", "auth_sessions", "profiles"}

    async with client(profiles, cy, "profiles") as me:
        await ok(await me.delete("/profiles/me"))

    announced = {sid for sid, key in keys.items() if await working.exists(key)}
    assert announced == set(sids[cy])  # and not the other user's
    assert 0 < await working.ttl(keys[sids[cy][0]]) <= ANNOUNCE_TTL_SECONDS
