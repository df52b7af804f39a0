"""The content service's part of GDPR export and erasure, on real Postgres: audience segments
set through the editors' API, media uploads started by the user."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from mobileplane.services.content import models as m
from mobileplane.services.content.privacy import ERASED_UPLOADER, ContentSubjectData
from mobileplane.services.content.service import SERVICE

pytestmark = pytest.mark.integration

Client = Callable[..., httpx.AsyncClient]
EDITOR = "content content:write"
STORE = ContentSubjectData()


async def export(app: FastAPI, subject: str) -> dict[str, Any]:
    async with app.state.database.transaction() as session:
        return await STORE.export(session, subject)


async def erase(app: FastAPI, subject: str) -> int:
    async with app.state.database.transaction() as session:
        return await STORE.erase(session, subject)


async def start_upload(client: httpx.AsyncClient) -> str:
    started = await client.post(
        "/content/media", json={"content_type": "image/png", "size": 3, "sha256": "a" * 64}
    )
    assert started.status_code == 201, started.text
    return str(started.json()["id"])


def test_the_service_registers_its_store() -> None:
    assert SERVICE.subject_data is not None
    assert SERVICE.subject_data().service == "content"


async def test_export_then_erase_segments_and_uploads(
    content_app: FastAPI, as_user: Client
) -> None:
    editor = as_user("eve", EDITOR)
    for subject, segments in (("ann", ["beta", "vip"]), ("bo", ["beta"])):
        put = await editor.put(f"/content/audience/{subject}", json={"segments": segments})
        assert put.status_code == 200, put.text
    ann_editor, bo_editor = as_user("ann", EDITOR), as_user("bo", EDITOR)
    ann_media = await start_upload(ann_editor)
    bo_media = await start_upload(bo_editor)

    mine = await export(content_app, "ann")
    assert mine["audience_segments"] == ["beta", "vip"]
    [upload] = mine["media_uploaded"]
    assert upload["id"] == ann_media
    assert (upload["content_type"], upload["size"], upload["status"]) == ("image/png", 3, "pending")
    assert await export(content_app, "nobody") == {"audience_segments": [], "media_uploaded": []}

    assert await erase(content_app, "ann") == 3  # two segments, one media record unlinked
    assert await export(content_app, "ann") == {"audience_segments": [], "media_uploaded": []}
    async with content_app.state.database.transaction() as session:
        uploaders = dict((await session.execute(select(m.media.c.id, m.media.c.created_by))).all())
        audience = (await session.execute(select(m.audience))).all()
    # The file stays (items may use it); nothing says who uploaded it any more.
    assert uploaders == {ann_media: ERASED_UPLOADER, bo_media: "bo"}
    assert [tuple(r) for r in audience] == [("bo", "beta")]
    assert await erase(content_app, "ann") == 0  # erasing again finds nothing


async def test_an_erased_user_is_in_no_segment_any_more(
    content_app: FastAPI, as_user: Client
) -> None:
    editor = as_user("eve", EDITOR)
    created = await editor.post(
        "/content/items",
        json={
            "slug": "vip-offer",
            "kind": "article",
            "title": "For VIPs",
            "segments": ["vip"],
            "published_at": "2020-01-01T00:00:00Z",
        },
    )
    assert created.status_code == 201, created.text
    await editor.put("/content/audience/cy", json={"segments": ["vip"]})
    cy = as_user("cy")
    before = (await cy.get("/content/feed")).json()["items"]
    assert [i["slug"] for i in before] == ["vip-offer"]  # shown to the segment only

    await erase(content_app, "cy")
    assert (await cy.get("/content/feed")).json()["items"] == []
