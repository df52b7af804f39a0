"""Rate-limit decisions, the X-Sentry-Rate-Limits header, sampling (pure)."""

from __future__ import annotations

import pytest

from mobileplane.services.telemetry.ratelimit import Limits, decide, keep_trace, requested, window


@pytest.mark.parametrize(
    ("limits", "counted", "key_counted", "limited", "header"),
    [
        pytest.param(Limits(), {"error": 999}, 999, set(), None, id="no-limits"),
        pytest.param(
            Limits(category_per_minute={"error": 10}), {"error": 10}, 0, set(), None, id="at-limit"
        ),
        pytest.param(
            Limits(category_per_minute={"error": 10}),
            {"error": 11, "session": 5},
            0,
            {"error"},
            "40:error:project:project_quota",
            id="category-over",
        ),
        pytest.param(
            Limits(category_per_minute={"session": 1, "error": 1}),
            {"error": 2, "session": 2},
            0,
            {"error", "session"},
            "40:error;session:project:project_quota",
            id="two-categories",
        ),
        pytest.param(
            Limits(key_per_minute=5),
            {},
            6,
            {"error", "transaction"},
            "40:error;transaction:key:key_quota",
            id="key-over",
        ),
    ],
)
def test_decide(
    limits: Limits,
    counted: dict[str, int],
    key_counted: int,
    limited: set[str],
    header: str | None,
) -> None:
    decision = decide(limits, counted=counted, key_counted=key_counted, now=620.0)
    assert decision.limited == limited
    assert decision.header == header
    assert decision.retry_after == 40
    assert decision.allows(None)  # client reports are never limited


def test_header_is_what_sentry_sdk_parses() -> None:
    from sentry_sdk.transport import _parse_rate_limits

    decision = decide(
        Limits(key_per_minute=1, category_per_minute={"session": 1}),
        counted={"session": 2},
        key_counted=2,
        now=0.5,
    )
    assert decision.header is not None
    parsed = {category for category, _ in _parse_rate_limits(decision.header)}
    assert parsed == {"session", "error", "transaction"}


@pytest.mark.parametrize(
    ("now", "index", "left"), [(0.0, 0, 60), (59.9, 0, 1), (60.0, 1, 60), (125.5, 2, 55)]
)
def test_window(now: float, index: int, left: int) -> None:
    assert window(now) == (index, left)


def test_requested() -> None:
    assert requested(["event", "event", "session", "sessions", "client_report", "x"]) == {
        "error": 2,
        "session": 2,
    }


def test_sampling() -> None:
    ids = [f"{i:032x}" for i in range(2000)]
    kept = [t for t in ids if keep_trace(t, 0.25)]
    assert 350 < len(kept) < 650
    assert all(keep_trace(t, 0.25) for t in kept)  # deterministic
    assert all(keep_trace(t, 1.0) for t in ids[:10])
    assert not any(keep_trace(t, 0.0) for t in ids[:10])
    assert keep_trace(ids[3].upper(), 0.25) == keep_trace(ids[3], 0.25)
