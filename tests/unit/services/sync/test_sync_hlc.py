"""Hybrid logical clocks: encoding, local ticks, receiving remote stamps (tables + properties)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mobileplane.services.sync.hlc import (
    MAX_COUNTER,
    ClockError,
    Timestamp,
    receive,
    tick,
)


def ts(millis: int, counter: int = 0, node: str = "a") -> Timestamp:
    return Timestamp(millis, counter, node)


@pytest.mark.parametrize(
    ("stamp", "encoded"),
    [
        (ts(0), "000000000000000-00000-a"),
        (ts(1_732_500_000_123, 7, "dev-1"), "001732500000123-00007-dev-1"),
    ],
)
def test_encoding_round_trips(stamp: Timestamp, encoded: str) -> None:
    assert stamp.encode() == encoded
    assert Timestamp.decode(encoded) == stamp


@pytest.mark.parametrize(
    "text",
    ["", "123-1-a", "001732500000123-7-a", "001732500000123-00007-", "x" * 30, "1-2-3-4"],
)
def test_malformed_timestamps_are_refused_with_the_expected_form(text: str) -> None:
    with pytest.raises(ClockError, match="expected <15-digit millis>"):
        Timestamp.decode(text)


@pytest.mark.parametrize(
    ("millis", "counter", "node"),
    [(-1, 0, "a"), (0, -1, "a"), (0, MAX_COUNTER + 1, "a"), (0, 0, "bad node"), (0, 0, "")],
)
def test_out_of_range_parts_are_refused(millis: int, counter: int, node: str) -> None:
    with pytest.raises(ClockError):
        Timestamp(millis, counter, node)


@pytest.mark.parametrize(
    ("last", "wall", "expected"),
    [
        (None, 100, ts(100)),
        (ts(100, 3), 200, ts(200)),  # the wall clock moved on
        (ts(100, 3), 100, ts(100, 4)),  # same millisecond
        (ts(100, 3), 50, ts(100, 4)),  # the wall clock went backwards: never follow it
    ],
)
def test_tick(last: Timestamp | None, wall: int, expected: Timestamp) -> None:
    assert tick(last, wall, "a") == expected


def test_tick_refuses_a_counter_overflow() -> None:
    with pytest.raises(ClockError, match="overflowed"):
        tick(ts(100, MAX_COUNTER), 100, "a")


@pytest.mark.parametrize(
    ("last", "remote", "wall", "expected"),
    [
        (None, ts(100, 2, "b"), 50, ts(100, 3)),  # remote ahead of our wall clock
        (ts(100, 5), ts(100, 2, "b"), 50, ts(100, 6)),  # all in one millisecond
        (ts(100, 5), ts(90, 9, "b"), 50, ts(100, 6)),  # our clock is ahead
        (ts(100, 5), ts(90, 9, "b"), 300, ts(300, 0)),  # the wall clock is ahead of both
        (ts(80, 5), ts(90, 9, "b"), 50, ts(90, 10)),  # remote ahead of our clock
    ],
)
def test_receive(last: Timestamp | None, remote: Timestamp, wall: int, expected: Timestamp) -> None:
    assert receive(last, remote, wall, "a") == expected


def test_receive_refuses_a_stamp_far_in_the_future() -> None:
    with pytest.raises(ClockError, match="check the device's clock"):
        receive(None, ts(10_000_000), 0, "a", max_drift_ms=1000)


stamps = st.builds(
    Timestamp,
    st.integers(0, 10**13),
    st.integers(0, 1000),
    st.sampled_from(["a", "b", "phone-1", "z"]),
)


@given(stamps, stamps)
def test_string_order_is_timestamp_order(x: Timestamp, y: Timestamp) -> None:
    assert (x < y) == (x.encode() < y.encode())


@given(st.lists(st.tuples(st.booleans(), stamps, st.integers(0, 10**13)), max_size=40))
def test_the_clock_never_goes_backwards_and_passes_what_it_saw(
    events: list[tuple[bool, Timestamp, int]],
) -> None:
    clock: Timestamp | None = None
    for is_receive, remote, wall in events:
        before = clock
        if is_receive:
            clock = receive(clock, remote, wall, "me", max_drift_ms=10**15)
            assert (
                clock > Timestamp(remote.millis, remote.counter, "me")
                or clock.millis > remote.millis
                or clock.counter > remote.counter
            )
        else:
            clock = tick(clock, wall, "me")
        assert before is None or clock > before
        assert clock.millis >= wall
