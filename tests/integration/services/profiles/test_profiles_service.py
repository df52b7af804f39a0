"""The profiles service on real Postgres, Redis and S3: first login, patches, avatars, GDPR."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from mobileplane.services.kit.errors import Unavailable
from mobileplane.services.kit.mount import ServiceDefinition
from mobileplane.services.profiles import models as m
from mobileplane.services.profiles.outbox import relay_once
from mobileplane.services.profiles.service import SERVICE

pytestmark = pytest.mark.integration

Client = Callable[..., httpx.AsyncClient]  # the as_user fixture (conftest.py)
MERGE = {"Content-Type": "application/merge-patch+json"}
PNG = b"\x89PNG\r\n\x1a\n" + b"avatar-bytes" * 50


async def events_of(app: FastAPI, subject: str) -> list[str]:
    async with app.state.database.transaction() as session:
        rows = await session.execute(
            select(m.outbox.c.type).where(m.outbox.c.subject == subject).order_by(m.outbox.c.seq)
        )
        return list(rows.scalars())


async def drain(app: FastAPI) -> None:
    """Publish every pending event now (rounds of the app's relay may run meanwhile)."""
    state = app.state.profiles
    while await count(app, m.outbox, m.outbox.c.published_at.is_(None)):
        await relay_once(app.state.database, state.relay.publish, batch=100)


async def count(app: FastAPI, table: Any, *where: Any) -> int:
    async with app.state.database.transaction() as session:
        query = select(func.count()).select_from(table).where(*where)
        return int(await session.scalar(query) or 0)


async def test_the_first_request_creates_the_profile_once(
    as_user: Client, profiles_app: FastAPI
) -> None:
    ada = as_user("ada")
    first = await ada.get("/profiles/me")
    assert first.status_code == 200, first.text
    body = first.json()
    assert body["subject"] == "ada" and body["version"] == 1
    assert body["display_name"] is None and body["settings"] == {} and body["avatar"] is None
    assert first.headers["cache-control"] == "private, no-cache"

    again = await ada.get("/profiles/me")
    assert again.headers["etag"] == first.headers["etag"]
    cached = await ada.get("/profiles/me", headers={"If-None-Match": first.headers["etag"]})
    assert cached.status_code == 304 and cached.content == b""
    assert await events_of(profiles_app, "ada") == ["profile.created"]


async def test_concurrent_first_requests_create_one_profile_and_one_event(
    as_user: Client, profiles_app: FastAPI
) -> None:
    clients = [as_user("bo") for _ in range(8)]
    responses = await asyncio.gather(*(c.get("/profiles/me") for c in clients))
    assert {r.status_code for r in responses} == {200}
    assert len({r.headers["etag"] for r in responses}) == 1
    assert await count(profiles_app, m.profiles) == 1
    assert await events_of(profiles_app, "bo") == ["profile.created"]


async def test_patches_need_if_match_and_lost_updates_are_refused(
    as_user: Client, profiles_app: FastAPI
) -> None:
    phone, tablet = as_user("cy"), as_user("cy")
    read = await phone.get("/profiles/me")
    etag = read.headers["etag"]

    missing = await phone.patch("/profiles/me", json={"display_name": "Cy"}, headers=MERGE)
    assert missing.status_code == 428
    assert missing.json()["error"]["code"] == "precondition_required"

    ok = await phone.patch(
        "/profiles/me", json={"display_name": "Cy"}, headers={**MERGE, "If-Match": etag}
    )
    assert ok.status_code == 200, ok.text
    assert ok.json()["display_name"] == "Cy" and ok.json()["version"] == 2
    assert ok.headers["etag"] != etag

    lost = await tablet.patch(
        "/profiles/me", json={"display_name": "Cyrus"}, headers={**MERGE, "If-Match": etag}
    )
    assert lost.status_code == 412
    assert lost.json()["error"]["code"] == "precondition_failed"
    assert (await tablet.get("/profiles/me")).json()["display_name"] == "Cy"
    assert await events_of(profiles_app, "cy") == ["profile.created", "profile.updated"]


async def test_a_merge_patch_changes_only_what_it_names(as_user: Client) -> None:
    dee = as_user("dee")
    etag = (await dee.get("/profiles/me")).headers["etag"]
    first = await dee.patch(
        "/profiles/me",
        json={
            "display_name": "Dee",
            "locale": "pt-br",
            "time_zone": "America/Sao_Paulo",
            "settings": {"theme": "dark", "notifications": {"push": True}},
        },
        headers={**MERGE, "If-Match": etag},
    )
    assert first.status_code == 200, first.text
    assert first.json()["locale"] == "pt-BR"
    second = await dee.patch(
        "/profiles/me",
        content=b'{"settings": {"theme": null, "units": "metric"}, "time_zone": null}',
        headers={"Content-Type": "application/json", "If-Match": first.headers["etag"]},
    )
    assert second.status_code == 200, second.text
    profile = second.json()
    assert profile["settings"] == {"notifications": {"push": True}, "units": "metric"}
    assert profile["time_zone"] is None and profile["display_name"] == "Dee"

    unchanged = await dee.patch(
        "/profiles/me", json={"display_name": "Dee"}, headers={**MERGE, "If-Match": "*"}
    )
    assert unchanged.status_code == 200
    assert unchanged.json()["version"] == profile["version"]  # nothing changed, no new version


@pytest.mark.parametrize(
    ("content", "content_type", "status", "paths"),
    [
        (
            b'{"locale": "english!", "settings": {"theme": "pink"}, "time_zone": "Mars/Base"}',
            "application/merge-patch+json",
            422,
            ["/locale", "/settings/theme", "/time_zone"],
        ),
        (
            b'{"version": 7, "subject": "eve"}',
            "application/merge-patch+json",
            422,
            ["/subject", "/version"],
        ),
        (b'["display_name"]', "application/json", 422, [""]),
        (b'{"display_name": ', "application/merge-patch+json", 400, None),
        (b'{"settings": {"x": "\\u0000"}}', "application/merge-patch+json", 400, None),
        (b'{"display_name": "Eve"}', "text/plain", 415, None),
        (b'{"settings": {"x": "' + b"a" * 70_000 + b'"}}', "application/json", 413, None),
    ],
    ids=["invalid-members", "read-only", "not-an-object", "malformed", "nul", "type", "large"],
)
async def test_bad_patches_get_a_4xx_with_reasons(
    as_user: Client, content: bytes, content_type: str, status: int, paths: list[str] | None
) -> None:
    eve = as_user("eve")
    await eve.get("/profiles/me")
    response = await eve.patch(
        "/profiles/me", content=content, headers={"Content-Type": content_type, "If-Match": "*"}
    )
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["message"]
    if paths is not None:
        assert sorted(d["path"] for d in error["details"]) == paths


async def test_scope_and_identity_are_required(as_user: Client, profiles_app: FastAPI) -> None:
    assert (await as_user("fay", "content").get("/profiles/me")).status_code == 403
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=profiles_app), base_url="http://profiles"
    ) as anonymous:
        assert (await anonymous.get("/profiles/me")).status_code == 401


