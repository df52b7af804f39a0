"""Checkpoint tokens against the real sync service: only its own are accepted (issue 21 §4).

A token that was altered, forged, made by another server or of the old unsigned format gets
the documented answer (400 ``invalid_checkpoint``: resync from scratch, docs/sync-protocol.md
§5), and a client following the protocol — the reference SDK — recovers by itself. Rotating
``SYNC_CHECKPOINT_KEYS`` keeps clients' checkpoints while the old key is still listed.
"""

from __future__ import annotations

import base64
import contextlib
import json
import secrets
from collections.abc import AsyncIterator, Iterator
from typing import Any
from urllib.parse import parse_qsl, urlencode

import httpx
import pytest
from fastapi import FastAPI
from mobileplane_client import Replica, SyncClient
from test_sync_service import download_all, mutation, replica, upload

from mobileplane.services.kit.identity import Identity, identity_headers
from mobileplane.services.kit.mount import create_service_app
from mobileplane.services.kit.settings import KitSettings
from mobileplane.services.sync.service import SERVICE
from mobileplane.services.sync.tokens import parse_keys, seal

pytestmark = pytest.mark.integration

ALICE = Identity("alice", frozenset({"sync"}))


def _flip_last(token: str) -> str:
    return token[:-1] + ("A" if token[-1] != "A" else "B")


def _unsigned(payload: dict[str, int]) -> str:
    raw = json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _tampered(kind: str, token: str) -> str:
    """``token`` made into a checkpoint the server did not issue, claiming to be up to date."""
    buckets = json.loads(base64.urlsafe_b64decode(token.split(".")[2] + "=="))
    if kind == "altered MAC":
        return _flip_last(token)
    if kind == "altered payload":
        parts = token.split(".")
        ahead = {**buckets, "user:alice": buckets["user:alice"] + 1}  # claims to be up to date
        forged = json.dumps(ahead, sort_keys=True, separators=(",", ":"))
        parts[2] = base64.urlsafe_b64encode(forged.encode()).rstrip(b"=").decode()
        return ".".join(parts)
    if kind == "truncated":
        return token[: len(token) - 10]
    if kind == "another server's":
        return seal(parse_keys(secrets.token_urlsafe(32)), "checkpoint", buckets)
    if kind == "old unsigned format":
        return _unsigned(buckets)
    raise AssertionError(kind)


KINDS = ["altered MAC", "altered payload", "truncated", "another server's", "old unsigned format"]


@contextlib.asynccontextmanager
async def sync_with_keys(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], keys: str
) -> AsyncIterator[httpx.AsyncClient]:
    """The sync service (in process) started with ``SYNC_CHECKPOINT_KEYS=keys``, as alice."""
    monkeypatch.setenv("SYNC_CHECKPOINT_KEYS", keys)
    settings = KitSettings(
        database_url=env["DATABASE_URL"],
        redis_url=env["REDIS_URL"],
        redis_prefix=env["REDIS_PREFIX"],
        log_format="text",
    )
    app: FastAPI = create_service_app(SERVICE, settings=settings)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://sync",
            headers=identity_headers(ALICE),
        ) as client,
    ):
        yield client


async def _download(client: httpx.AsyncClient, **params: Any) -> httpx.Response:
    return await client.get(
        "/sync/download", params={"client_id": "alice-phone-1", "schema_version": 2, **params}
    )


@pytest.mark.parametrize("kind", KINDS)
async def test_a_checkpoint_not_issued_by_this_server_is_answered_resync(
    monkeypatch: pytest.MonkeyPatch, sync_env: dict[str, str], kind: str
) -> None:
    async with sync_with_keys(monkeypatch, sync_env, secrets.token_urlsafe(32)) as alice:
        await upload(alice, "alice-phone-1", [mutation(1, "n1", title="a")])
        _, checkpoint, _ = await download_all(alice, "alice-phone-1")
        await upload(alice, "alice-phone-1", [mutation(2, "n2", title="b")])

        response = await _download(alice, checkpoint=_tampered(kind, checkpoint["token"]))
        assert response.status_code == 400, response.text
        error = response.json()["error"]
        assert error["code"] == "invalid_checkpoint"
        assert "resync from the start (no checkpoint)" in error["message"]

        # What the protocol says to do next works: drop the token, download from scratch.
        changes, _, _ = await download_all(alice, "alice-phone-1")
        assert replica(changes) == {
            ("notes", "n1"): {"title": "a"},
            ("notes", "n2"): {"title": "b"},
        }


