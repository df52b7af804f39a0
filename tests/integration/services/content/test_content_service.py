"""The content service on real Postgres, Redis and S3: editing, caching, ranking, media."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

pytestmark = pytest.mark.integration

Client = Callable[..., httpx.AsyncClient]  # the as_user fixture (conftest.py)

EDITOR = "content content:write"
PAST = (datetime.now(UTC) - timedelta(hours=1)).isoformat()


def article(slug: str, **fields: Any) -> dict[str, Any]:
    return {
        "slug": slug,
        "kind": "article",
        "title": slug.title(),
        "body": {"text": "hi"},
        "published_at": PAST,
        **fields,
    }


async def test_editors_publish_and_readers_read_with_etags(as_user: Client) -> None:
    editor, reader = as_user("ed", EDITOR), as_user("alice")
    created = await editor.post("/content/items", json=article("welcome"))
    assert created.status_code == 201, created.text
    assert created.headers["location"] == "/content/items/welcome"

    first = await reader.get("/content/items/welcome")
    assert first.status_code == 200
    assert first.json()["title"] == "Welcome"
    assert "segments" not in first.json()
    assert first.headers["cache-control"] == "private, max-age=60"
    etag = first.headers["etag"]
    again = await reader.get("/content/items/welcome", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""


async def test_a_change_invalidates_the_cache(as_user: Client, content_app: FastAPI) -> None:
    editor, reader = as_user("ed", EDITOR), as_user("alice")
    await editor.post("/content/items", json=article("news"))
    first = await reader.get("/content/items/news")
    cache = content_app.state.content.cache
    loads = cache.loads
    assert (await reader.get("/content/items/news")).status_code == 200
    assert cache.loads == loads  # served from Redis

    replaced = await editor.put(
        "/content/items/news",
        json=article("news", title="Breaking"),
        headers={"If-Match": first.headers["etag"]},
    )
    assert replaced.status_code == 200, replaced.text
    after = await reader.get(
        "/content/items/news", headers={"If-None-Match": first.headers["etag"]}
    )
    assert after.status_code == 200 and after.json()["title"] == "Breaking"


async def test_lost_updates_are_refused(as_user: Client) -> None:
    editor = as_user("ed", EDITOR)
    created = await editor.post("/content/items", json=article("page"))
    etag = created.headers["etag"]
    ok = await editor.put(
        "/content/items/page", json=article("page", title="v2"), headers={"If-Match": etag}
    )
    assert ok.status_code == 200
    stale = await editor.put(
        "/content/items/page", json=article("page", title="v3"), headers={"If-Match": etag}
    )
    assert stale.status_code == 412
    missing = await editor.put("/content/items/page", json=article("page", title="v3"))
    assert missing.status_code == 428


async def test_a_cache_stampede_loads_once(as_user: Client, content_app: FastAPI) -> None:
    await as_user("ed", EDITOR).post("/content/items", json=article("hot"))
    cache = content_app.state.content.cache
    loads = cache.loads
    readers = [as_user(f"u{i}") for i in range(20)]
    responses = await asyncio.gather(*(r.get("/content/items/hot") for r in readers))
    assert {r.status_code for r in responses} == {200}
    assert cache.loads - loads == 1


async def test_the_feed_is_ranked_and_targeted(as_user: Client) -> None:
    editor = as_user("ed", EDITOR)
    for item in (
        article("plain"),
        article("running", tags=["running"]),
        article("pinned", priority=3),
        article("vip-only", segments=["vip"]),
        article("german", locale="de"),
        article("draft", published_at=None),
    ):
        assert (await editor.post("/content/items", json=item)).status_code == 201
    alice = as_user("alice", **{"Accept-Language": "en-GB,en;q=0.8"})
    feed = await alice.get("/content/feed", params={"interests": "running"})
    assert [i["slug"] for i in feed.json()["items"]] == ["pinned", "running", "plain"]
    assert feed.json()["items"][1]["why"] == ["interests: running"]

    await editor.put("/content/audience/alice", json={"segments": ["vip"]})
    feed = await alice.get("/content/feed", params={"interests": "running"})
    assert "vip-only" in [i["slug"] for i in feed.json()["items"]]
    bob = as_user("bob", **{"Accept-Language": "de-DE"})
    assert "german" in [i["slug"] for i in (await bob.get("/content/feed")).json()["items"]]


async def test_readers_cannot_edit_and_strangers_cannot_read(as_user: Client) -> None:
    assert (await as_user("alice").post("/content/items", json=article("x"))).status_code == 403
    assert (await as_user("alice", "profiles").get("/content/feed")).status_code == 403


@pytest.mark.parametrize(
    ("item", "status"),
    [
        (article("Bad Slug"), 422),
        (article("ok", kind="video"), 422),
        (article("ok", priority=11), 422),
        (article("ok", expires_at=PAST, published_at=datetime.now(UTC).isoformat()), 422),
        (article("ok", media=["not-a-media-id"]), 422),
        ({"slug": "ok"}, 422),
    ],
)
async def test_bad_items_are_refused(as_user: Client, item: dict[str, Any], status: int) -> None:
    response = await as_user("ed", EDITOR).post("/content/items", json=item)
    assert response.status_code == status, response.text


async def test_duplicate_slugs_conflict(as_user: Client) -> None:
    editor = as_user("ed", EDITOR)
    await editor.post("/content/items", json=article("same"))
    again = await editor.post("/content/items", json=article("same"))
    assert again.status_code == 409 and again.json()["error"]["code"] == "slug_taken"


async def upload(
    editor: httpx.AsyncClient,
    data: bytes,
    content_type: str = "image/png",
    declared: bytes | None = None,
) -> tuple[str, httpx.Response]:
    declared = data if declared is None else declared
    started = await editor.post(
        "/content/media",
        json={
            "content_type": content_type,
            "size": len(declared),
            "sha256": hashlib.sha256(declared).hexdigest(),
        },
    )
    assert started.status_code == 201, started.text
    plan = started.json()
    async with httpx.AsyncClient() as s3:
        put = await s3.put(plan["upload"]["url"], content=data, headers=plan["upload"]["headers"])
    assert put.status_code == 200, put.text
    return plan["id"], await editor.post(f"/content/media/{plan['id']}/complete")


async def test_media_upload_is_verified_then_served(as_user: Client) -> None:
    editor = as_user("ed", EDITOR)
    png = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4
    media_id, completed = await upload(editor, png)
    assert completed.status_code == 200 and completed.json()["status"] == "ready"

    created = await editor.post("/content/items", json=article("with-image", media=[media_id]))
    assert created.json()["media"] == [f"/content/media/{media_id}"]
    redirect = await as_user("alice").get(f"/content/media/{media_id}")
    assert redirect.status_code == 307
    async with httpx.AsyncClient() as s3:
        fetched = await s3.get(redirect.headers["location"])
    assert fetched.content == png


async def test_a_file_that_differs_from_its_declaration_is_rejected(as_user: Client) -> None:
    editor = as_user("ed", EDITOR)
    media_id, completed = await upload(editor, b"tampered bytes", declared=b"declared bytes")
    assert completed.status_code == 422
    assert "SHA-256 differs" in completed.json()["error"]["message"]
    assert (await as_user("alice").get(f"/content/media/{media_id}")).status_code == 404


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"content_type": "text/html", "size": 10, "sha256": "0" * 64}, "is not accepted"),
        ({"content_type": "image/png", "size": 10**9, "sha256": "0" * 64}, "at most 100000"),
    ],
)
async def test_media_declarations_are_checked(
    as_user: Client, body: dict[str, Any], message: str
) -> None:
    response = await as_user("ed", EDITOR).post("/content/media", json=body)
    assert response.status_code == 422 and message in response.json()["error"]["message"]
