"""The sync service in process, on real Postgres and Redis: upload, download, conflicts."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from mobileplane.services.sync.checksum import row_hash
from mobileplane.services.sync.hlc import Timestamp

pytestmark = pytest.mark.integration

UserClient = Callable[..., httpx.AsyncClient]  # the as_user fixture (conftest.py)

_clock = itertools.count(1_700_000_000_000)


def hlc(node: str = "dev", millis: int | None = None) -> str:
    return Timestamp(millis if millis is not None else next(_clock), 0, node).encode()


def mutation(mid: int, row_id: str, op: str = "insert", **values: Any) -> dict[str, Any]:
    return {"id": mid, "table": "notes", "op": op, "row_id": row_id, "values": values, "hlc": hlc()}


async def upload(
    client: httpx.AsyncClient, client_id: str, mutations: list[dict[str, Any]], version: int = 2
) -> httpx.Response:
    return await client.post(
        "/sync/upload",
        json={"client_id": client_id, "schema_version": version, "mutations": mutations},
    )


async def download_all(
    client: httpx.AsyncClient,
    client_id: str,
    checkpoint: str | None = None,
    limit: int | None = None,
    version: int = 2,
) -> tuple[list[dict[str, Any]], dict[str, Any], list[str]]:
    """Every page up to the checkpoint, as a client would before applying anything."""
    changes: list[dict[str, Any]] = []
    params: dict[str, Any] = {"client_id": client_id, "schema_version": version}
    if checkpoint:
        params["checkpoint"] = checkpoint
    if limit:
        params["limit"] = limit
    resets: list[str] = []
    while True:
        response = await client.get("/sync/download", params=params)
        assert response.status_code == 200, response.text
        body = response.json()
        changes.extend(body["changes"])
        resets.extend(body["reset_buckets"])
        if not body["has_more"]:
            return changes, body["checkpoint"], resets
        params = {"client_id": client_id, "schema_version": version, "cursor": body["cursor"]}


def replica(changes: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    for change in changes:
        key = (change["table"], change["row_id"])
        if change["kind"] == "put":
            rows[key] = change["values"]
        else:
            rows.pop(key, None)
    return rows


async def test_upload_then_download_round_trips(as_user: UserClient) -> None:
    alice = as_user("alice")
    response = await upload(
        alice,
        "alice-phone-1",
        [
            mutation(1, "n1", title="buy milk", done=False),
            mutation(2, "n2", title="call bob"),
            mutation(3, "n1", "update", done=True),
        ],
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["last_mutation_id"] == 3
    assert [r["status"] for r in body["results"]] == ["applied", "applied", "applied"]

    changes, checkpoint, resets = await download_all(alice, "alice-tablet-1")
    assert resets == []
    assert replica(changes) == {
        ("notes", "n1"): {"title": "buy milk", "done": True},
        ("notes", "n2"): {"title": "call bob"},
    }
    # One change per row (compacted), and the checksum covers exactly those rows.
    assert len(changes) == 2
    bucket = checkpoint["buckets"]["user:alice"]
    expected = sum(row_hash(c["table"], c["row_id"], c["op_id"]) for c in changes) % 2**32
    assert bucket["checksum"] == expected
    assert checkpoint["last_mutation_id"] == 0  # the tablet uploaded nothing


async def test_a_replayed_upload_is_a_no_op(as_user: UserClient) -> None:
    alice = as_user("alice")
    batch = [mutation(1, "n1", views={"$inc": 1}), mutation(2, "n1", "update", views={"$inc": 1})]
    first = await upload(alice, "alice-phone-1", batch)
    again = await upload(alice, "alice-phone-1", batch)
    assert [r["status"] for r in again.json()["results"]] == ["duplicate", "duplicate"]
    assert first.json()["last_mutation_id"] == again.json()["last_mutation_id"] == 2
    changes, _, _ = await download_all(alice, "alice-phone-1")
    assert replica(changes)[("notes", "n1")] == {"views": 2}  # counted once


async def test_read_your_writes_through_the_checkpoint(as_user: UserClient) -> None:
    alice = as_user("alice")
    await upload(alice, "alice-phone-1", [mutation(7, "n1", title="x")])
    _, checkpoint, _ = await download_all(alice, "alice-phone-1")
    assert checkpoint["last_mutation_id"] == 7


async def test_incremental_download_and_deletes(as_user: UserClient) -> None:
    alice = as_user("alice")
    await upload(
        alice, "alice-phone-1", [mutation(1, "n1", title="a"), mutation(2, "n2", title="b")]
    )
    _, checkpoint, _ = await download_all(alice, "alice-phone-1")
    await upload(
        alice, "alice-phone-1", [mutation(3, "n1", "delete"), mutation(4, "n3", title="c")]
    )
    changes, later, _ = await download_all(alice, "alice-phone-1", checkpoint["token"])
    assert [(c["row_id"], c["kind"]) for c in changes] == [("n1", "remove"), ("n3", "put")]
    # Nothing new: an empty page with the same checkpoint.
    nothing, same, _ = await download_all(alice, "alice-phone-1", later["token"])
    assert nothing == [] and same["token"] == later["token"]
    # An initial sync does not send removals.
    fresh, _, _ = await download_all(alice, "alice-laptop-1")
    assert {c["row_id"] for c in fresh} == {"n2", "n3"}


async def test_paging_yields_the_same_state(as_user: UserClient) -> None:
    alice = as_user("alice")
    await upload(alice, "alice-phone-1", [mutation(i, f"n{i}", title=str(i)) for i in range(1, 15)])
    await upload(alice, "alice-phone-1", [mutation(20, "n3", "update", title="edited")])
    whole, cp_whole, _ = await download_all(alice, "alice-x-0001")
    paged, cp_paged, _ = await download_all(alice, "alice-x-0002", limit=4)
    assert replica(whole) == replica(paged)
    assert cp_whole["buckets"] == cp_paged["buckets"]


async def test_conflicts_are_reported_to_the_overridden_client(as_user: UserClient) -> None:
    alice = as_user("alice")
    newer = {
        "id": 1,
        "table": "notes",
        "op": "insert",
        "row_id": "n1",
        "values": {"title": "from phone"},
        "hlc": hlc("phone", 2_000),
    }
    older = {
        "id": 1,
        "table": "notes",
        "op": "update",
        "row_id": "n1",
        "values": {"title": "from tablet"},
        "hlc": hlc("tablet", 1_000),
    }
    await upload(alice, "alice-phone-1", [newer])
    response = await upload(alice, "alice-tablet-1", [older])
    [result] = response.json()["results"]
    assert result["status"] == "conflict"
    [conflict] = result["conflicts"]
    assert conflict["column"] == "title"
    assert (conflict["client_value"], conflict["server_value"]) == ("from tablet", "from phone")


async def test_users_see_only_their_own_rows(as_user: UserClient) -> None:
    alice, bob = as_user("alice"), as_user("bob")
    await upload(alice, "alice-phone-1", [mutation(1, "shared-id", title="alice's")])
    response = await upload(
        bob, "bob-phone-0001", [mutation(1, "shared-id", "update", title="bob's")]
    )
    [result] = response.json()["results"]
    assert result["status"] == "conflict"  # not his row; nothing says whose it is
    assert "alice" not in response.text
    changes, _, _ = await download_all(bob, "bob-phone-0001")
    assert changes == []
    changes, _, _ = await download_all(alice, "alice-phone-1")
    assert replica(changes)[("notes", "shared-id")] == {"title": "alice's"}


async def test_a_client_id_belongs_to_one_user(as_user: UserClient) -> None:
    await upload(as_user("alice"), "device-00001", [mutation(1, "n1", title="a")])
    response = await upload(as_user("bob"), "device-00001", [mutation(1, "n2", title="b")])
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "client_mismatch"


@pytest.mark.parametrize(
    ("mutations", "status", "message"),
    [
        ([mutation(1, "n1", title=5)], 422, "takes text"),
        ([{**mutation(1, "n1", title="x"), "table": "nope"}], 422, "unknown table 'nope'"),
        ([{**mutation(1, "n1", title="x"), "hlc": "yesterday"}], 422, "not a hybrid logical"),
        ([mutation(2, "n1", title="a"), mutation(1, "n2", title="b")], 422, "must increase"),
        ([mutation(1, "n1", views=3)], 422, "counter column takes"),
        ([mutation(1, "n1", "delete", title="x")], 422, "a delete carries no values"),
        ([{"id": 1, "table": "notes"}], 422, ""),
        ([mutation(i, f"n{i}", title="x") for i in range(1, 60)], 413, "at most 50"),
        ([{**mutation(1, "c1", name="x"), "table": "categories"}], 422, "read-only"),
    ],
)
async def test_bad_batches_are_refused_and_nothing_is_applied(
    as_user: UserClient, mutations: list[dict[str, Any]], status: int, message: str
) -> None:
    alice = as_user("alice")
    response = await upload(alice, "alice-phone-1", mutations)
    assert response.status_code == status, response.text
    assert message in response.json()["error"]["message"] or message in response.text
    changes, checkpoint, _ = await download_all(alice, "alice-phone-1")
    assert changes == [] and checkpoint["last_mutation_id"] == 0


@pytest.mark.parametrize(
    ("mutations", "index"),
    [
        ([mutation(1, "n1", title="ok"), mutation(1, "n2", title="b")], 1),  # ids repeat
        ([mutation(3, "n1", title="ok"), mutation(4, "n2"), mutation(2, "n3")], 2),  # go back
        ([mutation(1, "n1", title="ok"), mutation(2, "n2", views=3)], 1),  # bad operand
    ],
)
async def test_every_batch_error_about_one_mutation_names_its_index(
    as_user: UserClient, mutations: list[dict[str, Any]], index: int
) -> None:
    # docs/sync-protocol.md §4: the SDK drops exactly that mutation and uploads the rest.
    response = await upload(as_user("alice"), "alice-phone-1", mutations)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["details"] == {"index": index}


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("text/plain", b'{"client_id": "alice-phone-1"}'),
        ("application/x-www-form-urlencoded", b"client_id=alice-phone-1"),
        ("multipart/form-data; boundary=x", b"--x--"),
    ],
)
async def test_an_upload_that_is_not_json_is_a_415(
    as_user: UserClient, content_type: str, body: bytes
) -> None:
    response = await as_user("alice").post(
        "/sync/upload", content=body, headers={"content-type": content_type}
    )
    assert response.status_code == 415, response.text
    error = response.json()["error"]
    assert error["code"] == "unsupported_media_type"
    assert "application/json" in error["message"]


async def test_json_with_a_charset_is_json(as_user: UserClient) -> None:
    body = json.dumps(
        {"client_id": "alice-phone-1", "schema_version": 2, "mutations": [mutation(1, "n1")]}
    )
    response = await as_user("alice").post(
        "/sync/upload",
        content=body.encode(),
        headers={"content-type": "application/json; charset=utf-8"},
    )
    assert response.status_code == 200, response.text


async def test_a_bad_mutation_after_good_ones_rolls_back_the_batch(as_user: UserClient) -> None:
    alice = as_user("alice")
    response = await upload(
        alice, "alice-phone-1", [mutation(1, "n1", title="ok"), mutation(2, "n2", title=3)]
    )
    assert response.status_code == 422
    assert response.json()["error"]["details"]["index"] == 1
    changes, _, _ = await download_all(alice, "alice-phone-1")
    assert changes == []


async def test_the_row_quota_refuses_the_whole_batch(as_user: UserClient) -> None:
    alice = as_user("alice")
    ok = await upload(
        alice, "alice-phone-1", [mutation(i, f"n{i}", title="x") for i in range(1, 21)]
    )
    assert ok.status_code == 200
    over = await upload(alice, "alice-phone-1", [mutation(21, "n21", title="x")])
    assert over.status_code == 403
    assert over.json()["error"]["code"] == "quota_exceeded"
    # Deleting makes room.
    await upload(alice, "alice-phone-1", [mutation(22, "n1", "delete")])
    assert (
        await upload(alice, "alice-phone-1", [mutation(23, "n21", title="x")])
    ).status_code == 200


@pytest.mark.parametrize(
    ("version", "status", "code"), [(0, 422, "validation_failed"), (3, 409, "schema_too_new")]
)
async def test_schema_versions_out_of_range(
    as_user: UserClient, version: int, status: int, code: str
) -> None:
    response = await upload(
        as_user("alice"), "alice-phone-1", [mutation(1, "n1", title="x")], version
    )
    assert response.status_code == status
    assert response.json()["error"]["code"] == code


async def test_an_older_client_gets_only_the_columns_it_knows(as_user: UserClient) -> None:
    alice = as_user("alice")
    await upload(alice, "alice-phone-1", [mutation(1, "n1", title="x", due="2026-12-01T09:00:00Z")])
    v1, cp1, _ = await download_all(alice, "alice-old-app1", version=1)
    v2, cp2, _ = await download_all(alice, "alice-new-app1", version=2)
    assert v1[0]["values"] == {"title": "x"}
    assert v2[0]["values"] == {"title": "x", "due": "2026-12-01T09:00:00Z"}
    assert cp1["buckets"] == cp2["buckets"]  # the checksum does not depend on the version
    refused = await upload(
        alice, "alice-old-app1", [mutation(1, "n2", due="2026-12-01T09:00:00Z")], 1
    )
    assert refused.status_code == 422


async def test_without_the_sync_scope_nothing_is_served(as_user: UserClient) -> None:
    response = await as_user("alice", scopes="profiles").get(
        "/sync/download", params={"client_id": "alice-phone-1", "schema_version": 2}
    )
    assert response.status_code == 403


async def test_a_garbage_checkpoint_is_a_clear_400(as_user: UserClient) -> None:
    response = await as_user("alice").get(
        "/sync/download",
        params={"client_id": "alice-phone-1", "schema_version": 2, "checkpoint": "%%%garbage"},
    )
    assert response.status_code == 400
    assert "resync from the start" in response.json()["error"]["message"]


async def test_concurrent_uploads_of_one_client_apply_each_mutation_once(
    as_user: UserClient,
) -> None:
    alice = as_user("alice")
    batch = [
        mutation(i, "counter", "insert" if i == 1 else "update", views={"$inc": 1})
        for i in range(1, 11)
    ]
    responses = await asyncio.gather(*(upload(alice, "alice-phone-1", batch) for _ in range(5)))
    assert all(r.status_code == 200 for r in responses)
    changes, _, _ = await download_all(alice, "alice-phone-1")
    assert replica(changes)[("notes", "counter")] == {"views": 10}


async def test_compaction_keeps_state_and_sends_stale_clients_to_resync(
    as_user: UserClient, sync_app: Any
) -> None:
    from datetime import timedelta

    from mobileplane.services.sync.service import compact_once

    alice = as_user("alice")
    await upload(
        alice, "alice-phone-1", [mutation(1, "n1", title="a"), mutation(2, "n2", title="b")]
    )
    _, stale, _ = await download_all(alice, "alice-phone-1")
    await upload(
        alice,
        "alice-phone-1",
        [mutation(3, "n1", "update", title="a2"), mutation(4, "n2", "delete")],
    )
    before, cp_before, _ = await download_all(alice, "alice-tablet-1")
    dropped = await compact_once(sync_app.state.database, timedelta(0))
    assert dropped == 3  # n1's first put, n2's put (both superseded), n2's removal
    after, cp_after, _ = await download_all(alice, "alice-laptop-1")
    assert replica(after) == replica(before) == {("notes", "n1"): {"title": "a2"}}
    assert cp_after["buckets"] == cp_before["buckets"]
    # A client that last synced before the purged removal could miss it: it must resync.
    changes, _, resets = await download_all(alice, "alice-phone-1", stale["token"])
    assert resets == ["user:alice"]
    assert replica(changes) == {("notes", "n1"): {"title": "a2"}}


async def test_connected_clients_hear_that_their_bucket_changed(
    as_user: UserClient, sync_url: str
) -> None:
    import json

    from mobileplane.services.kit.identity import Identity, identity_headers

    headers = identity_headers(Identity("alice", frozenset({"sync"})))
    alice = httpx.AsyncClient(base_url=sync_url, headers=headers, timeout=10)
    events: list[tuple[str, str]] = []

    async def listen() -> None:
        async with alice.stream("GET", "/sync/events") as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            event = ""
            async for line in response.aiter_lines():
                if line.startswith("event: "):
                    event = line.removeprefix("event: ")
                elif line.startswith("data: "):
                    events.append((event, line.removeprefix("data: ")))
                    if event == "changed":
                        return

    listener = asyncio.create_task(listen())
    for _ in range(100):
        if events:
            break
        await asyncio.sleep(0.05)
    assert events == [("ready", "{}")]
    await upload(alice, "alice-phone-1", [mutation(1, "n1", title="live")])
    await asyncio.wait_for(listener, 10)
    await alice.aclose()
    assert events[-1][0] == "changed"
    assert json.loads(events[-1][1]) == {"user:alice": 1}
