"""The sync service's part of GDPR export and erasure, on real Postgres: the user's bucket
(rows, operations), clients and conflicts, written through the upload API."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from mobileplane.services.sync import models as m
from mobileplane.services.sync.hlc import Timestamp
from mobileplane.services.sync.privacy import SyncSubjectData
from mobileplane.services.sync.service import SERVICE

pytestmark = pytest.mark.integration

UserClient = Callable[..., httpx.AsyncClient]
STORE = SyncSubjectData()
_clock = itertools.count(1_700_000_000_000)


def mutation(mid: int, row_id: str, op: str = "insert", **values: Any) -> Any:
    stamp = Timestamp(next(_clock), 0, "dev").encode()
    return {"id": mid, "table": "notes", "op": op, "row_id": row_id, "values": values, "hlc": stamp}


async def upload(client: httpx.AsyncClient, client_id: str, *mutations: Any) -> Any:
    response = await client.post(
        "/sync/upload",
        json={"client_id": client_id, "schema_version": 2, "mutations": list(mutations)},
    )
    assert response.status_code == 200, response.text
    return response.json()


async def export(app: FastAPI, subject: str) -> dict[str, Any]:
    async with app.state.database.transaction() as session:
        return await STORE.export(session, subject)


async def erase(app: FastAPI, subject: str) -> int:
    async with app.state.database.transaction() as session:
        return await STORE.erase(session, subject)


async def counts(app: FastAPI) -> dict[str, dict[str, int]]:
    """Rows per bucket (or per subject) in every table of the service."""
    out: dict[str, dict[str, int]] = {}
    async with app.state.database.transaction() as session:
        for table, column in (
            (m.buckets, m.buckets.c.bucket),
            (m.rows, m.rows.c.bucket),
            (m.ops, m.ops.c.bucket),
            (m.clients, m.clients.c.subject),
            (m.conflicts, m.conflicts.c.subject),
        ):
            found = await session.execute(select(column, func.count()).group_by(column))
            out[table.name] = {str(k): int(n) for k, n in found}
    return out


def test_the_service_registers_its_store() -> None:
    assert SERVICE.subject_data is not None
    assert SERVICE.subject_data().service == "sync"


async def test_export_has_current_values_clients_and_conflicts(
    sync_app: FastAPI, as_user: UserClient
) -> None:
    alice = as_user("alice")
    await upload(alice, "alice-phone-1", mutation(1, "n1", title="draft", views={"$inc": 2}))
    await upload(alice, "alice-phone-1", mutation(2, "n1", "update", title="final"))
    await upload(
        alice, "alice-phone-1", mutation(3, "n2", title="gone"), mutation(4, "n2", "delete")
    )
    # An older write from another device loses to the phone's: a conflict is recorded.
    stale = mutation(1, "n1", "update", title="tablet's")
    stale["hlc"] = Timestamp(1_000, 0, "tablet").encode()
    await upload(alice, "alice-tablet-1", stale)
    await upload(as_user("bob"), "bob-phone-1", mutation(1, "b1", title="bob's"))

    data = await export(sync_app, "alice")
    assert data["bucket"] == "user:alice"
    rows = {r["id"]: r for r in data["rows"]}
    assert rows["n1"]["values"] == {"title": "final", "views": 2}  # now, not the history
    assert rows["n1"]["deleted"] is False and rows["n1"]["table"] == "notes"
    assert rows["n2"] == {**rows["n2"], "values": {}, "deleted": True}
    assert set(rows) == {"n1", "n2"}  # nothing of bob's
    clients = {c["client_id"]: c for c in data["clients"]}
    assert set(clients) == {"alice-phone-1", "alice-tablet-1"}
    assert clients["alice-phone-1"]["last_mutation_id"] == 4
    [conflict] = data["conflicts"]
    assert conflict["client_id"] == "alice-tablet-1"
    assert (conflict["row_id"], conflict["column"]) == ("n1", "title")
    assert (conflict["client_value"], conflict["server_value"]) == ("tablet's", "final")
    assert await export(sync_app, "nobody") == {
        "bucket": "user:nobody",
        "rows": [],
        "clients": [],
        "conflicts": [],
    }


async def test_erasure_removes_the_bucket_clients_and_conflicts_only(
    sync_app: FastAPI, as_user: UserClient
) -> None:
    alice, bob = as_user("alice"), as_user("bob")
    await upload(alice, "alice-phone-1", mutation(1, "n1", title="a"), mutation(2, "n2", title="b"))
    stale = mutation(1, "n1", "update", title="old")
    stale["hlc"] = Timestamp(1_000, 0, "tablet").encode()
    await upload(alice, "alice-tablet-1", stale)
    await upload(bob, "bob-phone-1", mutation(1, "b1", title="bob's"))
    # A global (shared) bucket, written by the server: not alice's.
    async with sync_app.state.database.transaction() as session:
        await session.execute(m.buckets.insert().values(bucket="global", last_op=1))
        await session.execute(
            m.rows.insert().values(
                bucket="global",
                table_name="categories",
                row_id="c1",
                vals={"name": "x"},
                clocks={},
                op_id=1,
            )
        )
    before = await counts(sync_app)
    assert before["sync_rows"]["user:alice"] == 2 and before["sync_conflicts"]["alice"] == 1

    erased = await erase(sync_app, "alice")
    # 2 clients + bucket + 2 rows + 2 ops + 1 conflict
    assert erased == 8
    after = await counts(sync_app)
    for table, by_key in before.items():
        expected = {k: n for k, n in by_key.items() if k not in ("alice", "user:alice")}
        assert after[table] == expected, table
    assert after["sync_rows"]["global"] == 1 and after["sync_rows"]["user:bob"] == 1
    assert (await export(sync_app, "alice"))["rows"] == []
    assert await erase(sync_app, "alice") == 0


async def test_a_device_of_an_erased_user_resyncs_from_nothing(
    sync_app: FastAPI, as_user: UserClient
) -> None:
    alice = as_user("alice")
    await upload(alice, "alice-phone-1", mutation(1, "n1", title="a"))
    params: dict[str, Any] = {"client_id": "alice-phone-1", "schema_version": 2}
    first = (await alice.get("/sync/download", params=params)).json()
    assert [c["row_id"] for c in first["changes"]] == ["n1"]

    await erase(sync_app, "alice")
    again = await alice.get(
        "/sync/download", params={**params, "checkpoint": first["checkpoint"]["token"]}
    )
    assert again.status_code == 200, again.text
    body = again.json()
    assert body["reset_buckets"] == ["user:alice"]  # drop what you hold, nothing is left
    assert body["changes"] == []
    assert body["checkpoint"]["last_mutation_id"] == 0