async def upload_avatar(client: httpx.AsyncClient, data: bytes, **declared: Any) -> httpx.Response:
    """The whole avatar flow: declare, PUT to the presigned URL, complete."""
    started = await client.post(
        "/profiles/me/avatar/uploads",
        json={
            "content_type": "image/png",
            "size": len(data),
            "sha256": hashlib.sha256(data).hexdigest(),
            **declared,
        },
    )
    assert started.status_code == 201, started.text
    upload = started.json()["upload"]
    async with httpx.AsyncClient() as s3:
        put = await s3.put(upload["url"], content=data, headers=upload["headers"])
        assert put.status_code == 200, put.text
    return await client.post(started.json()["complete"])


async def test_avatar_upload_is_verified_then_served_by_redirect(
    as_user: Client, s3_client: Any, s3_bucket: str
) -> None:
    gus, other = as_user("gus"), as_user("hal")
    done = await upload_avatar(gus, PNG)
    assert done.status_code == 200, done.text
    avatar = done.json()["avatar"]
    assert avatar["content_type"] == "image/png" and avatar["size"] == len(PNG)
    assert avatar["url"] == "/profiles/me/avatar"

    redirect = await gus.get("/profiles/me/avatar")
    assert redirect.status_code == 307
    async with httpx.AsyncClient() as s3:
        assert (await s3.get(redirect.headers["location"])).content == PNG

    public = await other.get("/profiles/users/gus")
    assert public.json() == {
        "subject": "gus",
        "display_name": None,
        "avatar_url": "/profiles/users/gus/avatar",
    }
    assert (await other.get("/profiles/users/gus/avatar")).status_code == 307

    first_key = s3_client.list_objects_v2(Bucket=s3_bucket)["Contents"][0]["Key"]
    replaced = await upload_avatar(gus, PNG + b"v2")
    assert replaced.status_code == 200
    keys = [o["Key"] for o in s3_client.list_objects_v2(Bucket=s3_bucket)["Contents"]]
    assert len(keys) == 1 and keys[0] != first_key  # the replaced image was deleted

    removed = await gus.delete("/profiles/me/avatar")
    assert removed.status_code == 200 and removed.json()["avatar"] is None
    assert s3_client.list_objects_v2(Bucket=s3_bucket).get("KeyCount") == 0
    assert (await gus.get("/profiles/me/avatar")).status_code == 404


