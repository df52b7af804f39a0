"""Merging client writes into server rows: worked examples, then properties."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mobileplane.services.sync.hlc import Timestamp
from mobileplane.services.sync.merge import MergeError, Op, Row, merge


def t(millis: int, node: str = "a") -> Timestamp:
    return Timestamp(millis, 0, node)


def c(millis: int, node: str = "a") -> str:
    return t(millis, node).encode()


LWW: dict[str, str] = {}


def test_insert_creates_the_row() -> None:
    out = merge(None, Op.INSERT, {"title": "hi", "done": False}, t(10), LWW)
    assert out.row.visible() == {"title": "hi", "done": False}
    assert out.row.clocks == {"title": c(10), "done": c(10)}
    assert out.changed == ("done", "title") and out.overrides == () and not out.existed


def test_two_devices_editing_different_fields_both_keep_their_edit() -> None:
    row = merge(None, Op.INSERT, {"title": "a", "done": False}, t(10), LWW).row
    row = merge(row, Op.UPDATE, {"title": "b"}, t(20, "phone"), LWW).row
    out = merge(row, Op.UPDATE, {"done": True}, t(15, "tablet"), LWW)
    assert out.row.visible() == {"title": "b", "done": True}
    assert out.overrides == ()


def test_an_older_write_of_the_same_field_loses_and_is_reported() -> None:
    row = merge(None, Op.INSERT, {"title": "new"}, t(20), LWW).row
    out = merge(row, Op.UPDATE, {"title": "old"}, t(15, "b"), LWW)
    assert out.row.visible() == {"title": "new"}
    assert out.changed == ()
    [override] = out.overrides
    assert (override.column, override.client_value, override.server_value) == (
        "title",
        "old",
        "new",
    )


def test_an_older_write_of_the_same_value_is_no_conflict() -> None:
    row = merge(None, Op.INSERT, {"title": "same"}, t(20), LWW).row
    assert merge(row, Op.UPDATE, {"title": "same"}, t(15, "b"), LWW).overrides == ()


def test_counters_add_up_in_any_order() -> None:
    resolvers = {"likes": "counter"}
    row = merge(None, Op.INSERT, {"likes": {"$inc": 0}}, t(1), resolvers).row
    row = merge(row, Op.UPDATE, {"likes": {"$inc": 2}}, t(30, "b"), resolvers).row
    out = merge(row, Op.UPDATE, {"likes": {"$inc": 3}}, t(20, "c"), resolvers)
    assert out.row.visible() == {"likes": 5}
    assert out.overrides == ()


def test_sets_merge() -> None:
    resolvers = {"tags": "set"}
    row = merge(None, Op.INSERT, {"tags": {"$add": ["a", "b"]}}, t(1), resolvers).row
    row = merge(row, Op.UPDATE, {"tags": {"$add": ["c"], "$remove": ["a"]}}, t(5), resolvers).row
    out = merge(row, Op.UPDATE, {"tags": {"$add": ["d"]}}, t(3, "old-device"), resolvers)
    assert out.row.visible() == {"tags": ["b", "c", "d"]}


def test_server_owned_columns_refuse_client_writes() -> None:
    row = Row({"score": 7}, {"score": c(1)})
    out = merge(row, Op.UPDATE, {"score": 1000}, t(99), {"score": "server"})
    assert out.row.visible() == {"score": 7}
    assert out.overrides[0].reason == "the server owns this column"


def test_a_delete_removes_what_was_written_before_it() -> None:
    row = merge(None, Op.INSERT, {"title": "x"}, t(10), LWW).row
    out = merge(row, Op.DELETE, {}, t(20), LWW)
    assert out.row.deleted and out.row.visible() == {}
    assert out.row.values == {}  # the values are gone, not hidden
    assert out.changed == ("title",) and out.existed


def test_a_write_older_than_the_delete_loses() -> None:
    row = merge(
        merge(None, Op.INSERT, {"title": "x"}, t(10), LWW).row, Op.DELETE, {}, t(20), LWW
    ).row
    out = merge(row, Op.INSERT, {"title": "late"}, t(15, "b"), LWW)
    assert out.row.deleted
    assert out.overrides[0].reason == "the row was deleted after this write"


def test_a_write_newer_than_the_delete_brings_the_row_back_with_its_fields_only() -> None:
    row = merge(None, Op.INSERT, {"title": "x", "note": "n"}, t(10), LWW).row
    row = merge(row, Op.DELETE, {}, t(20), LWW).row
    out = merge(row, Op.INSERT, {"title": "again"}, t(30, "b"), LWW)
    assert not out.row.deleted
    assert out.row.visible() == {"title": "again"}


def test_a_delete_keeps_fields_written_after_it_and_says_so() -> None:
    row = merge(None, Op.INSERT, {"title": "x", "note": "n"}, t(10), LWW).row
    row = merge(row, Op.UPDATE, {"note": "edited offline"}, t(30, "b"), LWW).row
    out = merge(row, Op.DELETE, {}, t(20, "c"), LWW)
    assert out.row.visible() == {"note": "edited offline"}
    assert out.changed == ("title",)
    assert out.overrides[0].column == "note"


def test_update_of_a_missing_row_is_reported_not_applied() -> None:
    out = merge(None, Op.UPDATE, {"title": "x"}, t(10), LWW)
    assert out.row.visible() == {} and out.changed == ()
    assert out.overrides[0].reason.startswith("the row does not exist")


@pytest.mark.parametrize(
    ("op", "values", "resolvers", "message"),
    [
        (Op.DELETE, {"a": 1}, {}, "a delete carries no values"),
        (Op.INSERT, {"n": 1}, {"n": "counter"}, "counter column takes"),
        (Op.INSERT, {"n": {"$inc": "1"}}, {"n": "counter"}, "counter column takes"),
        (Op.INSERT, {"n": {"$inc": True}}, {"n": "counter"}, "counter column takes"),
        (Op.INSERT, {"s": ["a"]}, {"s": "set"}, "set column takes"),
        (Op.INSERT, {"s": {"$add": "a"}}, {"s": "set"}, "must be lists"),
        (Op.INSERT, {"s": {"$add": [{"x": 1}]}}, {"s": "set"}, "strings or numbers"),
        (Op.INSERT, {"v": {"$inc": 1}}, {}, "plain value"),
        (Op.INSERT, {"v": 1}, {"v": "nope"}, "unknown resolver"),
    ],
)
def test_malformed_mutations_are_errors(
    op: Op, values: dict[str, Any], resolvers: dict[str, str], message: str
) -> None:
    with pytest.raises(MergeError, match=message):
        merge(None, op, values, t(1), resolvers)


# -- the arrival orders found from outside (issue 21) ---------------------------------------


def arrive(writes: list[tuple[Op, dict[str, Any], int, str]], resolvers: dict[str, str]) -> Row:
    row: Row | None = None
    for op, values, millis, node in writes:
        row = merge(row, op, values, t(millis, node), resolvers).row
    return row or Row()


@pytest.mark.parametrize("a_first", [True, False])
def test_an_update_after_a_delete_survives_in_either_order(a_first: bool) -> None:
    insert = (Op.INSERT, {"title": "r3", "body": "x"}, 1, "origin")
    a_deletes = (Op.DELETE, {}, 12, "a")
    b_updates = (Op.UPDATE, {"title": "kept"}, 25, "b")
    order = [insert, a_deletes, b_updates] if a_first else [insert, b_updates, a_deletes]
    assert arrive(order, LWW).visible() == {"title": "kept"}


@pytest.mark.parametrize("order", list(itertools.permutations(range(3))))
def test_the_newest_write_wins_even_when_it_did_not_change_the_value(
    order: tuple[int, ...],
) -> None:
    writes = [
        (Op.UPDATE, {"f": "b"}, 182, "x"),
        (Op.UPDATE, {"f": "b"}, 184, "y"),
        (Op.UPDATE, {"f": "a"}, 183, "z"),
    ]
    row = arrive([(Op.INSERT, {"f": ""}, 1, "origin"), *(writes[i] for i in order)], LWW)
    assert row.visible() == {"f": "b"}
    assert row.clocks["f"] == c(184, "y")  # kept, though the value did not change


@pytest.mark.parametrize("existed", [True, False])
@pytest.mark.parametrize("order", list(itertools.permutations(range(3))))
def test_an_insert_between_two_deletes_never_resurrects_the_row(
    existed: bool, order: tuple[int, ...]
) -> None:
    writes = [(Op.DELETE, {}, 100, "a"), (Op.DELETE, {}, 300, "b"), (Op.INSERT, {"f": 1}, 200, "c")]
    first = [(Op.INSERT, {"f": 0}, 1, "origin")] if existed else []
    row = arrive([*first, *(writes[i] for i in order)], LWW)
    assert row.deleted and row.deleted_at == c(300, "b")


def test_a_second_delete_moves_the_marker_forward_and_an_older_one_does_not() -> None:
    row = arrive([(Op.INSERT, {"f": 1}, 1, "o"), (Op.DELETE, {}, 300, "b")], LWW)
    assert merge(row, Op.DELETE, {}, t(100, "a"), LWW).row.deleted_at == c(300, "b")
    later = merge(row, Op.DELETE, {}, t(400, "a"), LWW)
    assert later.row.deleted_at == c(400, "a") and later.changed == ()


def test_equal_timestamps_are_broken_by_the_value_the_same_in_every_order() -> None:
    one = arrive([(Op.INSERT, {"f": "a"}, 5, "n"), (Op.INSERT, {"f": "b"}, 5, "n")], LWW)
    two = arrive([(Op.INSERT, {"f": "b"}, 5, "n"), (Op.INSERT, {"f": "a"}, 5, "n")], LWW)
    assert one == two and one.visible() == {"f": "b"}


def test_an_update_older_than_the_delete_loses_and_says_why() -> None:
    row = arrive([(Op.INSERT, {"f": 1}, 1, "o"), (Op.DELETE, {}, 50, "a")], LWW)
    out = merge(row, Op.UPDATE, {"f": 2}, t(40, "b"), LWW)
    assert out.row == row and out.overrides[0].reason == "the row was deleted after this write"


def test_a_counter_delta_stamped_before_a_delete_counts_in_either_order() -> None:
    resolvers = {"n": "counter"}
    start = (Op.INSERT, {"n": {"$inc": 5}}, 50, "o")
    early = (Op.UPDATE, {"n": {"$inc": 2}}, 80, "a")
    gone = (Op.DELETE, {}, 100, "b")
    late = (Op.UPDATE, {"n": {"$inc": 3}}, 150, "c")
    one = arrive([start, early, gone, late], resolvers)
    two = arrive([start, gone, late, early], resolvers)
    assert one == two and one.visible() == {"n": 10}  # the sum of every delta


def test_set_members_keep_their_own_clocks() -> None:
    resolvers = {"tags": "set"}
    start = (Op.INSERT, {"tags": {"$add": ["x"]}}, 1, "o")
    add = (Op.UPDATE, {"tags": {"$add": ["y"]}}, 10, "a")
    remove = (Op.UPDATE, {"tags": {"$remove": ["y"]}}, 20, "b")
    one, two = arrive([start, add, remove], resolvers), arrive([start, remove, add], resolvers)
    assert one == two and one.visible() == {"tags": ["x"]}


def test_a_set_member_added_after_a_delete_is_all_that_comes_back() -> None:
    resolvers = {"tags": "set"}
    start = (Op.INSERT, {"tags": {"$add": ["old"]}}, 1, "o")
    gone = (Op.DELETE, {}, 10, "a")
    added = (Op.UPDATE, {"tags": {"$add": ["new"]}}, 20, "b")
    one, two = arrive([start, gone, added], resolvers), arrive([start, added, gone], resolvers)
    assert one == two and one.visible() == {"tags": ["new"]}


def test_sets_stored_before_member_clocks_existed_are_read_from_the_column_clock() -> None:
    legacy = Row({"tags": ["a", "b"]}, {"tags": c(5)})
    out = merge(legacy, Op.UPDATE, {"tags": {"$remove": ["a"]}}, t(3, "old"), {"tags": "set"})
    assert out.row.visible() == {"tags": ["a", "b"]}  # the remove is older than the adds
    out = merge(legacy, Op.UPDATE, {"tags": {"$remove": ["a"]}}, t(9, "new"), {"tags": "set"})
    assert out.row.visible() == {"tags": ["b"]}


def test_a_malformed_write_is_an_error_even_when_it_would_lose() -> None:
    row = arrive(
        [(Op.INSERT, {"n": {"$inc": 1}}, 1, "o"), (Op.DELETE, {}, 50, "a")], {"n": "counter"}
    )
    with pytest.raises(MergeError):
        merge(row, Op.UPDATE, {"n": "seven"}, t(10, "b"), {"n": "counter"})


# -- properties --------------------------------------------------------------------------

writes = st.lists(
    st.tuples(
        st.sampled_from([Op.UPDATE, Op.DELETE, Op.INSERT]),
        st.dictionaries(st.sampled_from(["a", "b", "c"]), st.integers(0, 9), max_size=3),
        st.integers(1, 60),
        st.sampled_from(["p", "q", "r"]),
    ),
    max_size=12,
    unique_by=lambda w: (w[2], w[3]),  # one device never reuses a timestamp
)


def apply_all(ops: list[tuple[Op, dict[str, int], int, str]]) -> Row:
    row = merge(None, Op.INSERT, {"a": 0, "b": 0, "c": 0}, Timestamp(0, 0, "origin"), LWW).row
    for op, values, millis, node in ops:
        row = merge(row, op, {} if op is Op.DELETE else values, Timestamp(millis, 0, node), LWW).row
    return row


RESOLVED = {"a": "lww", "b": "lww", "n": "counter", "s": "set"}
column_value = {
    "a": st.integers(0, 3),  # few values: equal values collide often
    "b": st.sampled_from(["x", "y"]),
    "n": st.builds(lambda d: {"$inc": d}, st.integers(-2, 3)),
    "s": st.builds(
        lambda add, rem: {"$add": add, "$remove": rem} if add or rem else {"$add": ["p"]},
        st.lists(st.sampled_from(["p", "q", 1]), max_size=2),
        st.lists(st.sampled_from(["p", "q", 1]), max_size=2),
    ),
}
mixed_writes = st.lists(
    st.tuples(
        st.sampled_from([Op.UPDATE, Op.DELETE, Op.INSERT]),
        st.fixed_dictionaries({}, optional=column_value),
        st.integers(1, 12),  # a narrow range: writes land between two deletes, and tie
        st.sampled_from(["p", "q"]),
    ),
    max_size=14,
)


def arrive_all(ops: list[tuple[Op, dict[str, Any], int, str]]) -> Row:
    origin = Timestamp(0, 0, "origin")
    row = merge(None, Op.INSERT, {"a": 0, "b": "", "n": {"$inc": 0}}, origin, RESOLVED).row
    for op, values, millis, node in ops:
        values = {} if op is Op.DELETE else values
        row = merge(row, op, values, Timestamp(millis, 0, node), RESOLVED).row
    return row


@given(mixed_writes, st.randoms())
def test_the_row_is_a_function_of_the_set_of_writes_not_their_order(
    ops: list[tuple[Op, dict[str, Any], int, str]], rnd: Any
) -> None:
    # Inserts, updates (of a row the server knows) and deletes, on every resolver, with
    # equal values, equal timestamps, writes stamped between two deletes and updates racing
    # deletes: every order gives the same state, hidden parts included.
    shuffled = list(ops)
    rnd.shuffle(shuffled)
    assert arrive_all(ops) == arrive_all(shuffled)


@given(writes)
def test_applying_a_mutation_twice_changes_nothing(
    ops: list[tuple[Op, dict[str, int], int, str]],
) -> None:
    doubled = [w for w in ops for _ in (0, 1)]
    assert apply_all(doubled).visible() == apply_all(ops).visible()
