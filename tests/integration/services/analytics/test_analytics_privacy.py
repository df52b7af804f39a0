"""The analytics service's part of GDPR export and erasure, on real Postgres: a user's events
(with their anonymous ids' events before sign-in, linked by identify or alias), profile and
links are exported and erased; another user's data is untouched."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from support.analytics import ANDROID_KEY, IOS_KEY, Query, basic

from mobileplane.services.analytics.privacy import AnalyticsSubjectData
from mobileplane.services.kit.privacy import erase_subject, export_subject

pytestmark = pytest.mark.integration

BATCH = "/analytics/v1/batch"
STORE = AnalyticsSubjectData()


async def send(client: httpx.AsyncClient, key: str, *messages: dict[str, Any]) -> None:
    response = await client.post(BATCH, json={"batch": list(messages)}, headers=basic(key))
    assert response.status_code == 200 and response.json()["rejected"] == []


async def test_export_and_erase(
    analytics_app: FastAPI, client: httpx.AsyncClient, query: Query
) -> None:
    # Ann: anonymous on iOS, then identified; anonymous on Android, then aliased
    await send(
        client,
        IOS_KEY,
        {"type": "track", "event": "Opened", "anonymousId": "dev-1", "messageId": "a1"},
        {
            "type": "identify",
            "userId": "ann",
            "anonymousId": "dev-1",
            "traits": {"email": "ann@example.com"},
            "messageId": "a2",
        },
        {
            "type": "track",
            "event": "Bought",
            "userId": "ann",
            "messageId": "a3",
            "context": {"ip": "203.0.113.9"},
        },
        # Bo: same anonymous id string on iOS is a different device, and his own data
        {
            "type": "identify",
            "userId": "bo",
            "anonymousId": "dev-9",
            "traits": {"name": "Bo"},
            "messageId": "b1",
        },
        {"type": "track", "event": "Opened", "anonymousId": "dev-9", "messageId": "b2"},
    )
    await send(
        client,
        ANDROID_KEY,
        {"type": "screen", "name": "Home", "anonymousId": "dev-2", "messageId": "a4"},
        {"type": "alias", "previousId": "dev-2", "userId": "ann", "messageId": "a5"},
        {
            "type": "track",
            "event": "Opened",
            "anonymousId": "dev-1",
            "messageId": "x1",
        },  # not Ann's: another source's dev-1
    )
    stores = [STORE]
    async with analytics_app.state.database.transaction() as session:
        exported = (await export_subject(session, stores, "ann"))["analytics"]
    assert exported["profile"]["traits"] == {"email": "ann@example.com"}
    assert sorted(e["message_id"] for e in exported["events"]) == ["a1", "a2", "a3", "a4", "a5"]
    assert {
        (lk["source"], lk["anonymous_id"], lk["kind"]) for lk in exported["identity_links"]
    } == {
        ("ios", "dev-1", "identify"),
        ("android", "dev-2", "alias"),
    }
    bought = next(e for e in exported["events"] if e["message_id"] == "a3")
    assert bought["ip"] == "203.0.113.0" and bought["payload"]["event"] == "Bought"

    async with analytics_app.state.database.transaction() as session:
        counts = await erase_subject(session, stores, "ann")
    assert counts == {"analytics": 5 + 2 + 1}
    remaining = [
        r["message_id"] for r in query("SELECT message_id FROM analytics_events ORDER BY 1")
    ]
    assert remaining == ["b1", "b2", "x1"]
    assert [r["user_id"] for r in query("SELECT user_id FROM analytics_profiles")] == ["bo"]
    assert [r["user_id"] for r in query("SELECT user_id FROM analytics_identity_links")] == ["bo"]
    async with analytics_app.state.database.transaction() as session:
        assert await STORE.export(session, "ann") == {
            "profile": None,
            "identity_links": [],
            "events": [],
        }
        assert await STORE.erase(session, "ann") == 0
        bo = await STORE.export(session, "bo")
    assert sorted(e["message_id"] for e in bo["events"]) == ["b1", "b2"]


def test_the_service_registers_its_store() -> None:
    from mobileplane.services.analytics.service import SERVICE
    from mobileplane.services.platform import SERVICES

    assert SERVICE in SERVICES
    assert SERVICE.subject_data is not None and SERVICE.subject_data().service == "analytics"