async def test_an_avatar_that_differs_from_its_declaration_is_deleted(
    as_user: Client, s3_client: Any, s3_bucket: str
) -> None:
    ivy = as_user("ivy")
    wrong = await upload_avatar(ivy, PNG, sha256="0" * 64)
    assert wrong.status_code == 422
    assert "SHA-256" in wrong.json()["error"]["message"]
    assert s3_client.list_objects_v2(Bucket=s3_bucket).get("KeyCount") == 0
    assert (await ivy.get("/profiles/me")).json()["avatar"] is None


@pytest.mark.parametrize(
    ("declared", "reason"),
    [
        ({"content_type": "image/svg+xml"}, "not accepted"),
        ({"size": 100_001}, "at most 100000 bytes"),
        ({"sha256": "XYZ"}, "Request validation failed"),
    ],
)
async def test_avatar_declarations_are_checked_up_front(
    as_user: Client, declared: dict[str, Any], reason: str
) -> None:
    body = {"content_type": "image/png", "size": 10, "sha256": "a" * 64, **declared}
    response = await as_user("jo").post("/profiles/me/avatar/uploads", json=body)
    assert response.status_code == 422
    assert reason in response.json()["error"]["message"]


async def test_completing_before_uploading_or_an_unknown_upload_is_a_4xx(as_user: Client) -> None:
    kim = as_user("kim")
    started = await kim.post(
        "/profiles/me/avatar/uploads",
        json={"content_type": "image/png", "size": 3, "sha256": "a" * 64},
    )
    early = await kim.post(started.json()["complete"])
    assert early.status_code == 422 and "PUT" in early.json()["error"]["message"]
    other = await as_user("lou").post(started.json()["complete"])
    assert other.status_code == 404  # someone else's upload is not yours to complete
    assert (await kim.post("/profiles/me/avatar/uploads/not-a-uuid/complete")).status_code == 404


