"""The real Segment SDK (segment-analytics-python) pointed at the service under uvicorn:
every call type is stored as sent, gzip mode works, and a batch the SDK retries (its first
answer lost after the commit) is stored once."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from segment.analytics.client import Client
from starlette.types import ASGIApp, Receive, Scope, Send
from support.analytics import ANDROID_KEY, IOS_KEY, READER, Query
from support.uvicorn_server import ServerHandle

pytestmark = pytest.mark.integration


def segment(url: str, key: str, **options: Any) -> tuple[Client, list[Exception]]:
    errors: list[Exception] = []
    client = Client(
        key,
        host=f"{url}/analytics",
        on_error=lambda e, batch: errors.append(e),
        upload_interval=0.05,
        **options,
    )
    return client, errors


def test_the_segment_sdk_sends_every_call_type(analytics_url: str, query: Query) -> None:
    client, errors = segment(analytics_url, IOS_KEY)
    then = datetime.now(UTC) - timedelta(minutes=5)
    client.identify("usr_ann", {"plan": "pro", "name": "Ann"}, anonymous_id="anon-1")
    client.track("usr_ann", "Order Completed", {"revenue": 42.5, "currency": "EUR"})
    client.track(None, "App Opened", anonymous_id="anon-2", timestamp=then)
    client.screen("usr_ann", "Checkout", "Cart", {"items": 3})
    client.page("usr_ann", "Docs", "Pricing", {"url": "https://example.com/pricing"})
    client.group("usr_ann", "acme", {"name": "Acme Inc", "employees": 50})
    client.alias("anon-2", "usr_ann")
    client.flush()
    client.shutdown()
    assert errors == []

    rows = query(
        "SELECT type, event, user_id, anonymous_id, group_id, previous_id, ip, payload, "
        "timestamp, original_timestamp, sent_at, received_at FROM analytics_events "
        "ORDER BY original_timestamp"
    )
    by_type = {(r["type"], r["event"]): r for r in rows}
    assert set(by_type) == {
        ("identify", None),
        ("track", "Order Completed"),
        ("track", "App Opened"),
        ("screen", "Cart"),
        ("page", "Pricing"),
        ("group", None),
        ("alias", None),
    }
    order = by_type[("track", "Order Completed")]
    assert order["payload"]["properties"] == {"revenue": 42.5, "currency": "EUR"}
    assert order["payload"]["context"]["library"]["name"] == "analytics-python"
    assert order["ip"] == "127.0.0.0"  # the peer's address, anonymised
    assert order["sent_at"] is not None and order["received_at"] is not None
    opened = by_type[("track", "App Opened")]
    assert opened["anonymous_id"] == "anon-2" and opened["user_id"] is None
    # the SDK's clock is ours: the corrected time is the original one, within the upload delay
    assert abs(opened["timestamp"] - then) < timedelta(seconds=5)
    assert abs(opened["original_timestamp"] - then) < timedelta(milliseconds=1)
    assert by_type[("alias", None)]["previous_id"] == "anon-2"
    assert by_type[("group", None)]["group_id"] == "acme"
    assert by_type[("screen", "Cart")]["payload"]["category"] == "Checkout"

    (profile,) = query("SELECT * FROM analytics_profiles")
    assert profile["user_id"] == "usr_ann"
    assert profile["traits"] == {"plan": "pro", "name": "Ann"}
    (group,) = query("SELECT * FROM analytics_groups")
    assert group["traits"] == {"name": "Acme Inc", "employees": 50}
    links = query("SELECT anonymous_id, user_id, kind FROM analytics_identity_links ORDER BY 1")
    assert links == [
        {"anonymous_id": "anon-1", "user_id": "usr_ann", "kind": "identify"},
        {"anonymous_id": "anon-2", "user_id": "usr_ann", "kind": "alias"},
    ]


def test_gzip_mode_and_sync_mode(analytics_url: str, query: Query) -> None:
    client, errors = segment(analytics_url, ANDROID_KEY, gzip=True, sync_mode=True)
    big = {"blob": "x" * 20_000}  # compresses well; well under 32KB as JSON
    client.track("usr_bo", "Level Up", big)
    client.identify("usr_bo", {"level": 7})
    assert errors == []
    rows = query(
        "SELECT e.type, e.event, s.slug, e.payload FROM analytics_events e "
        "JOIN analytics_sources s ON s.id = e.source_id ORDER BY e.type"
    )
    assert [(r["type"], r["event"], r["slug"]) for r in rows] == [
        ("identify", None, "android"),
        ("track", "Level Up", "android"),
    ]
    assert rows[1]["payload"]["properties"] == big


class LoseFirstAnswer:
    """ASGI middleware: the first batch is served (and committed) but its answer replaced by
    a 503, as when a proxy drops the connection after the commit; the SDK then retries."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.lost = 0
        self.lock = threading.Lock()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].endswith("/v1/batch"):
            await self.app(scope, receive, send)
            return
        with self.lock:
            lose = self.lost == 0
            self.lost += 1
        if not lose:
            await self.app(scope, receive, send)
            return

        async def swallow(message: Any) -> None:
            pass

        await self.app(scope, receive, swallow)
        body = b'{"error": {"code": "unavailable", "message": "lost"}}'
        await send(
            {
                "type": "http.response.start",
                "status": 503,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": body})


def test_a_batch_the_sdk_retries_is_stored_once(
    make_server: Callable[..., ServerHandle], query: Query
) -> None:
    handle = make_server(lambda app: app.add_middleware(LoseFirstAnswer))
    client, errors = segment(handle.url, IOS_KEY, upload_size=50)
    for i in range(20):
        client.track("usr_ann", "Tapped", {"i": i})
    client.identify("usr_ann", {"visits": 1})
    client.flush()
    client.shutdown()
    assert errors == []
    # the SDK sent the batch at least twice (the first answer was lost)...
    assert handle.app is not None
    stack = handle.app.middleware_stack
    while stack is not None and not isinstance(stack, LoseFirstAnswer):
        stack = getattr(stack, "app", None)
    assert isinstance(stack, LoseFirstAnswer) and stack.lost >= 2
    # ...and every message is stored once
    (row,) = query("SELECT count(*) AS n, count(DISTINCT message_id) AS d FROM analytics_events")
    assert row == {"n": 21, "d": 21}
    counts = httpx.get(
        f"{handle.url}/analytics/counts",
        params={
            "event": "Tapped",
            "start": (datetime.now(UTC) - timedelta(hours=1)).isoformat(),
            "end": (datetime.now(UTC) + timedelta(hours=1)).isoformat(),
            "interval": "hour",
        },
        headers=READER,
    ).json()
    assert counts["total"] == {"events": 20, "users": 1}
