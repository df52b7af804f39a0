"""Planning an upload batch (pure): op ids, checksums, duplicates, quotas, conflicts."""

from __future__ import annotations

from typing import Any

import pytest

from mobileplane.services.sync.apply import BucketState, QuotaExceeded, StoredRow, plan_batch
from mobileplane.services.sync.checksum import row_hash, updated
from mobileplane.services.sync.hlc import Timestamp
from mobileplane.services.sync.merge import Row
from mobileplane.services.sync.protocol import Mutation
from mobileplane.services.sync.schema import parse_schema

EMPTY = BucketState(0, 0, 0)
SCHEMA = parse_schema(
    {
        "tables": {
            "notes": {
                "columns": {
                    "title": {"type": "text"},
                    "n": {"type": "integer", "resolver": "counter"},
                }
            }
        }
    }
)


def mut(
    mid: int, row: str, op: str = "insert", millis: int | None = None, **values: Any
) -> Mutation:
    return Mutation(
        id=mid,
        table="notes",
        op=op,
        row_id=row,
        values=values,
        hlc=Timestamp(millis or 1000 + mid, 0, "d").encode(),
    )


def plan(
    mutations: list[Mutation],
    stored: dict[Any, StoredRow] | None = None,
    state: BucketState = EMPTY,
    last_applied: int = 0,
    max_rows: int = 10,
) -> Any:
    return plan_batch(
        SCHEMA,
        bucket="user:a",
        state=state,
        stored=stored or {},
        mutations=mutations,
        stamps=[Timestamp.decode(m.hlc) for m in mutations],
        last_applied=last_applied,
        max_rows=max_rows,
    )


def test_ops_are_numbered_after_the_bucket_and_checksums_follow() -> None:
    p = plan(
        [mut(1, "a", title="x"), mut(2, "b", title="y"), mut(3, "a", "update", title="z")],
        state=BucketState(40, 0, 0),
    )
    assert [o["op_id"] for o in p.ops] == [41, 42, 43]
    expected = 0
    expected = updated(expected, "notes", "a", None, 41)
    expected = updated(expected, "notes", "b", None, 42)
    expected = updated(expected, "notes", "a", 41, 43)
    assert [o["checksum"] for o in p.ops][-1] == expected == p.bucket.checksum
    assert p.bucket == BucketState(43, expected, 2)
    assert p.rows[("notes", "a")].op_id == 43
    assert p.last_applied == 3


def test_replayed_mutations_are_duplicates_and_change_nothing() -> None:
    p = plan([mut(1, "a", title="x"), mut(2, "b", title="y")], last_applied=1)
    assert [r.status for r in p.results] == ["duplicate", "applied"]
    assert [o["row_id"] for o in p.ops] == ["b"]


def test_a_write_that_changes_nothing_appends_no_op() -> None:
    stored = {
        ("notes", "a"): StoredRow(
            Row({"title": "x"}, {"title": Timestamp(5000, 0, "d").encode()}), 7
        )
    }
    p = plan(
        [mut(1, "a", "update", millis=1000, title="old")],
        stored=stored,
        state=BucketState(7, row_hash("notes", "a", 7), 1),
    )
    assert p.ops == [] and p.results[0].status == "conflict"
    assert p.bucket == BucketState(7, row_hash("notes", "a", 7), 1)
    assert p.conflicts[0]["client_value"] == "old"


def test_a_delete_removes_and_frees_quota() -> None:
    stored = {
        ("notes", "a"): StoredRow(Row({"title": "x"}, {"title": Timestamp(5, 0, "d").encode()}), 7)
    }
    p = plan(
        [mut(1, "a", "delete"), mut(2, "b", title="new")],
        stored=stored,
        state=BucketState(7, row_hash("notes", "a", 7), 1),
        max_rows=1,
    )
    assert [o["kind"] for o in p.ops] == ["remove", "put"]
    assert p.bucket.live_rows == 1
    assert p.bucket.checksum == row_hash("notes", "b", 9)


def test_the_quota_refuses_the_batch() -> None:
    with pytest.raises(QuotaExceeded):
        plan([mut(1, "a", title="x"), mut(2, "b", title="y")], max_rows=1)


def test_an_update_of_a_missing_row_writes_nothing() -> None:
    p = plan([mut(1, "ghost", "update", title="boo")])
    assert p.ops == [] and p.rows == {} and p.results[0].status == "conflict"


def test_a_newer_clock_on_an_unchanged_value_is_stored_without_an_op() -> None:
    # Issue 21: "applied", no op (clients see nothing new), but the row's state must be
    # written back, or an older write of another value would win later.
    old = Timestamp(5000, 0, "x").encode()
    stored = {("notes", "a"): StoredRow(Row({"title": "b"}, {"title": old}), 7)}
    p = plan([mut(1, "a", "update", millis=6000, title="b")], stored=stored)
    assert p.ops == [] and p.results[0].status == "applied" and p.results[0].op_id is None
    assert p.rows[("notes", "a")].row.clocks["title"] == Timestamp(6000, 0, "d").encode()
    assert p.rows[("notes", "a")].op_id == 7


def test_a_later_delete_of_a_deleted_row_moves_the_marker_without_an_op() -> None:
    stored = {("notes", "a"): StoredRow(Row({}, {}, Timestamp(100, 0, "x").encode()), 0)}
    p = plan([mut(1, "a", "delete", millis=300)], stored=stored)
    assert p.ops == []
    assert p.rows[("notes", "a")].row.deleted_at == Timestamp(300, 0, "d").encode()


def test_an_update_after_the_delete_brings_the_row_back() -> None:
    stored = {("notes", "a"): StoredRow(Row({}, {}, Timestamp(100, 0, "x").encode()), 0)}
    p = plan([mut(1, "a", "update", millis=300, title="back")], stored=stored)
    assert [o["kind"] for o in p.ops] == ["put"] and p.ops[0]["vals"] == {"title": "back"}
    assert p.results[0].status == "applied" and p.bucket.live_rows == 1