async def test_without_a_bucket_avatar_endpoints_say_so(
    make_app: Callable[..., FastAPI],
    open_client: Callable[..., httpx.AsyncClient],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("PROFILES_AVATAR_BUCKET")
    app = make_app()
    async with app.router.lifespan_context(app):
        mo = open_client(app, "mo")
        started = await mo.post(
            "/profiles/me/avatar/uploads",
            json={"content_type": "image/png", "size": 3, "sha256": "a" * 64},
        )
        assert started.status_code == 503
        assert "PROFILES_AVATAR_BUCKET" in started.json()["error"]["message"]
        assert (await mo.get("/profiles/me/avatar")).status_code == 503
        assert (await mo.get("/profiles/me")).status_code == 200  # the rest works


async def test_export_returns_what_the_platform_holds(as_user: Client) -> None:
    ned = as_user("ned")
    etag = (await ned.get("/profiles/me")).headers["etag"]
    await ned.patch(
        "/profiles/me", json={"display_name": "Ned"}, headers={**MERGE, "If-Match": etag}
    )
    assert (await upload_avatar(ned, PNG)).status_code == 200
    await as_user("someone-else").get("/profiles/me")

    export = await ned.get("/profiles/me/export")
    assert export.status_code == 200
    assert export.headers["cache-control"] == "no-store"
    body = export.json()
    assert body["subject"] == "ned"
    mine = body["services"]["profiles"]
    assert mine["profile"]["display_name"] == "Ned"
    assert mine["profile"]["avatar_sha256"] == hashlib.sha256(PNG).hexdigest()
    assert [e["type"] for e in mine["events"]] == [
        "profile.created",
        "profile.updated",
        "profile.updated",
    ]
    assert {e["subject"] for e in mine["events"]} == {"ned"}


async def test_erasure_removes_the_user_everywhere_and_emits_deleted(
    as_user: Client, profiles_app: FastAPI, s3_client: Any, s3_bucket: str
) -> None:
    oz, pat = as_user("oz"), as_user("pat")
    assert (await upload_avatar(oz, PNG)).status_code == 200
    await pat.get("/profiles/me")
    await drain(profiles_app)

    erased = await oz.delete("/profiles/me")
    assert erased.status_code == 200, erased.text
    assert erased.json()["erased"]["profiles"] >= 3  # the profile and its two events
    assert erased.json()["objects_deleted"] == 1
    assert s3_client.list_objects_v2(Bucket=s3_bucket).get("KeyCount") == 0
    assert await events_of(profiles_app, "oz") == ["profile.deleted"]
    assert (await pat.get("/profiles/users/oz")).status_code == 404
    export = (await oz.get("/profiles/me/export")).json()["services"]["profiles"]
    assert export["profile"] is None and export["avatar_uploads"] == []
    assert (await pat.get("/profiles/users/pat")).status_code == 200  # others untouched


class _RefusingStore:
    """A service whose part of an erasure fails (its storage is down)."""

    service = "refusing"

    async def export(self, session: AsyncSession, subject: str) -> dict[str, Any]:
        return {"held": True}

    async def erase(self, session: AsyncSession, subject: str) -> int:
        raise Unavailable("the refusing service cannot erase now", retry_after=1)


async def test_an_erasure_is_all_or_nothing(
    make_app: Callable[..., FastAPI],
    open_client: Callable[..., httpx.AsyncClient],
    s3_client: Any,
    s3_bucket: str,
) -> None:
    refusing = ServiceDefinition(
        name="refusing", base_path="/refusing", summary="test", subject_data=_RefusingStore
    )
    app = make_app(all_services=[SERVICE, refusing])
    async with app.router.lifespan_context(app):
        quinn = open_client(app, "quinn")
        assert (await upload_avatar(quinn, PNG)).status_code == 200
        export = (await quinn.get("/profiles/me/export")).json()["services"]
        assert export["refusing"] == {"held": True}  # every registered service exports

        failed = await quinn.delete("/profiles/me")
        assert failed.status_code == 503
        assert (await quinn.get("/profiles/me")).json()["avatar"] is not None
        assert s3_client.list_objects_v2(Bucket=s3_bucket).get("KeyCount") == 1
        assert await events_of(app, "quinn") == ["profile.created", "profile.updated"]
