"""Sentry's session rules and release-health arithmetic (pure)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mobileplane.services.telemetry.health import (
    SessionCounts,
    Target,
    parse_window,
    proportion,
    release_health,
    verdict,
    wilson,
)
from mobileplane.services.telemetry.sessions import (
    SessionError,
    merge,
    outcome,
    parse_aggregates,
    parse_update,
)

SID = "3f1c6a9e-2b8d-4f0a-9a57-8f7e0b3c1d22"
T0 = "2026-11-25T10:00:00Z"


def upd(**fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "sid": SID,
        "did": "user-1",
        "init": False,
        "started": T0,
        "timestamp": T0,
        "status": "ok",
        "attrs": {"release": "app@1.0.0", "environment": "production"},
    }
    base.update(fields)
    return base


def final(*updates: dict[str, Any]) -> Any:
    state = None
    for u in updates:
        state = merge(state, parse_update(u))
    return state


@pytest.mark.parametrize(
    ("updates", "expected"),
    [
        pytest.param([upd(init=True, seq=0)], "healthy", id="running"),
        pytest.param([upd(init=True, seq=0), upd(seq=1, status="exited")], "healthy", id="exited"),
        pytest.param(
            [upd(init=True, seq=0), upd(seq=1, errors=2), upd(seq=2, status="exited", errors=2)],
            "errored",
            id="errored-then-exited",
        ),
        pytest.param(
            [upd(init=True, seq=0), upd(seq=1, status="crashed", errors=1)], "crashed", id="crashed"
        ),
        pytest.param(
            [upd(init=True, seq=0), upd(seq=1, status="abnormal")], "abnormal", id="abnormal"
        ),
        pytest.param(
            [upd(seq=1, status="crashed"), upd(init=True, seq=0)], "crashed", id="out-of-order"
        ),
        pytest.param(
            [upd(seq=2, status="exited"), upd(seq=3, status="ok")], "healthy", id="terminal-stays"
        ),
        pytest.param([upd(status="errored")], "errored", id="legacy-errored-status"),
        pytest.param(
            [
                upd(timestamp="2026-11-25T10:00:00Z"),
                upd(timestamp="2026-11-25T10:05:00Z", status="crashed"),
            ],
            "crashed",
            id="no-seq-ordered-by-timestamp",
        ),
    ],
)
def test_outcome(updates: list[dict[str, Any]], expected: str) -> None:
    assert outcome(final(*updates)) == expected


def test_merge_keeps_first_attrs_and_did() -> None:
    state = final(
        upd(init=True, seq=0, did=None),
        upd(seq=1, did="u2", attrs={"release": "app@9.9.9"}, started="2026-11-25T09:59:00Z"),
    )
    assert state.release == "app@1.0.0"
    assert state.did == "u2"
    assert state.init is True
    assert state.started == datetime(2026, 11, 25, 9, 59, tzinfo=UTC)


UPDATES = [
    upd(init=True, seq=0),
    upd(seq=1, errors=1),
    upd(seq=2, status="crashed", errors=1),
    upd(seq=3, status="exited"),
]


@given(st.permutations(UPDATES), st.lists(st.sampled_from(UPDATES), max_size=4))
def test_merge_order_and_retries_do_not_matter(order: list[Any], retries: list[Any]) -> None:
    """Any arrival order, any duplicates: the same final session."""
    reference = final(*UPDATES)
    assert final(*order, *retries) == reference


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (upd(sid="nope"), "sid must be a UUID"),
        (upd(status="sleeping"), "status must be one of"),
        (upd(attrs={}), "attrs.release is required"),
        ({k: v for k, v in upd().items() if k != "attrs"}, "attrs.release is required"),
        (upd(errors=-1), "errors must be"),
        (upd(seq="1"), "seq must be"),
        (upd(started="yesterday"), "not an RFC 3339"),
        ({k: v for k, v in upd().items() if k != "started"}, "started is required"),
        (upd(duration="long"), "duration must be"),
    ],
)
def test_bad_updates(payload: dict[str, Any], reason: str) -> None:
    with pytest.raises(SessionError, match=reason):
        parse_update(payload)


def test_aggregates() -> None:
    buckets = parse_aggregates(
        {
            "attrs": {"release": "srv@2"},
            "aggregates": [
                {"started": T0, "exited": 5, "errored": 2},
                {"started": 1764064800, "crashed": 1, "abnormal": 1, "did": "u"},
            ],
        }
    )
    assert [b.total for b in buckets] == [7, 2]
    assert buckets[0].environment == "production"
    assert buckets[1].did == "u"
    with pytest.raises(SessionError, match="exited must be"):
        parse_aggregates({"attrs": {"release": "r"}, "aggregates": [{"started": T0, "exited": -1}]})
    with pytest.raises(SessionError, match="must be a list"):
        parse_aggregates({"attrs": {"release": "r"}, "aggregates": {}})


@pytest.mark.parametrize(
    ("successes", "n", "low", "high"),
    [
        # Reference values: Wilson score interval, z = 1.959964, worked by hand (199/200:
        # centre 0.985672, half-width 0.013446).
        (199, 200, 0.97223, 0.99912),
        (50, 100, 0.40383, 0.59617),
        (0, 10, 0.0, 0.27753),
        (10, 10, 0.72247, 1.0),
        (9990, 10000, 0.99816, 0.99946),
    ],
)
def test_wilson(successes: int, n: int, low: float, high: float) -> None:
    interval = wilson(successes, n)
    assert interval is not None
    assert interval.low == pytest.approx(low, abs=1e-5)
    assert interval.high == pytest.approx(high, abs=1e-5)


def test_wilson_edges() -> None:
    assert wilson(0, 0) is None
    assert proportion(0, 0).rate is None
    with pytest.raises(ValueError):
        wilson(3, 2)


@given(st.integers(0, 10_000), st.integers(1, 10_000))
def test_wilson_contains_estimate(successes: int, n: int) -> None:
    successes = min(successes, n)
    interval = wilson(successes, n)
    assert interval is not None
    assert 0 <= interval.low <= successes / n <= interval.high <= 1


def test_release_health() -> None:
    counts = SessionCounts(healthy=90, errored=5, abnormal=2, crashed=3, users=40, crashed_users=2)
    health = release_health(
        counts,
        project_sessions=400,
        project_users=100,
        sessions_target=Target(99.5, 99.0),
        users_target=Target(99.0, 98.0),
    )
    assert health.sessions == 100
    assert health.crash_free_sessions.rate == pytest.approx(0.97)
    assert health.crash_free_sessions.n == 100
    assert health.crash_free_users.rate == pytest.approx(0.95)
    assert health.adoption_sessions == pytest.approx(0.25)
    assert health.adoption_users == pytest.approx(0.4)
    assert health.sessions_verdict == "critical"
    empty = release_health(
        SessionCounts(),
        project_sessions=0,
        project_users=0,
        sessions_target=Target(99.5, 99.0),
        users_target=Target(99.0, 98.0),
    )
    assert empty.crash_free_sessions.rate is None and empty.adoption_sessions is None
    assert empty.sessions_verdict == "no_data"


@pytest.mark.parametrize(
    ("successes", "n", "expected"),
    [
        (996, 1000, "healthy"),
        (995, 1000, "healthy"),
        (992, 1000, "warning"),
        (989, 1000, "critical"),
        (0, 0, "no_data"),
    ],
)
def test_verdict(successes: int, n: int, expected: str) -> None:
    assert verdict(proportion(successes, n), Target(99.5, 99.0)) == expected


def test_target_order() -> None:
    with pytest.raises(ValueError):
        Target(98.0, 99.0)


@pytest.mark.parametrize(("text", "seconds"), [("90m", 5400), ("24h", 86400), ("7d", 604800)])
def test_window(text: str, seconds: int) -> None:
    assert parse_window(text) == seconds


@pytest.mark.parametrize("text", ["", "24", "h", "0h", "-1d", "1w", "91d", "1.5h"])
def test_bad_window(text: str) -> None:
    with pytest.raises(ValueError):
        parse_window(text)


def test_counts_add() -> None:
    total = SessionCounts(1, 2, 3, 4, 5, 6) + SessionCounts(1, 1, 1, 1, 1, 1)
    assert total == SessionCounts(2, 3, 4, 5, 6, 7)
    assert total.total == 14


@st.composite
def updates(draw: st.DrawFn) -> dict[str, Any]:
    return upd(
        seq=draw(st.integers(0, 5)),
        status=draw(st.sampled_from(["ok", "exited", "crashed", "abnormal", "errored"])),
        errors=draw(st.integers(0, 3)),
        did=draw(st.sampled_from([None, "a", "b"])),
        init=draw(st.booleans()),
        duration=draw(st.sampled_from([None, 1.5, 10.0, 60.0])),
        attrs={
            "release": draw(st.sampled_from(["app@1", "app@2"])),
            "environment": draw(st.sampled_from(["production", "staging"])),
        },
    )


@given(st.lists(updates(), min_size=1, max_size=6), st.randoms())
def test_any_updates_merge_the_same_in_any_order(batch: list[dict[str, Any]], rnd: Any) -> None:
    """Order independence for arbitrary updates, attributes included: the merged session is
    the same whatever the arrival order."""
    shuffled = list(batch)
    rnd.shuffle(shuffled)
    assert final(*batch) == final(*shuffled)
    assert final(*batch, *batch) == final(*batch)  # and retries change nothing
