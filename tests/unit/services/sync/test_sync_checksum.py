"""Bucket checksums: test vectors (SDKs must match them) and order independence."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from mobileplane.services.sync.checksum import MODULUS, row_hash, updated


def test_vectors() -> None:
    # Also in docs/sync-protocol.md: an SDK in another language must reproduce these.
    assert row_hash("todos", "r1", 1) == 0xC002B5B8
    assert row_hash("todos", "r1", 1) != row_hash("todos", "r1", 2)
    assert row_hash("todos", "r1", 1) != row_hash("todo", "sr1", 1)


def test_changes_swap_the_row_hash() -> None:
    s = updated(0, "t", "a", None, 1)
    assert s == row_hash("t", "a", 1)
    s = updated(s, "t", "a", 1, 5)
    assert s == row_hash("t", "a", 5)
    assert updated(s, "t", "a", 5, None) == 0


@given(
    st.lists(st.tuples(st.sampled_from("abcd"), st.integers(1, 10**9)), max_size=20), st.randoms()
)
def test_the_checksum_does_not_depend_on_the_order_rows_arrive_in(
    rows: list[tuple[str, int]], rnd: object
) -> None:
    unique = dict(rows)  # one op per row id
    forward = 0
    for row_id, op in unique.items():
        forward = updated(forward, "t", row_id, None, op)
    items = list(unique.items())
    rnd.shuffle(items)  # type: ignore[attr-defined]
    backward = 0
    for row_id, op in items:
        backward = updated(backward, "t", row_id, None, op)
    assert forward == backward < MODULUS
