"""The telemetry service's part of GDPR export and erasure, on real Postgres: errors,
sessions, aggregates, transactions (Sentry envelopes) and spans (OTLP) of two users; the
subject's raw records go, the counted ones are anonymised and release health is unchanged."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import Text, cast, func, select

from mobileplane.services.telemetry import models as m
from mobileplane.services.telemetry.privacy import TelemetrySubjectData, subject_key
from mobileplane.services.telemetry.service import SERVICE

pytestmark = pytest.mark.integration

Auth = Callable[[str], dict[str, str]]
URL = "/telemetry/api/1/envelope/"
RELEASE = "shop@2.0.0"
STORE = TelemetrySubjectData()
ANN, BO = "usr_ann", "usr_bo"
IP = {ANN: "10.0.0.7", BO: "10.0.0.8"}


def envelope(*items: tuple[dict[str, Any], Any]) -> bytes:
    out = [b"{}"]
    for header, payload in items:
        body = json.dumps(payload).encode()
        out += [json.dumps({**header, "length": len(body)}).encode(), body]
    return b"\n".join(out) + b"\n"


def error(user: str, kind: str = "ValueError") -> tuple[dict[str, Any], Any]:
    return {"type": "event"}, {
        "event_id": uuid.uuid4().hex,
        "timestamp": datetime.now(UTC).isoformat(),
        "platform": "python",
        "level": "error",
        "release": RELEASE,
        "environment": "production",
        "user": {"id": user, "ip_address": IP[user]},
        "exception": {"values": [{"type": kind, "value": "bad", "stacktrace": {"frames": []}}]},
    }


def session(user: str, status: str) -> tuple[dict[str, Any], Any]:
    now = datetime.now(UTC).isoformat()
    return {"type": "session"}, {
        "sid": str(uuid.uuid4()),
        "did": user,
        "init": True,
        "started": now,
        "timestamp": now,
        "status": status,
        "errors": int(status == "crashed"),
        "attrs": {"release": RELEASE, "environment": "production"},
    }


def aggregates(user: str) -> tuple[dict[str, Any], Any]:
    return {"type": "sessions"}, {
        "attrs": {"release": RELEASE, "environment": "production"},
        "aggregates": [{"started": datetime.now(UTC).isoformat(), "did": user, "exited": 2}],
    }


def transaction(user: str) -> tuple[dict[str, Any], Any]:
    end = datetime.now(UTC)
    return {"type": "transaction"}, {
        "event_id": uuid.uuid4().hex,
        "type": "transaction",
        "transaction": "/checkout",
        "start_timestamp": (end - timedelta(milliseconds=250)).isoformat(),
        "timestamp": end.isoformat(),
        "release": RELEASE,
        "user": {"id": user},
        "contexts": {"trace": {"trace_id": uuid.uuid4().hex, "span_id": "a" * 16, "op": "http"}},
    }


def otlp_span(user: str, name: str) -> dict[str, Any]:
    start = int(datetime.now(UTC).timestamp() * 1e9)
    attributes = [{"key": "enduser.id", "value": {"stringValue": user}}]
    return {
        "traceId": uuid.uuid4().hex,
        "spanId": uuid.uuid4().hex[:16],
        "name": name,
        "kind": 1,
        "startTimeUnixNano": str(start),
        "endTimeUnixNano": str(start + 5_000_000),
        "attributes": attributes,
    }


async def export(app: FastAPI, subject: str) -> dict[str, Any]:
    async with app.state.database.transaction() as session:
        return await STORE.export(session, subject)


async def erase(app: FastAPI, subject: str) -> int:
    async with app.state.database.transaction() as session:
        return await STORE.erase(session, subject)


async def health(client: httpx.AsyncClient, headers: dict[str, str]) -> Any:
    r = await client.get(
        f"/telemetry/projects/shop-python/releases/{RELEASE}/health",
        headers=headers,
        params={"window": "1h"},
    )
    assert r.status_code == 200, r.text
    return r.json()["release"]


async def issues(client: httpx.AsyncClient, headers: dict[str, str]) -> dict[str, Any]:
    r = await client.get("/telemetry/projects/shop-python/issues", headers=headers)
    assert r.status_code == 200, r.text
    return {i["title"]: i for i in r.json()["issues"]}


async def mentions(app: FastAPI, value: str) -> list[str]:
    """Tables of the service with any row whose text contains ``value``."""
    found = []
    async with app.state.database.transaction() as session:
        for table in m.metadata.sorted_tables:
            row_text = cast(table.table_valued(), Text)
            hit = await session.scalar(
                select(func.count()).select_from(table).where(row_text.contains(value))
            )
            if hit:
                found.append(table.name)
    return found


@pytest.fixture
async def two_users(client: httpx.AsyncClient, keys: dict[str, str], sentry_auth: Auth) -> None:
    """Ann: 2 errors (2 issues), a crashed and a healthy session, an aggregate, a transaction
    and a span. Bo: an error in one of the same issues, a healthy session, a transaction."""
    auth = sentry_auth(keys["shop-python"])
    body = envelope(
        error(ANN),
        error(ANN, "KeyError"),
        error(BO),
        session(ANN, "crashed"),
        session(ANN, "exited"),
        session(BO, "exited"),
        aggregates(ANN),
        transaction(ANN),
        transaction(BO),
    )
    r = await client.post(URL, content=body, headers=auth)
    assert r.status_code == 200, r.text
    spans = {
        "resourceSpans": [
            {
                "resource": {
                    "attributes": [{"key": "service.name", "value": {"stringValue": "shop"}}]
                },
                "scopeSpans": [
                    {"spans": [otlp_span(ANN, "ann.checkout"), otlp_span(BO, "bo.checkout")]}
                ],
            }
        ]
    }
    r = await client.post(
        "/telemetry/v1/traces",
        content=json.dumps(spans),
        headers={**auth, "content-type": "application/json"},
    )
    assert r.status_code == 200, r.text


def test_the_service_registers_its_store() -> None:
    assert SERVICE.subject_data is not None
    assert SERVICE.subject_data().service == "telemetry"


@pytest.mark.usefixtures("two_users")
async def test_export_lists_what_is_stored_about_the_subject(
    telemetry_app: FastAPI, client: httpx.AsyncClient, reader_headers: dict[str, str]
) -> None:
    data = await export(telemetry_app, ANN)
    assert len(data["events"]) == 2
    for event in data["events"]:
        assert event["project"] == "shop-python" and event["release"] == RELEASE
        assert event["user"] == {"id": ANN, "ip_address": IP[ANN]}
        assert len(event["event_id"]) == 32 and event["timestamp"]
    by_title = await issues(client, reader_headers)
    assert sorted(data["issues"]) == sorted(
        by_title[t]["id"] for t in by_title if t.startswith(("ValueError", "KeyError"))
    )
    assert sorted(s["outcome"] for s in data["sessions"]) == ["crashed", "healthy"]
    assert {s["release"] for s in data["sessions"]} == {RELEASE}
    assert [a["exited"] for a in data["session_aggregates"]] == [2]
    [tx] = data["transactions"]
    assert (tx["name"], tx["release"]) == ("/checkout", RELEASE)
    assert [s["name"] for s in data["spans"]] == ["ann.checkout"]
    assert (await export(telemetry_app, "usr_nobody")) == {
        "events": [],
        "issues": [],
        "sessions": [],
        "session_aggregates": [],
        "transactions": [],
        "spans": [],
    }


@pytest.mark.usefixtures("two_users")
async def test_erasure_leaves_nothing_about_the_subject_and_keeps_release_health(
    telemetry_app: FastAPI, client: httpx.AsyncClient, reader_headers: dict[str, str]
) -> None:
    health_before = await health(client, reader_headers)
    issues_before = await issues(client, reader_headers)
    bo_before = await export(telemetry_app, BO)
    assert health_before["sessions"]["total"] == 5 and health_before["users"]["total"] == 2
    assert {"telemetry_events", "telemetry_sessions"} <= set(await mentions(telemetry_app, ANN))

    # 2 events + 1 transaction + 1 span deleted; 2 issue memberships, 2 sessions and
    # 1 aggregate bucket anonymised.
    assert await erase(telemetry_app, ANN) == 9

    assert await mentions(telemetry_app, ANN) == []  # not even inside a payload
    assert await mentions(telemetry_app, IP[ANN]) == []
    assert await health(client, reader_headers) == health_before
    issues_after = await issues(client, reader_headers)
    for title, issue in issues_before.items():
        counted = ("event_count", "user_count", "first_seen", "last_seen", "status")
        assert {k: issues_after[title][k] for k in counted} == {k: issue[k] for k in counted}
    assert await export(telemetry_app, BO) == bo_before  # other users untouched
    assert await export(telemetry_app, ANN) == {
        "events": [],
        "issues": [],
        "sessions": [],
        "session_aggregates": [],
        "transactions": [],
        "spans": [],
    }
    assert await erase(telemetry_app, ANN) == 0


@pytest.mark.usefixtures("two_users")
async def test_the_pseudonym_is_random_and_shared_by_one_erasure(telemetry_app: FastAPI) -> None:
    await erase(telemetry_app, ANN)
    async with telemetry_app.state.database.transaction() as session:
        dids = set(await session.scalars(select(m.sessions.c.did)))
        dids |= set(await session.scalars(select(m.session_buckets.c.did)))
        keys = set(await session.scalars(select(m.issue_users.c.user_key)))
    [pseudonym] = dids - {BO}
    assert pseudonym.startswith("erased:") and ANN not in pseudonym
    assert keys == {pseudonym, subject_key(BO)}