async def test_a_tampered_cursor_is_refused_too(
    monkeypatch: pytest.MonkeyPatch, sync_env: dict[str, str]
) -> None:
    async with sync_with_keys(monkeypatch, sync_env, secrets.token_urlsafe(32)) as alice:
        await upload(alice, "alice-phone-1", [mutation(i, f"n{i}", title="x") for i in (1, 2, 3)])
        first = (await _download(alice, limit=1)).json()
        assert first["has_more"]
        response = await _download(alice, cursor=_flip_last(first["cursor"]))
        assert response.status_code == 400
        assert response.json()["error"]["code"] == "invalid_checkpoint"
        # A checkpoint is not a cursor either, even a genuine one.
        _, checkpoint, _ = await download_all(alice, "alice-phone-1")
        response = await _download(alice, cursor=checkpoint["token"])
        assert response.status_code == 400


async def test_rotation_keeps_checkpoints_until_the_old_key_is_retired(
    monkeypatch: pytest.MonkeyPatch, sync_env: dict[str, str]
) -> None:
    old, new = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    async with sync_with_keys(monkeypatch, sync_env, old) as alice:
        await upload(alice, "alice-phone-1", [mutation(1, "n1", title="a")])
        _, issued_under_old, _ = await download_all(alice, "alice-phone-1")

    # Rotated: the new key signs, the old one still verifies.
    async with sync_with_keys(monkeypatch, sync_env, f"{new},{old}") as alice:
        await upload(alice, "alice-phone-1", [mutation(2, "n2", title="b")])
        changes, issued_under_new, resets = await download_all(
            alice, "alice-phone-1", issued_under_old["token"]
        )
        assert [c["row_id"] for c in changes] == ["n2"]  # incremental: no resync
        assert resets == []

    # Old key retired: its tokens are refused like forged ones; the new key's still pass.
    async with sync_with_keys(monkeypatch, sync_env, new) as alice:
        response = await _download(alice, checkpoint=issued_under_old["token"])
        assert response.status_code == 400
        assert response.json()["error"]["code"] == "invalid_checkpoint"
        assert "key this server does not hold" in response.json()["error"]["message"]
        changes, _, _ = await download_all(alice, "alice-phone-1", issued_under_new["token"])
        assert changes == []


class TampersCheckpoints(httpx.BaseTransport):
    """A network (or a device's storage) that alters the checkpoint of the next download."""

    def __init__(self) -> None:
        self.inner = httpx.HTTPTransport()
        self.armed = False
        self.refused = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        params = dict(parse_qsl(request.url.query.decode()))
        if self.armed and "checkpoint" in params:
            self.armed = False
            params["checkpoint"] = _flip_last(params["checkpoint"])
            request = httpx.Request(
                request.method,
                request.url.copy_with(query=urlencode(params).encode()),
                headers=request.headers,
            )
        response = self.inner.handle_request(request)
        if response.status_code == 400:
            self.refused += 1
        return response

    def close(self) -> None:
        self.inner.close()


@pytest.fixture
def devices() -> Iterator[list[SyncClient]]:
    opened: list[SyncClient] = []
    yield opened
    for client in opened:
        client.close()


def test_the_sdk_recovers_from_a_tampered_checkpoint_by_resyncing(
    sync_url: str, devices: list[SyncClient]
) -> None:
    network = TampersCheckpoints()
    phone = SyncClient(
        sync_url,
        Replica(),
        schema_version=2,
        headers=identity_headers(ALICE),
        transport=network,
    )
    tablet = SyncClient(sync_url, Replica(), schema_version=2, headers=identity_headers(ALICE))
    devices += [phone, tablet]
    phone.replica.insert("notes", "n1", {"title": "a"})
    phone.sync_once()
    tablet.sync_once()
    tablet.replica.update("notes", "n1", {"title": "a2"})
    tablet.replica.insert("notes", "n2", {"title": "b"})
    tablet.sync_once()

    network.armed = True
    phone.sync_once()

    assert network.refused == 1  # the tampered checkpoint was answered 400...
    # ...and the phone resynced from scratch to the server's state.
    assert phone.replica.rows("notes") == tablet.replica.rows("notes")
    assert phone.replica.rows("notes") == {"n1": {"title": "a2"}, "n2": {"title": "b"}}
